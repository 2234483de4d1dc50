package http1

import "bytes"

// Request is a parsed request head. The []byte fields and Headers borrow the
// Reader's buffer: valid until the next ReadRequest, ReadResponse or Reset on
// that Reader. A Request is reused across requests to avoid allocation: its
// Headers keep their capacity.
type Request struct {
	Method  []byte
	Target  []byte // as received: origin, absolute, authority or asterisk form
	Version Version
	Headers Headers

	// Derived from Headers by ReadRequest.

	// Host is the Host field's value, nil without one (HTTP/1.0). For an
	// absolute-form target RFC 9112 3.2.2 has the target's authority win.
	Host []byte
	// BodyKind is BodyNone, BodyLength or BodyChunked (a request body is
	// never close-delimited).
	BodyKind BodyKind
	// ContentLength is the Content-Length value, -1 without one.
	ContentLength int64
	// KeepAlive: the connection may carry another request after this one
	// (HTTP/1.1 without "Connection: close"; HTTP/1.0 with
	// "Connection: keep-alive").
	KeepAlive bool
	// ExpectContinue: an HTTP/1.1 request with "Expect: 100-continue".
	ExpectContinue bool
	// Upgrade: an HTTP/1.1 request with an Upgrade field named in
	// Connection ("Connection: upgrade"), e.g. a WebSocket handshake.
	// Never one that offers h2c: an HTTP/2 connection to the upstream
	// through a tunnel would carry requests past the proxy's routes and
	// layers (h2c smuggling); such a request goes on without its upgrade.
	Upgrade bool
}

// ReadRequest reads and parses the next request head into req, reusing
// req.Headers' capacity. The body, if any, stays unread: read it with a Body
// (Reset with req.BodyKind and req.ContentLength) before the next
// ReadRequest.
//
// Errors: io.EOF when the connection closed cleanly before a request;
// io.ErrUnexpectedEOF inside one; a *ProtocolError (ErrHeadTooLarge and the
// other exported ones among them) for a malformed head, after which the
// caller answers err.Status and closes; other errors from the underlying
// reader as they are.
func (r *Reader) ReadRequest(req *Request) error {
	maxFields := r.maxHeaders()
	err := r.readHead(true, ErrHeadTooLarge, errHead, func(b []byte) (int, error) {
		return req.parse(b, maxFields)
	})
	if err == ErrHeadTooLarge {
		// The request line alone is past the limit: its target is (RFC
		// 9112 3: 414). Its end is not in the buffer, or (a head that came
		// whole, in a buffer larger than the limit) past the limit.
		lead := r.buf[r.r:r.w]
		line := bytes.TrimLeft(lead, "\r\n")
		skipped := len(lead) - len(line)
		if i := bytes.IndexByte(line, '\n'); len(line) > 0 && (i < 0 || skipped+i+1 > r.maxHead()) {
			return ErrURITooLong
		}
	}
	return err
}

// parse parses a request head at the start of b, returning its length, or 0
// if b ends first. Slices are capped (b[i:j:j]) so that a caller appending to
// one copies instead of overwriting the buffer.
func (req *Request) parse(b []byte, maxFields int) (int, error) {
	// method SP request-target SP HTTP-version CRLF, scanned in one pass.
	i := 0
	for i < len(b) && tokenTable[b[i]] {
		i++
	}
	switch {
	case i == len(b):
		return 0, nil
	case i == 0 || b[i] != ' ' || hasLower(b[:i]):
		// A method in lower case is refused, as nginx refuses it:
		// methods are case-sensitive, and an upstream that took "head"
		// for HEAD would send no body where the proxy waits for one.
		return 0, errMethod
	}
	req.Method = b[:i:i]
	j := i + 1
	for j < len(b) && targetTable[b[j]] {
		j++
	}
	switch {
	case j == len(b):
		return 0, nil
	case b[j] == '\r' || b[j] == '\n':
		return 0, errRequestLine // HTTP/0.9 or a missing version
	case b[j] != ' ' || j == i+1:
		return 0, errTarget
	}
	req.Target = b[i+1 : j : j]
	// Every check looks at whole lines only, so the outcome does not depend
	// on how much of what follows happens to be buffered.
	v := b[j+1:]
	// HTTP-version is 8 bytes, then CRLF: decided on the first 10 bytes,
	// whether or not an LF came (a bare CR must not wait for one).
	if len(v) >= 10 && string(v[8:10]) != "\r\n" {
		if i := bytes.IndexByte(v[:10], '\n'); i == 0 || i > 0 && v[i-1] != '\r' {
			return 0, errBareLF
		}
		return 0, errVersion
	}
	eol := bytes.IndexByte(v, '\n')
	if eol < 0 {
		return 0, nil
	}
	if eol == 0 || v[eol-1] != '\r' {
		return 0, errBareLF
	}
	ver, syntaxOK, ok := parseVersion(v[:eol-1])
	if !syntaxOK {
		return 0, errVersion
	}
	if !ok {
		return 0, ErrVersionNotSupported
	}
	req.Version = ver
	if !validTargetForm(req.Method, req.Target) {
		return 0, errTarget
	}
	hs, n, err := parseFields(req.Headers[:0], v[eol+1:], maxFields, &requestFieldErrs)
	req.Headers = hs
	if err != nil || n == 0 {
		return 0, err
	}
	if err := req.derive(); err != nil {
		return 0, err
	}
	return j + 1 + eol + 1 + n, nil
}

// derive fills the fields computed from the headers and checks framing.
func (req *Request) derive() error {
	req.Host = nil
	req.ContentLength = -1
	req.BodyKind = BodyNone
	req.ExpectContinue = false
	hosts := 0
	var conn connFlags
	var upgradeField, h2c bool
	var te teState
	for i := range req.Headers {
		h := &req.Headers[i]
		switch len(h.Name) {
		case 4:
			if equalFold(h.Name, "host") {
				hosts++
				req.Host = h.Value
			}
		case 6:
			if equalFold(h.Name, "expect") && equalFold(h.Value, "100-continue") {
				req.ExpectContinue = true
			}
		case 7:
			if equalFold(h.Name, "upgrade") && len(h.Value) > 0 {
				upgradeField = true
				h2c = h2c || listHas(h.Value, "h2c")
			}
		case 10:
			if equalFold(h.Name, "connection") {
				conn.add(h.Value)
			}
		case 14:
			if equalFold(h.Name, "content-length") {
				n, ok := parseContentLength(h.Value)
				if !ok {
					return errContentLength
				}
				if req.ContentLength >= 0 && req.ContentLength != n {
					return errMultipleLength
				}
				req.ContentLength = n
			}
		case 17:
			if equalFold(h.Name, "transfer-encoding") {
				if !te.add(h.Value) {
					return errTransferEncoding
				}
			}
		}
	}
	if hosts > 1 {
		return errMultipleHost
	}
	if hosts == 0 && req.Version == HTTP11 {
		return ErrMissingHost
	}
	if req.Host != nil && (len(req.Host) == 0 || !validHost(req.Host)) {
		// RFC 9112 3.2: an empty Host is for a target URI without an
		// authority, which http and https URIs always have; nginx refuses
		// it too.
		return errHost
	}
	if a, ok := targetAuthority(req.Target); ok {
		// RFC 9112 3.2.2: the authority of an absolute-form target wins
		// over Host, which a client may have set to something else.
		if len(a) == 0 || !validHost(a) {
			return errTargetAuthority
		}
		req.Host = a
	}
	if te.present {
		if req.ContentLength >= 0 || req.Version == HTTP10 {
			return ErrSmuggling
		}
		if !te.chunkedLast {
			return errChunkedNotFinal
		}
		if te.other {
			return ErrUnsupportedTransferCoding
		}
		req.BodyKind = BodyChunked
	} else if req.ContentLength > 0 {
		req.BodyKind = BodyLength
	}
	req.KeepAlive = conn.persistent(req.Version)
	if req.Version == HTTP10 {
		// RFC 9110 10.1.1 and 7.8: ignored in HTTP/1.0.
		req.ExpectContinue = false
	}
	req.Upgrade = req.Version == HTTP11 && conn.upgrade && upgradeField && !h2c
	return nil
}

// AppendHead appends the request line and every field line as received,
// then the empty line, to dst.
func (req *Request) AppendHead(dst []byte) []byte {
	dst = AppendRequestLine(dst, req.Method, req.Target, req.Version)
	dst = req.Headers.AppendTo(dst)
	return append(dst, "\r\n"...)
}

// fieldErrs are the errors parseFields returns, per side.
type fieldErrs struct{ bareLF, name, value, obsFold, tooMany error }

var (
	requestFieldErrs  = fieldErrs{errBareLF, errFieldName, errFieldValue, errObsFold, ErrTooManyHeaders}
	responseFieldErrs = fieldErrs{errRespBareLF, errRespFieldName, errRespFieldValue, errRespObsFold, errRespTooManyHeaders}
)

// parseFields parses field lines at the start of b through the empty line
// that ends them, appending to hs. n is the number of bytes parsed, 0 if b
// ends first. Name and Value slices are capped like the request line's. More
// than maxFields lines is an error: a head of tiny fields would otherwise grow
// a reused Headers slice to many times the head's size.
func parseFields(hs Headers, b []byte, maxFields int, e *fieldErrs) (_ Headers, n int, _ error) {
	size := len(b)
	for {
		if len(b) == 0 {
			return hs, 0, nil
		}
		switch b[0] {
		case '\r':
			if len(b) < 2 {
				return hs, 0, nil
			}
			if b[1] != '\n' {
				return hs, 0, e.name
			}
			return hs, size - len(b) + 2, nil
		case '\n':
			return hs, 0, e.bareLF
		case ' ', '\t':
			return hs, 0, e.obsFold // or whitespace before the first field
		}
		i := 0
		for i < len(b) && tokenTable[b[i]] {
			i++
		}
		if i == len(b) {
			return hs, 0, nil
		}
		if i == 0 || b[i] != ':' {
			return hs, 0, e.name // includes whitespace before the colon
		}
		rest := b[i+1:]
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			if k := bytes.IndexByte(rest, '\r'); k >= 0 && k+1 < len(rest) {
				return hs, 0, e.value // a bare CR: no LF can make this line valid
			}
			return hs, 0, nil
		}
		if j == 0 || rest[j-1] != '\r' {
			if k := bytes.IndexByte(rest[:j], '\r'); k >= 0 {
				return hs, 0, e.value // a bare CR, as when no LF has come yet
			}
			return hs, 0, e.bareLF
		}
		// A CR inside a CRLF line fails validValue below, as e.value.
		value := trimWS(rest[: j-1 : j-1])
		if !validValue(value) {
			return hs, 0, e.value
		}
		if len(hs) >= maxFields {
			return hs, 0, e.tooMany
		}
		hs = append(hs, Header{Name: b[:i:i], Value: value})
		b = rest[j+1:]
	}
}

// parseContentLength parses 1*DIGIT, or a list of equal ones ("5, 5",
// RFC 9110 8.6).
func parseContentLength(v []byte) (int64, bool) {
	n := int64(-1)
	for {
		var elem []byte
		elem, v = nextElem(v)
		m, ok := parseDecimal(elem)
		if !ok || n >= 0 && m != n {
			return 0, false
		}
		n = m
		if v == nil {
			return n, true
		}
	}
}

// parseDecimal parses 1*DIGIT up to 18 digits (no overflow).
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// teState accumulates Transfer-Encoding lines.
type teState struct {
	present     bool
	chunkedLast bool // the last coding seen is chunked
	chunked     bool // chunked seen at all
	other       bool // a coding other than chunked seen
}

// add reads one Transfer-Encoding value; false if it is malformed
// (a non-token coding, or chunked twice).
func (t *teState) add(v []byte) bool {
	t.present = true
	for len(v) > 0 {
		var elem []byte
		elem, v = nextElem(v)
		if len(elem) == 0 {
			continue
		}
		name := elem
		if i := bytes.IndexByte(elem, ';'); i >= 0 {
			name = trimWS(elem[:i])
		}
		if !isToken(name) {
			return false
		}
		if equalFold(name, "chunked") {
			if t.chunked || len(name) != len(elem) {
				return false // chunked applied twice, or with parameters
			}
			t.chunked, t.chunkedLast = true, true
			continue
		}
		t.other, t.chunkedLast = true, false
	}
	return true
}

// connFlags are the Connection options this package acts on.
type connFlags struct{ close, keepAlive, upgrade bool }

func (c *connFlags) add(v []byte) {
	for len(v) > 0 {
		var elem []byte
		elem, v = nextElem(v)
		switch {
		case equalFold(elem, "close"):
			c.close = true
		case equalFold(elem, "keep-alive"):
			c.keepAlive = true
		case equalFold(elem, "upgrade"):
			c.upgrade = true
		}
	}
}

func (c *connFlags) persistent(v Version) bool {
	if c.close {
		return false
	}
	return v == HTTP11 || c.keepAlive
}

// targetTable marks the bytes allowed in a request-target: visible ASCII but
// '#' (RFC 3986 wants more escaped; clients send them raw and nginx takes them).
var targetTable = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = true
	}
	t['#'] = false
	return t
}()

// hostTable marks the bytes of uri-host [":" port]: unreserved, sub-delims,
// '%', ':' and the brackets of an IP literal.
var hostTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~!$&'()*+,;=%:[]" {
		t[c] = true
	}
	return t
}()

// validHost checks a Host value or an authority, uri-host [":" port]: its
// bytes, and a host that is not empty once the port and a trailing dot are
// gone (":80", "."; RFC 9110 4.2.1: an http URI's host is not empty) and
// holds no empty label (".."), as nginx checks; an IP literal needs its
// closing bracket.
func validHost(h []byte) bool {
	for _, c := range h {
		if !hostTable[c] {
			return false
		}
	}
	if len(h) > 0 && h[0] == '[' {
		return bytes.IndexByte(h, ']') > 1
	}
	host := h
	if i := bytes.IndexByte(h, ':'); i >= 0 {
		host = h[:i]
	}
	if bytes.Contains(host, []byte("..")) {
		return false
	}
	return len(bytes.TrimSuffix(host, []byte{'.'})) > 0
}

// validTargetForm checks the form of a request-target whose bytes are all in
// targetTable (RFC 9112 3.2): authority-form exactly for CONNECT,
// asterisk-form only for OPTIONS, otherwise origin-form ("/...") or
// absolute-form ("scheme://...").
func validTargetForm(method, t []byte) bool {
	if len(t) == 0 {
		return false
	}
	if string(method) == "CONNECT" {
		// authority-form: uri-host ":" port
		colon := bytes.LastIndexByte(t, ':')
		if colon <= 0 || !validHost(t[:colon]) {
			return false
		}
		port := t[colon+1:]
		if len(port) == 0 || len(port) > 5 {
			return false
		}
		for _, c := range port {
			if !isDigit(c) {
				return false
			}
		}
		return true
	}
	switch t[0] {
	case '/':
		return true
	case '*':
		return len(t) == 1 && string(method) == "OPTIONS"
	}
	// absolute-form: scheme "://" ...
	i := bytes.Index(t, []byte("://"))
	if i <= 0 || !isAlpha(t[0]) {
		return false
	}
	for _, c := range t[1:i] {
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// targetAuthority returns the authority of an absolute-form target
// ("http://a.example:8080/p" gives "a.example:8080"); ok is false for the
// other forms. The target's form was checked (validTargetForm).
func targetAuthority(t []byte) (a []byte, ok bool) {
	if len(t) == 0 || t[0] == '/' || t[0] == '*' {
		return nil, false
	}
	i := bytes.Index(t, []byte("://"))
	if i <= 0 {
		return nil, false // authority-form (CONNECT)
	}
	a = t[i+3:]
	if j := bytes.IndexAny(a, "/?#"); j >= 0 {
		a = a[:j]
	}
	return a[:len(a):len(a)], true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// hasLower reports whether b holds an ASCII lower-case letter.
func hasLower(b []byte) bool {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			return true
		}
	}
	return false
}
