package http1

import "bytes"

// Response is a parsed response head. Reason and Headers borrow the Reader's
// buffer: valid until the next ReadRequest, ReadResponse or Reset on that
// Reader. A Response is reused across responses; Headers keep their capacity.
type Response struct {
	Version Version
	Status  int
	Reason  []byte
	Headers Headers

	// Derived from the status, the request method and Headers by
	// ReadResponse.

	// BodyKind is how the body is framed (RFC 9112 6.3): BodyNone for a
	// response to HEAD, a 1xx, 204 or 304, and a 2xx to CONNECT; then
	// chunked, Content-Length, or close-delimited.
	BodyKind BodyKind
	// ContentLength is the Content-Length value, -1 without one.
	ContentLength int64
	// KeepAlive: the connection may carry another request after this
	// response: not "Connection: close", HTTP/1.1 or "Connection:
	// keep-alive", the body is not close-delimited, and the connection
	// does not leave HTTP/1 (a 101, or a 2xx to CONNECT: a tunnel follows).
	KeepAlive bool
}

// ReadResponse reads and parses the next response head into resp, reusing
// resp.Headers' capacity. method is the method of the request it answers
// (HEAD and CONNECT change the framing). An interim (1xx) response is
// returned like any other; the caller reads again for the final one.
//
// Errors are those of ReadRequest, except that a malformed head (or one over
// MaxHeadSize) is a *ProtocolError with Status 502, the status the proxy
// answers its client with.
func (r *Reader) ReadResponse(resp *Response, method []byte) error {
	maxFields := r.maxHeaders()
	return r.readHead(false, errRespHeadTooLarge, errRespHead, func(b []byte) (int, error) {
		return resp.parse(b, method, maxFields)
	})
}

// parse parses a response head at the start of b, returning its length, or
// 0 if b ends first.
func (resp *Response) parse(b, method []byte, maxFields int) (int, error) {
	eol := bytes.IndexByte(b, '\n')
	if eol < 0 {
		if k := bytes.IndexByte(b, '\r'); k >= 0 && k+1 < len(b) {
			return 0, errRespStatusLine // a bare CR: no LF can make this line valid
		}
		return 0, nil
	}
	if eol == 0 || b[eol-1] != '\r' {
		return 0, errRespBareLF
	}
	line := b[: eol-1 : eol-1]
	// status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]; the SP after
	// the code is often missing when the reason is empty, so it is optional.
	if len(line) < 12 || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, errRespStatusLine
	}
	v, _, ok := parseVersion(line[:8])
	if !ok {
		return 0, errRespVersion
	}
	resp.Version = v
	code := line[9:12]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) || code[0] == '0' {
		return 0, errRespStatusLine
	}
	resp.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	resp.Reason = nil
	if len(line) > 12 {
		resp.Reason = line[13:]
		if !validValue(resp.Reason) {
			return 0, errRespStatusLine
		}
	}
	hs, n, err := parseFields(resp.Headers[:0], b[eol+1:], maxFields, &responseFieldErrs)
	resp.Headers = hs
	if err != nil || n == 0 {
		return 0, err
	}
	if err := resp.derive(method); err != nil {
		return 0, err
	}
	return eol + 1 + n, nil
}

func (resp *Response) derive(method []byte) error {
	resp.ContentLength = -1
	var conn connFlags
	var te teState
	for i := range resp.Headers {
		h := &resp.Headers[i]
		switch len(h.Name) {
		case 10:
			if equalFold(h.Name, "connection") {
				conn.add(h.Value)
			}
		case 14:
			if equalFold(h.Name, "content-length") {
				n, ok := parseContentLength(h.Value)
				if !ok {
					return errRespContentLength
				}
				if resp.ContentLength >= 0 && resp.ContentLength != n {
					return errRespMultipleLength
				}
				resp.ContentLength = n
			}
		case 17:
			if equalFold(h.Name, "transfer-encoding") {
				if !te.add(h.Value) {
					return errRespTE
				}
			}
		}
	}
	if te.present {
		if resp.ContentLength >= 0 || resp.Version == HTTP10 {
			return errRespSmuggling
		}
		if !te.chunkedLast || te.other {
			return errRespTE
		}
	}
	switch {
	case !ResponseHasBody(method, resp.Status):
		resp.BodyKind = BodyNone
	case te.present:
		resp.BodyKind = BodyChunked
	case resp.ContentLength == 0:
		resp.BodyKind = BodyNone
	case resp.ContentLength > 0:
		resp.BodyKind = BodyLength
	default:
		resp.BodyKind = BodyClose
	}
	resp.KeepAlive = conn.persistent(resp.Version) && resp.BodyKind != BodyClose &&
		!switchesProtocol(method, resp.Status)
	return nil
}

// AppendHead appends the status line and every field line as received, then
// the empty line, to dst.
func (resp *Response) AppendHead(dst []byte) []byte {
	dst = AppendStatusLine(dst, resp.Version, resp.Status, resp.Reason)
	dst = resp.Headers.AppendTo(dst)
	return append(dst, "\r\n"...)
}

// ResponseHasBody reports whether a response with this status to a request
// with this method has a body at all (RFC 9112 6.3): not to HEAD, not 1xx,
// 204 or 304, and not a 2xx to CONNECT (the connection becomes a tunnel).
func ResponseHasBody(method []byte, status int) bool {
	switch {
	case status < 200, status == 204, status == 304:
		return false
	case string(method) == "HEAD":
		return false
	case string(method) == "CONNECT" && status < 300:
		return false
	}
	return true
}

// switchesProtocol reports whether the connection leaves HTTP/1 after this
// response: 101 Switching Protocols, or a 2xx to CONNECT.
func switchesProtocol(method []byte, status int) bool {
	return status == 101 || string(method) == "CONNECT" && 200 <= status && status < 300
}
