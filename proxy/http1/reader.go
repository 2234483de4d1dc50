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
// ReadRequest, ReadResponse, Reset, ReleaseBuffer or GiveBack call; body
// reads in between keep them intact (the buffer is never overwritten below
// the last head, and when it must grow the old array is left to the old
// slices).
//
// The buffer starts at 4 KiB on first use and grows (doubling) only when a
// head, chunk line or trailer section needs more room, so in steady state a
// Reader does not allocate.
//
// When its source is a Lender (the io_uring runtime's connections), a
// Reader with nothing buffered reads the next head from a lent buffer, the
// one the kernel received into, and parses it there without copying it. A
// head that does not arrive whole in one lent buffer, and whatever must be
// read after the lent buffer's bytes, go through the Reader's own buffer as
// usual. The lent buffer goes back to the Lender at the next head read,
// Reset, ReleaseBuffer or GiveBack.
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
	// more: the last read from rd filled all the room it was given (or
	// was a lent buffer), so rd may hold more bytes already (see Ready).
	more bool

	// Lent buffers (see Lender): lend is rd as a Lender, or nil. While lent
	// is set, buf is a lent buffer and own the Reader's own (or nil).
	// release gives back the lent buffer that buf is, or that the last head
	// (buf[:pin] before the switch to own) still lives in; nil when none.
	lend    Lender
	lent    bool
	inPlace bool // the last head was parsed in a lent buffer
	own     []byte
	release func()
}

// Lender is a source whose received bytes can be parsed where they arrived:
// netio.Borrower, the io_uring driver's connections. ReadBorrow waits like
// Read and returns the next received bytes in place; they stay valid until
// release is called, which must happen exactly once. On an error buf is
// empty. It may also lend nothing, with an empty buf and a nil error: the
// Reader then reads into its own buffer.
//
// A Lender that is also a Keeper is asked, for each buffer it lends, whether
// the Reader may keep it while the head parsed in it is in use (until the
// next head, for a whole exchange): when not (the Lender's buffers run
// short), the Reader copies the bytes into its own buffer and gives the lent
// one back at once.
type Lender interface {
	ReadBorrow() (buf []byte, release func(), err error)
}

// Keeper is the optional part of a Lender (see Lender).
type Keeper interface {
	KeepLent() bool
}

// NewReader returns a Reader over rd. The buffer is allocated on first read.
// If rd is a Lender, heads are read from its buffers in place.
func NewReader(rd io.Reader) *Reader {
	r := &Reader{}
	r.Reset(rd)
	return r
}

// Reset discards buffered bytes and reads from rd from now on, keeping the
// buffer, so a Reader can be pooled across connections. A lent buffer goes
// back to its Lender. If rd is a Lender, heads are read from its buffers.
func (r *Reader) Reset(rd io.Reader) {
	r.giveBack()
	r.rd = rd
	r.lend, _ = rd.(Lender)
	r.r, r.w, r.pin = 0, 0, 0
	r.err = nil
	r.inPlace = false
	r.more = false
}

// GiveBack returns a lent buffer to its Lender now rather than at the next
// head read: unread bytes move to the Reader's own buffer, and the slices
// of the last head become invalid. A caller done with the head that may
// not read again for long (a tunnel, after its 101) calls it, so that the
// connection holds none of the Lender's buffers meanwhile. It does nothing
// when no buffer is lent.
func (r *Reader) GiveBack() {
	if r.lent {
		r.pin = 0
		r.unlend()
	}
	r.giveBack()
}

// giveBack calls a pending release. buf must no longer be lent.
func (r *Reader) giveBack() {
	if r.lent {
		r.buf, r.own, r.lent = r.own, nil, false
	}
	if f := r.release; f != nil {
		r.release = nil
		f()
	}
}

// unlend switches from the lent buffer to the Reader's own, moving the
// unread bytes there. The lent buffer is given back at once unless the
// last head lives in it (pin > 0).
func (r *Reader) unlend() {
	n := r.w - r.r
	own := r.own
	if len(own) < n {
		size := max(len(own), initialBufSize)
		for size < n {
			size *= 2
		}
		own = make([]byte, size)
	}
	copy(own, r.buf[r.r:r.w])
	pinned := r.pin > 0
	r.buf, r.own, r.lent = own, nil, false
	r.r, r.w, r.pin = 0, n, 0
	if !pinned {
		r.giveBack()
	}
}

// borrow makes the Lender's next received buffer the Reader's buffer. The
// Reader has nothing buffered, no head pinned and no lent buffer. An empty
// buffer without an error lends nothing: the caller reads as usual.
func (r *Reader) borrow() error {
	b, release, err := r.lend.ReadBorrow()
	if len(b) == 0 {
		release()
		return err
	}
	r.UseLent(b, release)
	if err != nil { // the contract says this does not happen; keep both
		r.err = err
	}
	return nil
}

// ReleaseBuffer gives up the buffer when nothing is buffered and no read
// error is pending, so that a connection idle between requests need not
// hold one, and returns it; otherwise, or when the Reader has no buffer,
// it returns nil and keeps what it has. Slices the last head handed out
// point into the returned array, or into a lent buffer it gives back: the
// caller must be done with them before it reuses the array. A Reader
// without a buffer allocates one on its next read, or takes one from
// UseBuffer.
func (r *Reader) ReleaseBuffer() []byte {
	if r.r != r.w || r.err != nil || r.buf == nil {
		return nil
	}
	r.giveBack()
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

// InPlace reports whether the last head read was parsed in a buffer its
// source lent, where it was received, rather than in the Reader's own.
func (r *Reader) InPlace() bool { return r.inPlace }

// UseLent makes b, lent by the Reader's source with release, the next
// bytes to read, as if the Reader had borrowed it itself: a caller that
// waited for input on its own (the first read of a parked connection) hands
// it over without a copy. The Reader must have nothing buffered and no
// buffer lent, and b must not be empty; UseLent panics otherwise.
func (r *Reader) UseLent(b []byte, release func()) {
	if r.r != r.w || r.lent || r.release != nil || len(b) == 0 {
		panic("http1: UseLent on a Reader with bytes or a lent buffer, or with no bytes")
	}
	r.own, r.buf, r.lent, r.release = r.buf, b, true, release
	r.r, r.w, r.pin = 0, len(b), 0
	r.more = true
}

// Buffered returns how many bytes are buffered and not yet consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// Pending returns the bytes buffered and not yet consumed: after a failed
// ReadRequest, the head as far as it was received. They are valid until
// the next read.
func (r *Reader) Pending() []byte { return r.buf[r.r:r.w] }

// BufferedSource is a source that can tell, cheaply and without waiting,
// how many bytes it holds that its next Read returns at once: a connection
// counting what its kernel or its driver already received.
type BufferedSource interface {
	Buffered() int
}

// Ready reports how many bytes a Read would return without waiting, as far
// as the Reader can tell: the buffered bytes or, when there are none, what
// the source holds, if it is a BufferedSource and the last read from it
// filled all the room it was given (otherwise it had no more then, and 0 is
// returned without asking). A writer that passes a body on flushes when
// Ready is 0 and holds its bytes for the next write otherwise, so a body
// that arrived whole leaves in one send.
func (r *Reader) Ready() int {
	if n := r.w - r.r; n > 0 {
		return n
	}
	return r.held()
}

// held is what the source holds past the buffer, when it is a
// BufferedSource and may hold any (the last read filled its room); else 0.
func (r *Reader) held() int {
	if r.err != nil || !r.more {
		return 0
	}
	if bs, ok := r.rd.(BufferedSource); ok {
		return bs.Buffered()
	}
	return 0
}

// fillNoWait reads once more from the source into the buffer when the
// source holds bytes (held), so that the read does not wait, and reports
// whether it read.
func (r *Reader) fillNoWait() bool {
	return r.held() > 0 && r.fill() == nil
}

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
	n, err := r.rd.Read(p)
	r.more = n == len(p)
	return n, err
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
	if r.lent {
		r.unlend()
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
		room := len(r.buf) - r.w
		n, err := r.rd.Read(r.buf[r.w:])
		r.w += n
		r.more = n == room
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
	r.inPlace = false
	if r.lent && r.pin > 0 {
		r.pin = 0
		r.unlend() // the last head's buffer: given back, as nothing is pinned now
	}
	r.pin = 0
	if !r.lent {
		r.giveBack() // the last head's buffer, if it was lent
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
		if r.lend != nil && r.err == nil && !r.lent {
			if err := r.borrow(); err != nil {
				return err
			}
		}
	}
	if r.lent {
		if k, ok := r.lend.(Keeper); ok && !k.KeepLent() {
			r.unlend() // gives it back: nothing is pinned
		}
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
			from := off
			end, next := headEnd(b, off)
			ready, complete, off = end > 0, end > 0, next
			if !ready && bareCR(b, from) {
				ready = true // parse rejects it now rather than wait for an LF
			}
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
				r.inPlace = r.lent
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

// bareCR reports whether b[from:] holds a CR followed by a byte other
// than LF.
func bareCR(b []byte, from int) bool {
	if from > 0 {
		from-- // a CR at the end of the last search
	}
	for {
		i := bytes.IndexByte(b[from:], '\r')
		if i < 0 {
			return false
		}
		i += from
		if i+1 < len(b) && b[i+1] != '\n' {
			return true
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
