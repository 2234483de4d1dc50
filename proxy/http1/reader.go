package http1

import (
	"bytes"
	"io"
)

const (
	// DefaultMaxHeadSize caps a head (and a trailer section) when
	// Reader.MaxHeadSize is zero.
	DefaultMaxHeadSize = 16 << 10
	// DefaultMaxHeaders caps the field lines of a head (and of a trailer
	// section) when Reader.MaxHeaders is zero.
	DefaultMaxHeaders = 128

	initialBufSize   = 4 << 10
	maxChunkLineSize = 4 << 10
	maxEmptyReads    = 100
)

// Reader is one connection's buffered reader: it reads heads in place from
// its own buffer and hands out body bytes without reading past them, so the
// bytes of a pipelined next message stay buffered for the next ReadRequest.
//
// Slices returned by ReadRequest and ReadResponse (and a ChunkedReader's
// trailers) point into the buffer. They stay valid until the next
// ReadRequest, ReadResponse or Reset call; body reads in between keep them
// intact (the buffer is never overwritten below the last head, and when it
// must grow the old array is left to the old slices).
//
// The buffer starts at 4 KiB on first use and grows (doubling) only when a
// head, chunk line or trailer section needs more room, so in steady state a
// Reader does not allocate.
type Reader struct {
	// MaxHeadSize caps a head: start line, field lines and the empty line,
	// including empty lines skipped before a request line. It caps a chunked
	// body's trailer section too. Zero means DefaultMaxHeadSize.
	MaxHeadSize int
	// MaxHeaders caps the number of field lines in a head or trailer
	// section (a request over it gets ErrTooManyHeaders, 431). Zero means
	// DefaultMaxHeaders.
	MaxHeaders int

	rd   io.Reader
	buf  []byte
	r, w int   // buf[r:w] is buffered and unread
	pin  int   // buf[:pin] holds the last head; not overwritten until the next head read
	err  error // from rd, returned once the buffered bytes are consumed
}

// NewReader returns a Reader over rd. The buffer is allocated on first read.
func NewReader(rd io.Reader) *Reader { return &Reader{rd: rd} }

// Reset discards buffered bytes and reads from rd from now on, keeping the
// buffer, so a Reader can be pooled across connections.
func (r *Reader) Reset(rd io.Reader) {
	r.rd = rd
	r.r, r.w, r.pin = 0, 0, 0
	r.err = nil
}

// ReleaseBuffer gives up the buffer when nothing is buffered and no read
// error is pending, so that a connection idle between requests need not
// hold one, and returns it; otherwise, or when the Reader has no buffer,
// it returns nil and keeps what it has. Slices the last head handed out
// point into the returned array: the caller must be done with them before
// it reuses the array. A Reader without a buffer allocates one on its next
// read, or takes one from UseBuffer.
func (r *Reader) ReleaseBuffer() []byte {
	if r.r != r.w || r.err != nil || r.buf == nil {
		return nil
	}
	b := r.buf
	r.buf = nil
	r.r, r.w, r.pin = 0, 0, 0
	return b
}

// UseBuffer gives a Reader that has no buffer (new, or after
// ReleaseBuffer) the buffer b, whose first n bytes were already received
// from the connection and are the next to read. It panics if the Reader has
// a buffer or n is out of b's range.
func (r *Reader) UseBuffer(b []byte, n int) {
	if r.buf != nil || n < 0 || n > len(b) {
		panic("http1: UseBuffer on a Reader with a buffer, or n out of range")
	}
	r.buf = b
	r.r, r.w, r.pin = 0, n, 0
}

// Buffered returns how many bytes are buffered and not yet consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// Read reads raw bytes: buffered ones first; when none are buffered it reads
// from the underlying reader straight into p (one Read call), so a body
// copied through a large p costs no extra copy. Read is how a
// close-delimited body or a tunnel after an upgrade is read.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.r < r.w {
		n := copy(p, r.buf[r.r:r.w])
		r.r += n
		return n, nil
	}
	if r.err != nil {
		return 0, r.readErr()
	}
	return r.rd.Read(p)
}

func (r *Reader) maxHead() int {
	if r.MaxHeadSize > 0 {
		return r.MaxHeadSize
	}
	return DefaultMaxHeadSize
}

func (r *Reader) maxHeaders() int {
	if r.MaxHeaders > 0 {
		return r.MaxHeaders
	}
	return DefaultMaxHeaders
}

func (r *Reader) readErr() error {
	err := r.err
	r.err = nil
	return err
}

// fill reads once from the underlying reader into the free tail of buf,
// first making room by moving the unread bytes down to pin, or by growing
// buf when they already start there. It never overwrites buf[:pin].
func (r *Reader) fill() error {
	if r.err != nil {
		return r.readErr()
	}
	if r.r == r.w {
		r.r, r.w = r.pin, r.pin
	}
	if r.w == len(r.buf) {
		if r.r > r.pin {
			n := copy(r.buf[r.pin:], r.buf[r.r:r.w])
			r.r, r.w = r.pin, r.pin+n
		} else {
			r.grow()
		}
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		r.w += n
		if err != nil {
			if n > 0 {
				r.err = err
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// grow moves the unread bytes to the start of a buffer twice as large. The
// old array stays with any slices into it, so pinned bytes stay valid.
func (r *Reader) grow() {
	size := max(2*len(r.buf), initialBufSize)
	nb := make([]byte, size)
	n := copy(nb, r.buf[r.r:r.w])
	r.buf = nb
	r.r, r.w, r.pin = 0, n, 0
}

// readHead reads the next head and parses it with parse, which returns the
// head's length, 0 if b ends before the head does, or an error. The head is
// then consumed and pinned. skipEmpty skips CRLFs before it (a request,
// RFC 9112 2.2).
//
// The first parse runs on whatever is buffered: a head that arrived whole,
// the common case, is scanned once. If that parse finds the head incomplete,
// later ones wait until headEnd sees the empty line, so a head trickling in
// a byte at a time costs linear, not quadratic, time. So a malformed head
// that arrives whole is rejected at once, one that trickles in when its end
// arrives (or on the size limit or EOF).
//
// On EOF before any byte of a head it returns io.EOF, inside one
// io.ErrUnexpectedEOF.
func (r *Reader) readHead(skipEmpty bool, tooLarge, malformed error, parse func(b []byte) (int, error)) error {
	limit := r.maxHead()
	r.pin = 0
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
	off, skipped := 0, 0 // off: bytes of buf[r.r:r.w] headEnd already searched
	tried := false
	for {
		if skipEmpty {
			for r.w-r.r >= 2 && r.buf[r.r] == '\r' && r.buf[r.r+1] == '\n' {
				r.r += 2
				skipped += 2
				off = 0
			}
			if skipped > limit {
				return tooLarge
			}
		}
		b := r.buf[r.r:r.w]
		ready := len(b) > 0 && !tried && !(skipEmpty && len(b) == 1 && b[0] == '\r')
		complete := false
		if tried {
			end, next := headEnd(b, off)
			ready, complete, off = end > 0, end > 0, next
		}
		if ready {
			n, err := parse(b)
			if err != nil {
				return err
			}
			if n > 0 {
				if n+skipped > limit {
					return tooLarge
				}
				r.r += n
				r.pin = r.r
				return nil
			}
			if complete {
				return malformed // parse and headEnd disagree; never expected
			}
			tried = true
		}
		if len(b)+skipped >= limit {
			return tooLarge
		}
		if err := r.fill(); err != nil {
			if err == io.EOF && r.r < r.w {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
}

// headEnd finds the end of a head in b: the index just past the first empty
// line (CRLF, or a bare LF, which the parser then rejects). It returns -1 and
// where to resume searching when b holds no end yet.
func headEnd(b []byte, from int) (end, next int) {
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return -1, len(b)
		}
		i += from
		if i+1 >= len(b) {
			return -1, i
		}
		switch b[i+1] {
		case '\n':
			return i + 2, 0
		case '\r':
			if i+2 >= len(b) {
				return -1, i
			}
			if b[i+2] == '\n' {
				return i + 3, 0
			}
		}
		from = i + 1
	}
}

// readTrailers returns a trailer section: field lines through the empty line
// that ends it, possibly just CRLF. It does not move the pin.
func (r *Reader) readTrailers() ([]byte, error) {
	limit := r.maxHead()
	off := 0
	for {
		b := r.buf[r.r:r.w]
		if len(b) >= 1 && b[0] == '\n' {
			return nil, ErrBadChunk
		}
		if len(b) >= 2 && b[0] == '\r' {
			if b[1] != '\n' {
				return nil, ErrBadChunk
			}
			r.r += 2
			return b[:2], nil
		}
		if len(b) >= 2 {
			end, next := headEnd(b, off)
			if end > 0 {
				if end > limit {
					return nil, ErrTrailersTooLarge
				}
				r.r += end
				return b[:end], nil
			}
			off = next
		}
		if len(b) >= limit {
			return nil, ErrTrailersTooLarge
		}
		if err := r.fill(); err != nil {
			return nil, noEOF(err)
		}
	}
}

// readLine returns the next CRLF-terminated line without its CRLF, at most
// limit bytes with it; the slice is valid until the next read.
func (r *Reader) readLine(limit int) ([]byte, error) {
	off := 0
	for {
		b := r.buf[r.r:r.w]
		if i := bytes.IndexByte(b[off:], '\n'); i >= 0 {
			i += off
			if i+1 > limit {
				return nil, ErrChunkLineTooLong
			}
			if i == 0 || b[i-1] != '\r' {
				return nil, ErrBadChunk
			}
			r.r += i + 1
			return b[:i-1], nil
		}
		off = len(b)
		if len(b) >= limit {
			return nil, ErrChunkLineTooLong
		}
		if err := r.fill(); err != nil {
			return nil, noEOF(err)
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
