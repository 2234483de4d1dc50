// Package http1 is the HTTP/1.1 codec of the proxy's hot path: request and
// response heads parsed in place, body framing, chunked coding, and a head
// serializer, with no allocation per message in steady state.
//
// # Parsing
//
// A Reader wraps one connection's io.Reader with its own growable buffer.
// ReadRequest and ReadResponse parse a head in place: every []byte in a
// Request or Response (method, target, reason, header names and values) is a
// slice of that buffer. Those slices are valid until the next ReadRequest,
// ReadResponse or Reset on the same Reader; reading the body in between does
// not disturb them. The caller copies what it keeps longer.
//
// Parsing follows RFC 9112 strictly. A head that breaks it is answered by a
// *ProtocolError carrying the status the caller sends before closing: 400,
// 414 (ErrURITooLong), 431 (ErrHeadTooLarge, ErrTooManyHeaders), 501 (a transfer coding other
// than chunked) or 505 (a version other than HTTP/1.0 and HTTP/1.1) for a
// request, and 502 for a response read from an upstream. Choices where the
// RFC leaves room:
//
//   - A bare LF (an LF not preceded by CR) is rejected wherever it appears in
//     a head or a chunked body's framing, never read as a line end (RFC 9112
//     2.2 allows either). Accepting it is how parsers come to disagree on
//     where a message ends.
//   - Empty lines (CRLF) before a request line are skipped (RFC 9112 2.2).
//   - Transfer-Encoding together with Content-Length, and Transfer-Encoding in
//     an HTTP/1.0 message, are rejected as request smuggling (also in
//     responses, where the RFC would let TE win).
//   - The only transfer coding implemented is chunked. A request whose final
//     coding is not chunked gets 400; one with another coding before chunked
//     gets 501. A response with any coding but chunked is rejected (502),
//     since forwarding it would strip the label off the coded bytes.
//   - Content-Length may repeat (in lines or as a list) only with one value.
//   - The request-target must be one of the four forms of RFC 9112 3.2, in
//     visible ASCII without '#'. Characters RFC 3986 wants escaped but that
//     clients send raw ('|', '{', '"', ...) are accepted, as nginx does.
//   - Field names are tokens with no whitespace before the colon; obs-fold
//     is rejected; values may not hold control characters other than HTAB.
//   - An HTTP/1.1 request must have exactly one Host field; an HTTP/1.0
//     request at most one.
//   - A malformed head that arrives whole is rejected at once; one that
//     trickles in is checked when its end arrives (parsing a partial head
//     again on every read would cost quadratic time).
//
// # Bodies
//
// BodyKind says how a body is framed; Request and Response carry it. A Body
// reads a body of any kind from a Reader (ContentLengthReader and
// ChunkedReader are the parts), never past its end, so bytes of a pipelined
// next request stay buffered. ChunkedWriter writes chunked coding; Copier
// streams a body from a Body to a writer through a fixed buffer, re-framing
// it as the caller asks, without holding it whole.
//
// # Serializing
//
// AppendRequestLine, AppendStatusLine, AppendHeader and Headers.AppendTo /
// AppendEndToEnd build a head into a caller's reusable []byte, so the proxy
// can drop hop-by-hop fields (Headers.HopByHop), add X-Forwarded-For and the
// like, and send the head with one Write. Parsed slices are capped, so
// appending to one copies it rather than overwriting the Reader's buffer.
//
// # Semantics
//
// ReadRequest and ReadResponse derive what the proxy acts on: body framing,
// keep-alive (HTTP/1.0 vs 1.1 and Connection), Expect: 100-continue and
// Upgrade. KeepAlive, ExpectsContinue, IsUpgrade and ResponseHasBody apply
// the same rules to heads the caller builds.
//
// # Goroutines
//
// A Reader, Body, ChunkedWriter and Copier belong to one connection and are
// used by one goroutine at a time. Nothing here starts a goroutine.
package http1
