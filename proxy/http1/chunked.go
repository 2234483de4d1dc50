package http1

import (
	"bytes"
	"io"
)

// ChunkedReader decodes a chunked body (RFC 9112 7.1) from a Reader. Chunk
// extensions are checked for control characters and otherwise ignored; a
// chunk-size line, extensions included, may be at most 4 KiB; the trailer
// section at most the Reader's MaxHeadSize and MaxHeaders. Bare LF is rejected like in a
// head. It reads exactly through the final CRLF, leaving what follows
// buffered. The zero value is unusable; Reset makes it ready.
type ChunkedReader struct {
	r        *Reader
	state    chunkState
	left     int64 // bytes left in the current chunk
	err      error // sticky: io.EOF after the last chunk, or the failure
	trailers Headers
}

type chunkState uint8

const (
	chunkSize chunkState = iota // expecting a chunk-size line
	chunkData                   // inside chunk data
	chunkCRLF                   // expecting the CRLF after chunk data
)

var trailerErrs = fieldErrs{ErrBadChunk, ErrBadChunk, ErrBadChunk, ErrBadChunk, ErrTrailersTooLarge}

// Reset makes c decode a new chunked body from r, keeping the capacity of
// its trailer slice.
func (c *ChunkedReader) Reset(r *Reader) {
	c.r = r
	c.state = chunkSize
	c.left = 0
	c.err = nil
	c.trailers = c.trailers[:0]
}

// Trailers returns the trailer fields once Read has returned io.EOF, nil
// before. They borrow the Reader's buffer: valid until its next ReadRequest,
// ReadResponse or Reset.
func (c *ChunkedReader) Trailers() Headers {
	if c.err != io.EOF {
		return nil
	}
	return c.trailers
}

// Read returns decoded body bytes, at most one chunk's worth per call, and
// io.EOF after the last chunk and the trailers. Errors are sticky: a
// malformed body gives ErrBadChunk (or ErrChunkLineTooLong,
// ErrTrailersTooLarge), a truncated one io.ErrUnexpectedEOF.
func (c *ChunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for {
		switch c.state {
		case chunkSize:
			line, err := c.r.readLine(maxChunkLineSize)
			if err != nil {
				return 0, c.fail(err)
			}
			n, ok := parseChunkSize(line)
			if !ok {
				return 0, c.fail(ErrBadChunk)
			}
			if n == 0 {
				block, err := c.r.readTrailers()
				if err != nil {
					return 0, c.fail(err)
				}
				c.trailers, _, err = parseFields(c.trailers[:0], block, c.r.maxHeaders(), &trailerErrs)
				if err != nil {
					return 0, c.fail(err)
				}
				c.err = io.EOF
				return 0, io.EOF
			}
			c.left = n
			c.state = chunkData
		case chunkData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > c.left {
				p = p[:c.left]
			}
			n, err := c.r.Read(p)
			c.left -= int64(n)
			if c.left == 0 {
				c.state = chunkCRLF
			}
			if err != nil {
				return n, c.fail(noEOF(err))
			}
			return n, nil
		case chunkCRLF:
			line, err := c.r.readLine(2)
			if err == ErrChunkLineTooLong || err == nil && len(line) != 0 {
				err = ErrBadChunk
			}
			if err != nil {
				return 0, c.fail(err)
			}
			c.state = chunkSize
		}
	}
}

// ready reports whether Read returns without waiting (see Body.Ready):
// data of the current chunk is at hand, or the buffered bytes hold the
// framing up to some data of the next chunk, or up to the end of the body.
// When the buffered bytes do not reach that far but the source holds more
// (the framing after a chunk read straight from the connection), it takes
// them into the buffer first, which does not wait. Otherwise it only
// looks; Read parses.
func (c *ChunkedReader) ready() bool {
	if c.err != nil {
		return false
	}
	if c.state == chunkData {
		return c.r.Ready() > 0
	}
	return c.framedReady() || c.r.fillNoWait() && c.framedReady()
}

// framedReady is ready between chunks, on the buffered bytes alone.
func (c *ChunkedReader) framedReady() bool {
	b := c.r.buf[c.r.r:c.r.w]
	if c.state == chunkCRLF {
		if len(b) < 2 {
			return false
		}
		b = b[2:]
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return false
	}
	n, ok := parseChunkSize(bytes.TrimSuffix(b[:i], []byte("\r")))
	if !ok {
		return true // Read fails at once
	}
	rest := b[i+1:]
	if n > 0 {
		return len(rest) > 0
	}
	// The last chunk: ready once its trailer section ends in the buffer.
	return bytes.HasPrefix(rest, []byte("\r\n")) || bytes.Contains(rest, []byte("\r\n\r\n"))
}

func (c *ChunkedReader) fail(err error) error {
	c.err = err
	return err
}

// parseChunkSize parses chunk-size [ chunk-ext ]: 1-15 hex digits, then
// optionally BWS ";" and extensions without control characters.
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		d, ok := unhex(line[i])
		if !ok {
			break
		}
		n = n<<4 | int64(d)
	}
	if i == 0 || i > 15 {
		return 0, false
	}
	ext := trimWS(line[i:])
	if len(ext) > 0 && (ext[0] != ';' || !validValue(ext)) {
		return 0, false
	}
	return n, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ChunkedWriter writes chunked coding to an io.Writer: each Write becomes one
// chunk, sent with one Write call on the underlying writer (p is copied
// behind the size line into an internal buffer that grows to the largest
// p). Finish writes the last chunk and the trailers. The zero value is
// unusable; Reset makes it ready.
type ChunkedWriter struct {
	w   io.Writer
	buf []byte
}

// Reset makes cw write to w, keeping its buffer.
func (cw *ChunkedWriter) Reset(w io.Writer) { cw.w = w }

// Write writes p as one chunk. An empty p writes nothing (a zero-size chunk
// would end the body).
func (cw *ChunkedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	cw.buf = appendChunkSize(cw.buf[:0], len(p))
	cw.buf = append(cw.buf, p...)
	cw.buf = append(cw.buf, "\r\n"...)
	if _, err := cw.w.Write(cw.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Finish writes the last chunk, the trailers (nil for none) and the final
// CRLF in one Write call. Trailer names and values are not checked (see
// ValidFieldName).
func (cw *ChunkedWriter) Finish(trailers Headers) error {
	return cw.FinishSkipping(trailers, nil)
}

// FinishSkipping is Finish that also leaves out the trailer fields skip
// names (as Copier.SkipTrailer).
func (cw *ChunkedWriter) FinishSkipping(trailers Headers, skip func(name []byte) bool) error {
	cw.buf = append(cw.buf[:0], "0\r\n"...)
	cw.buf = trailers.appendTrailerFields(cw.buf, skip)
	cw.buf = append(cw.buf, "\r\n"...)
	_, err := cw.w.Write(cw.buf)
	return err
}

const hexDigits = "0123456789abcdef"

// appendChunkSize appends n in hex and CRLF.
func appendChunkSize(dst []byte, n int) []byte {
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = hexDigits[n&0xf]
		n >>= 4
		if n == 0 {
			break
		}
	}
	dst = append(dst, tmp[i:]...)
	return append(dst, "\r\n"...)
}
