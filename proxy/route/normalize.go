package route

import "bytes"

// NormalizePath returns the form of an origin-form path that routes are
// matched on, as nginx matches locations on its normalized URI:
// percent-encoded unreserved characters decoded ("%7e" is "~", "%2E" is
// "."), the other escapes' hex digits in upper case, "." and ".." segments
// resolved (never above the root), and runs of slashes merged. An encoded
// slash ("%2F") stays encoded: it is not a separator. A path needing none
// of this is returned as it is, without copying; otherwise the result is
// appended to buf.
//
// A proxy that routed on the raw path would let "/public/../admin" reach
// the route of "/public/" and an upstream that resolves dot segments serve
// "/admin" through it.
func NormalizePath(p, buf []byte) (out []byte, changed bool) {
	if !needsNormalizing(p) {
		return p, false
	}
	start := len(buf)
	out = buf
	// Decode first: "%2e%2e" is a ".." segment.
	dec := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			b := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(b) {
				dec = append(dec, b)
			} else {
				dec = append(dec, '%', upperHex(p[i+1]), upperHex(p[i+2]))
			}
			i += 2
			continue
		}
		dec = append(dec, c)
	}
	// Then resolve the segments; segs holds the start of each output
	// segment, so ".." can drop the last.
	var segs []int
	trailing := false
	for rest := dec; len(rest) > 0; {
		if rest[0] == '/' {
			rest = rest[1:]
			continue
		}
		seg := rest
		if i := bytes.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i:]
		} else {
			rest = nil
		}
		trailing = len(rest) > 0 // followed by a slash
		switch string(seg) {
		case ".":
			trailing = true
		case "..":
			if n := len(segs); n > 0 {
				out = out[:segs[n-1]]
				segs = segs[:n-1]
			}
			trailing = true
		default:
			segs = append(segs, len(out))
			out = append(out, '/')
			out = append(out, seg...)
		}
	}
	if len(segs) == 0 || trailing {
		out = append(out, '/')
	}
	if bytes.Equal(out[start:], p) {
		return p, false // only a bad escape ("100%")
	}
	return out[start:len(out):len(out)], true
}

// needsNormalizing reports whether p has an escape, an empty segment or a
// dot segment, or does not start with a slash.
func needsNormalizing(p []byte) bool {
	if len(p) == 0 || p[0] != '/' {
		return len(p) > 0
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return true
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return true
			}
			if i+1 < len(p) && p[i+1] == '.' {
				// "/." or "/.." as a whole segment
				j := i + 2
				if j < len(p) && p[j] == '.' {
					j++
				}
				if j == len(p) || p[j] == '/' {
					return true
				}
			}
		}
	}
	return false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// isUnreserved: RFC 3986 2.3 unreserved characters, which mean the same
// encoded or not.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
