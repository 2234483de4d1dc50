package http1

import "io"

var (
	_ io.Reader = (*ContentLengthReader)(nil)
	_ io.Reader = (*ChunkedReader)(nil)
	_ io.Reader = (*Body)(nil)
	_ io.Reader = (*Reader)(nil)
	_ io.Writer = (*ChunkedWriter)(nil)
)

// BodyKind is how a message body is framed (RFC 9112 6).
type BodyKind uint8

const (
	// BodyNone: no body (or Content-Length: 0).
	BodyNone BodyKind = iota
	// BodyLength: exactly Content-Length bytes.
	BodyLength
	// BodyChunked: chunked transfer coding, possibly with trailers.
	BodyChunked
	// BodyClose: everything until the connection closes (responses only).
	BodyClose
)

func (k BodyKind) String() string {
	switch k {
	case BodyNone:
		return "none"
	case BodyLength:
		return "length"
	case BodyChunked:
		return "chunked"
	case BodyClose:
		return "close"
	}
	return "invalid"
}

// ContentLengthReader reads exactly N bytes from R, then io.EOF. If R ends
// first it returns io.ErrUnexpectedEOF. It never asks R for more than
// remains, so R's following bytes (a pipelined request) stay unread. The zero
// value is empty; Reset makes it ready.
type ContentLengthReader struct {
	R io.Reader
	N int64 // bytes remaining
}

// Reset reads n bytes from r from now on.
func (c *ContentLengthReader) Reset(r io.Reader, n int64) { c.R, c.N = r, n }

func (c *ContentLengthReader) Read(p []byte) (int, error) {
	if c.N <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.N {
		p = p[:c.N]
	}
	n, err := c.R.Read(p)
	c.N -= int64(n)
	if err == io.EOF {
		if c.N > 0 {
			return n, io.ErrUnexpectedEOF
		}
	} else if err == nil && c.N == 0 {
		err = io.EOF
	}
	return n, err
}

// Body reads one message body of any kind from a Reader: the part of the
// connection's input that belongs to this message and nothing after it. A
// close-delimited body is the Reader's raw bytes until EOF.
//
// A Body is meant to live in the per-connection state and be Reset for each
// message, so reading bodies does not allocate.
type Body struct {
	kind BodyKind
	src  *Reader
	cl   ContentLengthReader
	ch   ChunkedReader
	// limit, when positive, is the most body bytes Read gives; left is
	// what remains of it.
	limit, left int64
}

// Reset makes b read a body framed as kind from src (length is used for
// BodyLength). For a Request: b.Reset(r, req.BodyKind, req.ContentLength).
// It removes a limit.
func (b *Body) Reset(src *Reader, kind BodyKind, length int64) {
	b.kind, b.src = kind, src
	b.limit, b.left = 0, 0
	switch kind {
	case BodyLength:
		b.cl.Reset(src, length)
	case BodyChunked:
		b.ch.Reset(src)
	}
}

// Kind returns the framing b reads.
func (b *Body) Kind() BodyKind { return b.kind }

// SetLimit makes Read fail with ErrBodyTooLarge once the body goes past n
// bytes (decoded), after giving the first n; n <= 0 means no limit. Call it
// after Reset, before reading.
func (b *Body) SetLimit(n int64) {
	b.limit, b.left = max(n, 0), max(n, 0)
}

// Unread returns how many bytes of a body framed by Content-Length are
// left to read, and false for other framings or with a limit set.
func (b *Body) Unread() (int64, bool) {
	if b.kind != BodyLength || b.limit != 0 {
		return 0, false
	}
	return b.cl.N, true
}

// Moved records that n bytes of a body framed by Content-Length went from
// the connection to their destination past the Reader (a splice), which
// must hold none of the body buffered: Read goes on after them. n beyond
// what is unread counts as the whole rest.
func (b *Body) Moved(n int64) {
	if b.kind == BodyLength {
		b.cl.N -= min(max(n, 0), b.cl.N)
	}
}

// Read reads body bytes (decoded, for chunked). At the end of the body it
// returns io.EOF; a body cut short gives io.ErrUnexpectedEOF, one longer
// than the limit (SetLimit) ErrBodyTooLarge.
func (b *Body) Read(p []byte) (int, error) {
	if b.limit == 0 {
		return b.read(p)
	}
	// Ask for one byte past the limit, to tell a body that ends at it
	// from one that goes on.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		return n, ErrBodyTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *Body) read(p []byte) (int, error) {
	switch b.kind {
	case BodyLength:
		return b.cl.Read(p)
	case BodyChunked:
		return b.ch.Read(p)
	case BodyClose:
		return b.src.Read(p)
	}
	return 0, io.EOF
}

// Ready reports whether Read would return body bytes without waiting, as
// far as the Reader can tell (Reader.Ready), or the end of a chunked body
// whose trailer section is buffered. Framing does not count: a chunked
// body's CRLF after a chunk, or a size line without data after it, is not
// ready. A writer passing the body on flushes what it holds when Ready is
// false, so that the bytes do not wait for the next ones.
func (b *Body) Ready() bool {
	switch b.kind {
	case BodyLength:
		return b.cl.N > 0 && b.src.Ready() > 0
	case BodyChunked:
		return b.ch.ready()
	case BodyClose:
		return b.src.Ready() > 0
	}
	return false
}

// Ended reports whether the body was read to its end: Read would return
// io.EOF. It only looks; a body whose end is received but not yet read is
// not ended (Ready tells that it would not wait).
func (b *Body) Ended() bool {
	switch b.kind {
	case BodyNone:
		return true
	case BodyLength:
		return b.cl.N <= 0
	case BodyChunked:
		return b.ch.err == io.EOF
	}
	return false
}

// Trailers returns a chunked body's trailer fields once Read has returned
// io.EOF, nil otherwise. They borrow the Reader's buffer like a head does.
func (b *Body) Trailers() Headers {
	if b.kind == BodyChunked {
		return b.ch.Trailers()
	}
	return nil
}
