package httpproxy

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
)

// watchDelay is how long a request waits for its response head before the
// proxy starts watching the client connection for a close. Fast exchanges
// (nearly all) never start the watcher, so the hot path only pays a timer
// Reset and Stop.
const watchDelay = 50 * time.Millisecond

// errClientGone is the cause when a client closed its connection while its
// request waited for the upstream.
var errClientGone = errors.New("httpproxy: client closed the connection before the response")

// StatusClientClosed is the status logged (never sent) for a request whose
// client went away first; nginx calls it 499.
const StatusClientClosed = 499

// clientWatch cancels an upstream exchange whose client went away: armed
// once the request is sent, it fires after watchDelay on a goroutine of the
// timer's and parks in the netpoller until the client connection turns
// readable. If the client closed it (EOF or reset, seen with a MSG_PEEK that
// consumes nothing, so pipelined bytes stay for the server), it sets a past
// deadline on the upstream connection, which fails the response read.
//
// One clientWatch belongs to one upstream connection and is reused for each
// of its requests: arm and disarm do not allocate, and do not touch the
// timer while it is set: the timer, once set by an arm, stays set while
// requests come, and when it fires for a request that is not watchDelay
// old (a later one than that it was set for) it is set again for the rest,
// so a busy connection pays one timer per watchDelay, not a Reset and a
// Stop per request (about 1 % of the worker's CPU). arm and disarm are
// called by the goroutine running the exchange; run by the timer's.
type clientWatch struct {
	up    *upConn // the upstream connection to abort
	timer *time.Timer
	gone  atomic.Bool // the client went away during the last arming

	mu      sync.Mutex
	client  net.Conn  // the armed request's client connection; nil when disarmed
	since   time.Time // when it was armed (netio.Now)
	ticking bool      // the timer is set, or run is at work
	running bool      // run is parked on client
	waiting bool      // disarm waits on done for run to end
	done    chan struct{}
}

func newClientWatch(up *upConn) *clientWatch {
	w := &clientWatch{up: up, done: make(chan struct{}, 1)}
	w.timer = time.AfterFunc(time.Hour, w.run)
	w.timer.Stop()
	return w
}

// arm starts watching client for the request in flight.
func (w *clientWatch) arm(client net.Conn) {
	w.gone.Store(false)
	_, peek := client.(syscall.Conn)
	_, poll := client.(peerGoner)
	if !peek && !poll {
		return // cannot tell (TLS and other wrappers): no watch
	}
	w.mu.Lock()
	w.client, w.since = client, netio.Now()
	if !w.ticking {
		w.ticking = true
		w.timer.Reset(watchDelay)
	}
	w.mu.Unlock()
}

// disarm stops watching and returns once run no longer touches the
// connections. It reports whether the client went away meanwhile.
func (w *clientWatch) disarm() (gone bool) {
	w.mu.Lock()
	c := w.client
	w.client = nil
	wait := w.running
	w.waiting = wait
	w.mu.Unlock()
	if wait {
		// Wake run from its wait on the client; the server sets the
		// client's read deadline again before it next reads.
		c.SetReadDeadline(aLongTimeAgo)
		<-w.done
		c.SetReadDeadline(time.Time{})
	}
	return w.gone.Load()
}

func (w *clientWatch) run() {
	w.mu.Lock()
	c := w.client
	if c == nil || w.running {
		w.ticking = w.running // disarmed: the timer rests until the next arm
		w.mu.Unlock()
		return
	}
	if left := watchDelay - time.Since(w.since); left > 0 {
		w.timer.Reset(left) // a later request: its own delay
		w.mu.Unlock()
		return
	}
	w.running = true
	w.mu.Unlock()
	pg, poll := c.(peerGoner)
	gone, again := false, poll
	if poll {
		gone = pg.PeerGone()
	} else {
		gone, again = peerClosed(c)
	}
	if gone {
		w.gone.Store(true)
		w.up.abort()
	}
	w.mu.Lock()
	w.running = false
	switch {
	case w.waiting:
		w.waiting, w.ticking = false, false
		w.done <- struct{}{}
	case again && !gone && w.client == c:
		w.timer.Reset(watchDelay) // still waiting: look again later
	default:
		w.ticking = false
	}
	w.mu.Unlock()
}

// peerGoner is a connection that knows, without a syscall, whether its
// peer closed (the io_uring driver's connections); the watch polls it every
// watchDelay instead of parking on a peek.
type peerGoner interface{ PeerGone() bool }

// stop releases the timer when the upstream connection is closed.
func (w *clientWatch) stop() { w.timer.Stop() }

// peerClosed waits until c is readable, without consuming anything, and
// reports whether the peer closed it (EOF or an error such as a reset).
// Readable data (a pipelined request) ends the wait with false. So does
// c's read deadline, which may be the one set for the request's head and
// pass while the exchange goes on; then peerClosed looks once without
// waiting, and again reports whether to look again later (poll every
// watchDelay, as for a peerGoner): the watch must not end while the
// request waits.
func peerClosed(c net.Conn) (closed, again bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	pending := false
	peek := func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK, err == syscall.EINTR:
			pending = true
			return false // park in the netpoller until readable
		case err != nil:
			closed = true // reset and the like
		case n == 0:
			closed = true // EOF
		}
		pending = false
		return true
	}
	err = rc.Read(peek)
	switch {
	case err == nil:
		return closed, false
	case !errors.Is(err, os.ErrDeadlineExceeded):
		return false, false
	}
	// The deadline passed (Read may not have looked at all): one look
	// that does not wait, past the deadline.
	if rc.Control(func(fd uintptr) { peek(fd) }) != nil {
		return false, false
	}
	return closed, pending && !closed
}

// bodyWatchPeriod is how often a request body's send checks whether the
// upstream answered it early.
const bodyWatchPeriod = 50 * time.Millisecond

// errAnsweredEarly fails the send of a request body the upstream answered
// early and stopped reading: its answer is read instead.
var errAnsweredEarly = errors.New("httpproxy: the upstream answered before it read the request body")

// bodyWatch stops the send of a request body that the upstream answered
// before reading it whole and then stopped reading (a 413 or a 401 from a
// server that keeps its connection open until the client goes), so that
// its answer reaches the client at once instead of after the write timeout.
// Every bodyWatchPeriod of a send without progress it peeks at the
// upstream connection (netio.Peek); once that holds a final response's
// status line (past any interim 1xx), the send fails with
// errAnsweredEarly. An upstream that answered early and still reads the
// body gets it whole.
//
// A connection that cannot be peeked at (TLS: the socket beneath holds
// records, and a TLS 1.3 session ticket is no answer) is read instead: at
// the first check without progress, a readAhead starts reading it beside
// the send, and fails the send as the peek would once what it read holds
// a final status line. What it read is the response's start: upReader
// takes it before reading the connection again.
//
// One bodyWatch belongs to one upstream connection; arm and disarm run on
// the goroutine of the exchange, check on the timer's.
type bodyWatch struct {
	up       *upConn
	timer    *time.Timer // made at the first body sent
	answered atomic.Bool // check stopped the last send (upWriter then fails with errAnsweredEarly)

	mu    sync.Mutex
	armed bool
	peek  bool  // the connection can be peeked at
	last  int64 // up.sent at the last check
	// ahead, once started, is the exchange's until upReader has taken
	// all it read. It is set under mu by check; the exchange's goroutine
	// reads it only after disarm (which takes mu), unlocked.
	ahead *readAhead
}

// arm starts watching the send of a body.
func (w *bodyWatch) arm() {
	w.answered.Store(false)
	_, peek := netio.Peek(w.up.Conn, nil)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed, w.peek, w.last = true, peek, w.up.sent.Load()
	// Under mu: check, which reads timer, takes mu first, so a timer
	// that fires before the assignment sees it.
	if w.timer == nil {
		w.timer = time.AfterFunc(bodyWatchPeriod, w.check)
	} else {
		w.timer.Reset(bodyWatchPeriod)
	}
}

// disarm stops watching; once it returns, check no longer acts, and the
// connection's next writes do not fail for an answer seen during this
// send (one that came just after its last byte, before disarm: a request
// without a body arms no watch and would fail on a pooled connection).
func (w *bodyWatch) disarm() {
	if w.timer == nil {
		return
	}
	w.timer.Stop()
	w.mu.Lock()
	w.armed = false
	w.answered.Store(false)
	w.mu.Unlock()
}

// stop releases the timer when the upstream connection is closed.
func (w *bodyWatch) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *bodyWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed {
		return
	}
	if sent := w.up.sent.Load(); sent != w.last {
		w.last = sent
	} else if !w.peek {
		if w.ahead == nil {
			w.ahead = startReadAhead(w)
		}
		return // the read-ahead fails the send if need be
	} else {
		var p [1024]byte
		n, _ := netio.Peek(w.up.Conn, p[:])
		if answered(p[:n]) {
			w.failSendLocked()
			return
		}
	}
	w.timer.Reset(bodyWatchPeriod)
}

// failSendLocked stops the send of the body: the write at work fails, and
// upWriter fails the next ones with errAnsweredEarly. w.mu is held.
func (w *bodyWatch) failSendLocked() {
	w.answered.Store(true)
	w.armed = false
	w.up.Conn.SetWriteDeadline(aLongTimeAgo) // fails the write at work
}

// readAheadMax bounds what a readAhead reads: a final status line after
// interim heads of that much is taken for no answer.
const readAheadMax = 4 << 10

// readAhead reads an upstream connection beside a stalled body send (see
// bodyWatch) until what it read holds a final response's status line, the
// read fails, or readAheadMax bytes came.
type readAhead struct {
	done chan struct{} // closed when the reading ended
	buf  []byte        // what it read, once done; upReader consumes it
	err  error         // the error that ended the reading, once done
}

func startReadAhead(w *bodyWatch) *readAhead {
	ra := &readAhead{done: make(chan struct{}), buf: make([]byte, 0, readAheadMax)}
	go ra.run(w)
	return ra
}

func (ra *readAhead) run(w *bodyWatch) {
	defer close(ra.done)
	for {
		n, err := w.up.Conn.Read(ra.buf[len(ra.buf):cap(ra.buf)])
		ra.buf = ra.buf[:len(ra.buf)+n]
		if answered(ra.buf) {
			w.mu.Lock()
			if w.armed {
				w.failSendLocked()
			}
			w.mu.Unlock()
			ra.err = err
			return
		}
		if err != nil || len(ra.buf) == cap(ra.buf) {
			ra.err = err
			return
		}
	}
}

// read gives what the read-ahead read, waiting for it to end: the
// connection's read deadline (upReader's renewal) bounds its read. It
// reports done when nothing is left to give and the connection is to be
// read directly again.
func (ra *readAhead) read(p []byte) (n int, err error, done bool) {
	<-ra.done
	n = copy(p, ra.buf)
	ra.buf = ra.buf[n:]
	if len(ra.buf) > 0 {
		return n, nil, false
	}
	return n, ra.err, true
}

// answered reports whether b, the first bytes an upstream sent, hold the
// status line of a final response, past whole interim (1xx) heads; bytes
// that are no response at all count too (reading them fails the exchange).
func answered(b []byte) bool {
	for {
		if len(b) < len("HTTP/1.1 200") {
			return false
		}
		if string(b[:7]) != "HTTP/1." || b[9] != '1' || string(b[9:12]) == "101" {
			return true
		}
		i := bytes.Index(b, []byte("\r\n\r\n"))
		if i < 0 {
			return false
		}
		b = b[i+4:]
	}
}
