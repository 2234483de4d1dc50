package netio

import (
	"fmt"
	"net"
	"time"

	"github.com/monolake-go/monolake/uring"
)

// UringParams configures NewUring. The zero value is a 256-entry ring with
// 1024 provided receive buffers of 16 KiB.
type UringParams struct {
	// Entries is the submission queue size (monolake's "entries"). Zero
	// means 256.
	Entries uint32

	// SQPollIdle, when positive, turns on SQPOLL with this idle time
	// (monolake's "sqpoll_idle"). Off by default.
	SQPollIdle time.Duration

	// BufSize is the size of each provided receive buffer. Zero means
	// 16 KiB. A Read never returns more than one buffer's worth per buffer
	// it consumes, so this bounds the bytes one receive completion carries.
	BufSize int

	// BufCount is the number of provided receive buffers shared by every
	// connection of the driver, a power of two up to 32768. Zero means
	// 1024. The memory is mapped once (BufSize × BufCount) and only pages
	// the kernel fills become resident.
	BufCount int

	// ZCThreshold is the smallest Write that is sent with SEND_ZC. Zero
	// means 16 KiB; a negative value turns SEND_ZC off.
	ZCThreshold int

	// SpliceCopy makes io.Copy between two connections of the driver
	// (their ReadFrom / WriteTo) splice socket → pipe → socket from the
	// first byte. Off by default: the copy then goes through the received
	// buffers while they come part-filled (requests, small responses: no
	// syscall of its own) and splices from the first full buffer on (bulk
	// transfer). SpliceTo splices regardless.
	SpliceCopy bool
}

func (p UringParams) withDefaults() UringParams {
	if p.Entries == 0 {
		p.Entries = 256
	}
	if p.BufSize <= 0 {
		p.BufSize = 16 << 10
	}
	if p.BufCount <= 0 {
		p.BufCount = 1024
	}
	if p.ZCThreshold == 0 {
		p.ZCThreshold = 16 << 10
	}
	return p
}

// UringAvailable reports whether the io_uring driver can run here, and if
// not, why: the error wraps errors.ErrUnsupported in builds without the
// binding, or the syscall.Errno the kernel answered (seccomp, sysctl,
// memlock). The worker calls it once to choose between the drivers and logs
// the reason when it falls back to epoll. About ten syscalls.
func UringAvailable() error {
	if err := uring.Check(); err != nil {
		return fmt.Errorf("netio: io_uring driver unavailable: %w", err)
	}
	return nil
}

// Borrower is the zero-copy read capability of the io_uring driver's
// connections, found by type assertion on a net.Conn:
//
//	if b, ok := c.(netio.Borrower); ok { buf, release, err := b.ReadBorrow() ... }
//
// ReadBorrow waits like Read and returns the received bytes in place, in
// the buffer the kernel filled, without copying them. buf is valid until
// release is called and must not be used (or kept, even as a sub-slice)
// afterwards; release must be called exactly once, from any goroutine,
// before the driver is closed. Holding buffers starves the driver's shared
// buffer ring, so a caller parses and releases promptly. Deadlines, EOF and
// errors are as for Read (buf is then empty and release a no-op).
type Borrower interface {
	ReadBorrow() (buf []byte, release func(), err error)
}

// BufferGauge is the io_uring driver's connections' view of their driver's
// receive buffers, found by type assertion. BuffersScarce reports whether
// at least half of them are out of the ring (queued for readers or lent):
// a reader that would keep a lent buffer for long (a parsed HTTP head, for
// its whole exchange) reads into its own memory instead, so that what it
// keeps cannot take the buffers the receives need.
type BufferGauge interface {
	BuffersScarce() bool
}

// ReadNotifier is the io_uring driver's connections' way to wait for input
// without a goroutine, found by type assertion: a protocol parks an idle
// connection with it (HTTP keep-alive), so the connection costs no
// goroutine stack while it waits.
//
// NotifyReadable arranges for f to run once, on a new goroutine, when a Read
// would no longer wait: bytes or EOF arrived, the stream failed, the read
// deadline passed (set it before), or the connection was closed. It reports
// false and arranges nothing when a Read would not wait already, a reader is
// at work, or a notification is pending; the caller reads then.
type ReadNotifier interface {
	NotifyReadable(f func()) bool
}

// SpliceToer is the socket-to-socket capability of the io_uring driver's
// connections (L4 relay, large bodies), found by type assertion.
//
// SpliceTo moves up to n bytes (n < 0: until EOF) from the connection to
// dst and returns how many it moved; reaching EOF is not an error. When dst
// is a connection of the same driver the bytes go socket → pipe → socket
// with splice(2) on the non-blocking sockets, the ring's IORING_OP_POLL_ADD
// saying when a side is ready, and never enter user memory (IORING_OP_SPLICE
// itself would wait in a kernel worker thread); bytes already received
// into the buffer ring are written first. Any other dst gets a copy through
// borrowed buffers. It holds the connection's read side and dst's write side
// for its whole duration; the read deadline bounds its receives and dst's
// write deadline its sends. The conns also have SpliceToIdle, which renews
// those deadlines before each receive and send, as a copy loop would.
type SpliceToer interface {
	SpliceTo(dst net.Conn, n int64) (int64, error)
}
