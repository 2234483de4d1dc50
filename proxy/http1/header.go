package http1

import (
	"bytes"
	"encoding/binary"
)

// Header is one field line. Name and Value are borrowed: from a Reader's
// buffer when parsed (valid until the Reader's next head read), or from
// whoever built the Header. Value has no leading or trailing whitespace.
type Header struct {
	Name, Value []byte
}

// Headers is a head's field lines in received order. Names are compared
// case-insensitively (ASCII); repeated names are kept as separate lines.
type Headers []Header

// Get returns the value of the first field named name (compared
// case-insensitively), or nil if there is none.
func (hs Headers) Get(name string) []byte {
	for i := range hs {
		if equalFoldAny(hs[i].Name, name) {
			return hs[i].Value
		}
	}
	return nil
}

// Has reports whether a field named name is present.
func (hs Headers) Has(name string) bool {
	for i := range hs {
		if equalFoldAny(hs[i].Name, name) {
			return true
		}
	}
	return false
}

// HasToken reports whether any field named name holds token as an element
// of its comma-separated list, both compared case-insensitively:
// HasToken("Connection", "close").
func (hs Headers) HasToken(name, token string) bool {
	for i := range hs {
		if equalFoldAny(hs[i].Name, name) && listHas(hs[i].Value, token) {
			return true
		}
	}
	return false
}

// isFixedHopByHop reports whether name is one of the fixed hop-by-hop
// fields (RFC 9110 7.6.1, plus ones net/http/httputil drops). Not Trailer,
// which httputil drops too (RFC 7230 listed it, an erratum): it announces
// end-to-end trailer fields (RFC 9110 6.6.2), which the proxy forwards.
func isFixedHopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 7:
		return equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 14:
		// The h2c upgrade's, which a proxy never makes (Request.Upgrade).
		return equalFold(name, "http2-settings")
	case 16:
		return equalFold(name, "proxy-connection")
	case 17:
		return equalFold(name, "transfer-encoding")
	case 18:
		return equalFold(name, "proxy-authenticate")
	case 19:
		return equalFold(name, "proxy-authorization")
	}
	return false
}

// IsHopByHop reports whether the field name is hop-by-hop in a message with
// these headers: one of the fixed set (Connection, Keep-Alive,
// Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding, Upgrade, HTTP2-Settings) or a name listed in a
// Connection field. It scans the Connection fields on every call; to test
// every field of a head, use HopByHop.
//
// A proxy that tunnels an upgrade, or forwards trailers and wants the
// upstream to send them ("TE: trailers"), adds those fields back itself.
func (hs Headers) IsHopByHop(name []byte) bool {
	return isFixedHopByHop(name) || connectionLists(hs, name)
}

// connectionLists reports whether a Connection field of hs lists name.
func connectionLists(hs Headers, name []byte) bool {
	for i := range hs {
		if !equalFold(hs[i].Name, "connection") {
			continue
		}
		v := hs[i].Value
		for len(v) > 0 {
			var elem []byte
			elem, v = nextElem(v)
			if equalFoldBytes(elem, name) {
				return true
			}
		}
	}
	return false
}

// HopByHop answers IsHopByHop for one head without rescanning it: it holds
// the names listed in its Connection fields, apart from those that are
// fixed hop-by-hop names anyway or are "close" (the common values). Get one
// with Headers.HopByHop; it borrows the headers' memory.
type HopByHop struct {
	names    [8][]byte
	n        int
	overflow bool    // more than len(names) listed: Has scans hs
	hs       Headers // for overflow
}

// HopByHop collects the hop-by-hop names of the head hs.
func (hs Headers) HopByHop() HopByHop {
	h := HopByHop{hs: hs}
	for i := range hs {
		if !equalFold(hs[i].Name, "connection") {
			continue
		}
		v := hs[i].Value
		for len(v) > 0 {
			var elem []byte
			elem, v = nextElem(v)
			if len(elem) == 0 || equalFold(elem, "close") || isFixedHopByHop(elem) {
				continue
			}
			if h.n == len(h.names) {
				h.overflow = true
				return h
			}
			h.names[h.n] = elem
			h.n++
		}
	}
	return h
}

// Has reports whether name is hop-by-hop in the head (see IsHopByHop).
func (h *HopByHop) Has(name []byte) bool {
	if isFixedHopByHop(name) {
		return true
	}
	if h.overflow {
		return connectionLists(h.hs, name)
	}
	for _, n := range h.names[:h.n] {
		if equalFoldBytes(n, name) {
			return true
		}
	}
	return false
}

// AppendTo appends every field line as "Name: Value\r\n" to dst.
func (hs Headers) AppendTo(dst []byte) []byte {
	for i := range hs {
		dst = AppendHeader(dst, hs[i].Name, hs[i].Value)
	}
	return dst
}

// appendTrailerFields appends the fields of a trailer section that may be
// forwarded in one: not hop-by-hop, and none of the fields a sender must
// not put in a trailer because they frame, route or authenticate the
// message (RFC 9110, section 6.5.1), nor those skip names (nil: none).
func (hs Headers) appendTrailerFields(dst []byte, skip func([]byte) bool) []byte {
	hop := hs.HopByHop()
	for i := range hs {
		n := hs[i].Name
		if hop.Has(n) || skip != nil && skip(n) || equalFold(n, "content-length") || equalFold(n, "host") ||
			equalFold(n, "content-encoding") || equalFold(n, "content-type") ||
			equalFold(n, "content-range") || equalFold(n, "authorization") ||
			equalFold(n, "set-cookie") || equalFold(n, "cache-control") || equalFold(n, "expect") ||
			equalFold(n, "trailer") {
			continue
		}
		dst = AppendHeader(dst, n, hs[i].Value)
	}
	return dst
}

// AppendEndToEnd appends the field lines that are not hop-by-hop (see
// IsHopByHop) to dst: what a proxy forwards unchanged.
func (hs Headers) AppendEndToEnd(dst []byte) []byte {
	hop := hs.HopByHop()
	for i := range hs {
		if !hop.Has(hs[i].Name) {
			dst = AppendHeader(dst, hs[i].Name, hs[i].Value)
		}
	}
	return dst
}

// ValidFieldName reports whether name is a non-empty token (RFC 9110 5.1).
// The Append functions do not check; callers appending names or values they
// did not parse check them first.
func ValidFieldName(name []byte) bool { return len(name) > 0 && isToken(name) }

// ValidFieldValue reports whether value may be sent as a field value: no
// control characters but HTAB, no leading or trailing whitespace.
func ValidFieldValue(value []byte) bool {
	if len(value) > 0 && (isWS(value[0]) || isWS(value[len(value)-1])) {
		return false
	}
	return validValue(value)
}

// tokenTable marks tchar (RFC 9110 5.6.2).
var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }

// validValue reports whether b holds only field-vchar, SP and HTAB.
//
// It checks eight bytes at a time for a byte below 0x20 or equal to 0x7f
// (the "hasless" and "haszero" word tricks, exact for existence), and only
// looks at single bytes from the first word that has one, where an HTAB may
// still make it valid.
func validValue(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		del := x ^ (ones * 0x7f)
		if ((x-ones*0x20)&^x|(del-ones)&^del)&highs != 0 {
			break
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimWS(b []byte) []byte {
	for len(b) > 0 && isWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with lower, which is lower-case ASCII.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// equalFoldAny compares b with s, folding ASCII case on both sides.
func equalFoldAny(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// nextElem splits the first element off a comma-separated list, trimming
// whitespace. Empty elements come back empty (RFC 9110 5.6.1 has recipients
// ignore them).
func nextElem(v []byte) (elem, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return trimWS(v[:i]), v[i+1:]
	}
	return trimWS(v), nil
}

// listHas reports whether the list v holds token.
func listHas(v []byte, token string) bool {
	for len(v) > 0 {
		var elem []byte
		elem, v = nextElem(v)
		if equalFoldAny(elem, token) {
			return true
		}
	}
	return false
}
