package http1

import "io"

// DefaultCopyBufferSize is the size of a Copier's buffer when Buf is nil
// or too short.
const DefaultCopyBufferSize = 32 << 10

// chunkHeadroom is the room kept before the data in the copy buffer for a
// chunk-size line: 15 hex digits and CRLF.
const chunkHeadroom = 17

const minCopyBufferSize = 64

// minDirectRead is the least free space of a buffered destination that
// Copy reads into directly; with less, it reads into its own buffer and the
// destination copies (and flushes) as it needs.
const minDirectRead = 4 << 10

// availableBufferer is a buffered writer that shows its free space: the
// empty slice AvailableBuffer returns has it as capacity, and a Write of
// bytes put there right after is meant to take them without a copy.
type availableBufferer interface {
	AvailableBuffer() []byte
}

type flusher interface {
	Flush() error
}

// Copier streams message bodies through one fixed buffer, never holding a
// body whole. It belongs to one connection (or one goroutine) and is reused
// for each body, so copying does not allocate.
type Copier struct {
	// Buf is the copy buffer. Nil, or shorter than 64 bytes, means one of
	// DefaultCopyBufferSize allocated on first use.
	Buf []byte
	// SkipTrailer, when set, leaves out the trailer fields it names, on
	// top of those no trailer may carry: a proxy passes the fields it set
	// in the head itself (X-Forwarded-For, say), which a trailer must not
	// add to.
	SkipTrailer func(name []byte) bool
}

// Copy reads the body from src and writes it to dst framed as as:
//
//   - as == src.Kind(): the same framing; a chunked body is re-chunked (one
//     chunk per read, trailers passed on), others copied byte for byte;
//   - as == BodyChunked from any body: re-framed as chunked, e.g. a
//     close-delimited response sent to an HTTP/1.1 client;
//   - as == BodyClose from any body: the raw bytes, trailers dropped, e.g.
//     to an HTTP/1.0 client that reads until close.
//
// Other combinations return ErrBodyKind without reading. Each chunk (or each
// read, when not chunked) is one Write call on dst. Copy returns the number
// of body bytes written; an error from dst is wrapped in *WriteError, an
// error reading src is returned as it is.
//
// When dst is a buffered writer that shows its free space (an
// AvailableBuffer method, as bufio.Writer has) and not chunked, each read
// goes straight into that space while it holds at least 4 KiB (a dst with
// a Flush method is flushed when it holds less), and the Write that
// follows costs no copy: the body is copied once in user memory, from the
// connection into the writer.
func (c *Copier) Copy(dst io.Writer, src *Body, as BodyKind) (int64, error) {
	switch {
	case as == src.Kind(), as == BodyChunked, as == BodyClose:
	default:
		return 0, ErrBodyKind
	}
	if as == BodyNone {
		return 0, nil
	}
	if len(c.Buf) < minCopyBufferSize {
		c.Buf = make([]byte, DefaultCopyBufferSize)
	}
	if as == BodyChunked {
		return c.copyChunked(dst, src)
	}
	free, _ := dst.(availableBufferer)
	fl, _ := dst.(flusher)
	var written int64
	for {
		buf := c.Buf
		if free != nil {
			b := free.AvailableBuffer()
			if fl != nil && cap(b) < minDirectRead {
				if err := fl.Flush(); err != nil {
					return written, &WriteError{err}
				}
				b = free.AvailableBuffer()
			}
			if cap(b) >= minDirectRead {
				buf = b[:cap(b)]
			}
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return written, &WriteError{err}
			}
			written += int64(n)
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// copyChunked reads into the buffer after room for the size line and before
// room for the CRLF, so a chunk goes out in one Write without a copy.
func (c *Copier) copyChunked(dst io.Writer, src *Body) (int64, error) {
	buf := c.Buf
	data := buf[chunkHeadroom : len(buf)-2]
	var written int64
	for {
		n, rerr := src.Read(data)
		if n > 0 {
			var size [chunkHeadroom]byte
			hdr := appendChunkSize(size[:0], n)
			start := chunkHeadroom - len(hdr)
			copy(buf[start:], hdr)
			buf[chunkHeadroom+n] = '\r'
			buf[chunkHeadroom+n+1] = '\n'
			if _, err := dst.Write(buf[start : chunkHeadroom+n+2]); err != nil {
				return written, &WriteError{err}
			}
			written += int64(n)
		}
		if rerr == io.EOF {
			// The trailers borrow the Reader's buffer, not c.Buf; an
			// oversized trailer section grows a temporary copy.
			last := append(buf[:0], "0\r\n"...)
			last = src.Trailers().appendTrailerFields(last, c.SkipTrailer)
			last = append(last, "\r\n"...)
			if _, err := dst.Write(last); err != nil {
				return written, &WriteError{err}
			}
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}
