package route

import (
	"bytes"
	"errors"
)

// NormalizePath returns the form of an origin-form path that routes are
// matched on, as nginx matches locations on its normalized URI:
// percent-encoded unreserved characters decoded ("%7e" is "~", "%2E" is
// "."), the other escapes' hex digits in upper case, "." and ".." segments
// resolved (never above the root), and runs of slashes merged. An encoded
// slash ("%2F") stays encoded: it is not a separator (the HTTP proxy
// refuses such paths first, see CheckPath). A path needing none
// of this is returned as it is, without copying; otherwise the result is
// appended to buf and shares its array: append to the result, not to buf
// at its old length. dots reports that "." or ".." segments were resolved.
//
// A proxy that routed on the raw path would let "/public/../admin" reach
// the route of "/public/" and an upstream that resolves dot segments serve
// "/admin" through it.
func NormalizePath(p, buf []byte) (out []byte, changed, dots bool) {
	if !needsNormalizing(p) {
		return p, false, false
	}
	start := len(buf)
	if len(p) == 0 || p[0] != '/' {
		buf = append(buf, '/') // the result starts with one
	}
	// Decode into buf first: "%2e%2e" is a ".." segment.
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			if b := unhex(p[i+1])<<4 | unhex(p[i+2]); isUnreserved(b) {
				buf = append(buf, b)
			} else {
				buf = append(buf, '%', upperHex(p[i+1]), upperHex(p[i+2]))
			}
			i += 2
			continue
		}
		buf = append(buf, c)
	}
	// Then resolve the segments in place: the output never outgrows what
	// was read. segs holds where each output segment starts, so that ".."
	// can drop the last.
	dec := buf[start:]
	var segsArr [32]int
	segs := segsArr[:0]
	w, trailing := 0, false
	for r := 0; r < len(dec); {
		if dec[r] == '/' {
			r++
			continue
		}
		end := r
		for end < len(dec) && dec[end] != '/' {
			end++
		}
		seg := dec[r:end]
		trailing = end < len(dec) // followed by a slash
		switch {
		case len(seg) == 1 && seg[0] == '.':
			trailing, dots = true, true
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if n := len(segs); n > 0 {
				w = segs[n-1]
				segs = segs[:n-1]
			}
			trailing, dots = true, true
		default:
			segs = append(segs, w)
			dec[w] = '/'
			w += 1 + copy(dec[w+1:], seg)
		}
		r = end
	}
	if len(segs) == 0 || trailing {
		// Room: the input had a slash this output does not use.
		dec[w] = '/'
		w++
	}
	dec = dec[:w]
	if bytes.Equal(dec, p) {
		return p, false, false // only a bad escape ("100%")
	}
	return dec, true, dots
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

// CheckPath refuses what a path must not hold for its normalized form to
// say where it goes: a "%" not followed by two hex digits ("%%32%65" would
// decode to "%2e", a dot that normalizing did not see, as nginx refuses
// such a URI), an encoded slash or backslash ("%2F", "%5C"), which an
// upstream that decodes before it resolves dot segments or routes would
// take for a separator the proxy did not see (as Apache refuses them by
// default), and a raw backslash, which RFC 3986 leaves out of URIs and
// which Windows servers (and WHATWG URL parsers) take for a slash:
// "/public\..\admin" is under /public here and /admin there. The proxy
// answers such a request 400.
func CheckPath(p []byte) error {
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' {
			return errBackslash
		}
		if p[i] != '%' {
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return errBadEscape
		}
		if b := unhex(p[i+1])<<4 | unhex(p[i+2]); b == '/' || b == '\\' {
			return errEncodedSlash
		}
		i += 2
	}
	return nil
}

var (
	errBadEscape    = errors.New("a \"%\" in the path is not followed by two hex digits")
	errEncodedSlash = errors.New("an encoded slash or backslash (%2F, %5C) in the path")
	errBackslash    = errors.New("a backslash in the path")
)

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
