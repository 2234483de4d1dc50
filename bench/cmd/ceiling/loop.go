//go:build uring && cgo

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/monolake-go/monolake/uring"
)

// Operation kinds, in the low byte of an operation's user data; the
// connection's number is above it (0 for the cancels and closes, whose
// completions are not looked at).
const (
	kindAccept = iota + 1
	kindClientRecv
	kindUpstreamRecv
	kindClientSend
	kindUpstreamSend
	kindCancel
	kindClose
)

// probe is the loop's state: only the loop's thread touches it.
type probe struct {
	ring     *uring.Ring
	br       *uring.BufRing
	lfd      int
	upstream *syscall.SockaddrInet4
	epfd     int // -1: sleep in a waiting enter
	conns    map[uint64]*conn
	next     uint64
	idBase   [8]byte // request IDs: random, then a counter
	ids      uint64
	closing  bool // Close: the accept is not armed again
}

// conn is a client connection and its upstream connection. It stays in
// probe.conns after close until its last operation completed: its send
// buffers are pinned until then.
type conn struct {
	n         uint64
	cfd, ufd  int // ufd -1: not dialled yet
	peer      []byte
	id        [32]byte // the request's X-Request-Id
	out, cout []byte   // the request for upstream, the response for the client
	head      []byte   // the response so far while its head is incomplete
	need      int      // response body bytes still to come; -1 while in its head
	waiting   bool     // a request is upstream
	sending   [2]int   // the length of the send in flight to the client, upstream; 0: none
	pins      [2]runtime.Pinner
	inflight  int
	closed    bool
}

// Directions, indexing conn.sending and conn.pins.
const (
	client   = 0
	upstream = 1
)

// The kinds of a direction's receive and send.
var (
	recvKind = [2]int{client: kindClientRecv, upstream: kindUpstreamRecv}
	sendKind = [2]int{client: kindClientSend, upstream: kindUpstreamSend}
)

// dirOf is the direction of a receive's or a send's kind.
func dirOf(kind int) int {
	if kind == kindUpstreamRecv || kind == kindUpstreamSend {
		return upstream
	}
	return client
}

// fd is the connection's socket in direction dir.
func (cn *conn) fd(dir int) int {
	if dir == upstream {
		return cn.ufd
	}
	return cn.cfd
}

func newProbe(lfd int, up *syscall.SockaddrInet4, singleIssuer, epollIdle bool) (*probe, error) {
	r, err := uring.New(uring.Params{Entries: 1024, SingleIssuer: singleIssuer})
	if err != nil {
		return nil, err
	}
	br, err := r.NewBufRing(1, 1024, 16<<10)
	if err != nil {
		r.Close()
		return nil, err
	}
	p := &probe{ring: r, br: br, lfd: lfd, upstream: up, epfd: -1, conns: map[uint64]*conn{}}
	if _, err := rand.Read(p.idBase[:]); err != nil {
		r.Close()
		return nil, err
	}
	if epollIdle {
		if p.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
			r.Close()
			return nil, os.NewSyscallError("epoll_create1", err)
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(r.Fd())}
		if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, r.Fd(), &ev); err != nil {
			p.Close()
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	r.AcceptMultishot(kindAccept, lfd, syscall.SOCK_CLOEXEC)
	return p, nil
}

func ud(n uint64, kind int) uint64 { return n<<8 | uint64(kind) }

// Close closes every connection through the ring and waits (up to a
// second) for their last operations, then closes the ring, whose buffer
// rings go with it; not the listener, which is the caller's. It reports
// connections still in flight after that, and buffers not given back.
func (p *probe) Close() error {
	p.closing = true
	p.ring.Cancel(ud(0, kindCancel), ud(0, kindAccept), false)
	for _, cn := range p.conns {
		p.close(cn)
	}
	for deadline := time.Now().Add(time.Second); len(p.conns) > 0 && time.Now().Before(deadline); {
		cqes, err := p.ring.Enter(1, idleWait)
		if err != nil && len(cqes) == 0 && !transient(err) {
			break
		}
		for _, c := range cqes {
			p.handle(c)
		}
	}
	var errs []error
	if n := len(p.conns); n > 0 {
		errs = append(errs, fmt.Errorf("ceiling: %d connections still had operations in flight", n))
	}
	if n := p.br.Out(); n > 0 {
		errs = append(errs, fmt.Errorf("ceiling: %d receive buffers not given back", n))
	}
	if n := p.br.Refused(); n > 0 {
		errs = append(errs, fmt.Errorf("ceiling: %d buffers given back twice", n))
	}
	if p.epfd >= 0 {
		syscall.Close(p.epfd)
	}
	errs = append(errs, p.ring.Close())
	for _, cn := range p.conns {
		cn.pins[client].Unpin()
		cn.pins[upstream].Unpin()
	}
	return errors.Join(errs...)
}

// serve runs the loop until stop is closed (never, for nil): it submits
// what the last completions queued and harvests the next ones in one
// io_uring_enter(2), and sleeps when there are none.
func (p *probe) serve(stop <-chan struct{}) error {
	var evs [4]syscall.EpollEvent
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		cqes, err := p.ring.Enter(0, 0)
		if len(cqes) == 0 {
			if err != nil && !transient(err) {
				return err
			}
			if p.epfd >= 0 {
				if !p.ring.Ready() {
					syscall.EpollWait(p.epfd, evs[:], int(idleWait.Milliseconds()))
				}
				continue
			}
			if cqes, err = p.ring.Enter(1, idleWait); err != nil && len(cqes) == 0 && !transient(err) {
				return err
			}
		}
		for _, c := range cqes {
			p.handle(c)
		}
	}
}

// transient: the kernel took no SQEs this time (short of memory, the CQ
// ring overflowing); they stay queued for the next Enter.
func transient(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EINTR)
}

func (p *probe) handle(c uring.CQE) {
	var data []byte
	if id, ok := p.br.Claim(c); ok {
		data, _, _ = p.br.Get(c)
		defer p.br.Release(id)
	}
	n, kind := c.UserData>>8, int(c.UserData&0xff)
	if kind == kindAccept {
		p.accept(c)
		return
	}
	cn := p.conns[n]
	if cn == nil {
		return // a cancel's or a close's
	}
	switch kind {
	case kindClientRecv, kindUpstreamRecv:
		dir := dirOf(kind)
		if !c.More() {
			cn.inflight--
		}
		switch {
		case cn.closed:
			p.forgetIfDone(cn)
			return
		case c.Res == -int32(syscall.ENOBUFS):
			// The kernel found none of the buffers it is handed:
			// hand it more, and receive again.
			p.br.RanDry()
			if !c.More() {
				p.arm(cn, dir)
			}
			return
		case c.Res <= 0:
			p.close(cn)
			return
		}
		if !c.More() {
			p.arm(cn, dir)
		}
		if dir == client {
			p.request(cn, data)
		} else {
			p.response(cn, data)
		}
	case kindClientSend, kindUpstreamSend:
		dir := dirOf(kind)
		cn.pins[dir].Unpin()
		cn.inflight--
		sent := cn.sending[dir]
		cn.sending[dir] = 0
		if cn.closed {
			p.forgetIfDone(cn)
		} else if int(c.Res) != sent {
			// An error, or a send cut short (by an error after some
			// progress): the stream is broken.
			p.close(cn)
		}
	}
}

func (p *probe) accept(c uring.CQE) {
	if !c.More() && !p.closing {
		p.ring.AcceptMultishot(kindAccept, p.lfd, syscall.SOCK_CLOEXEC)
	}
	if c.Res == -int32(syscall.ECANCELED) {
		return
	}
	if c.Res < 0 {
		fmt.Fprintln(os.Stderr, "ceiling: accept:", c.Err())
		return
	}
	fd := int(c.Res)
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	p.next++
	cn := &conn{n: p.next, cfd: fd, ufd: -1, need: -1}
	if sa, err := syscall.Getpeername(fd); err == nil {
		if a, ok := sa.(*syscall.SockaddrInet4); ok {
			cn.peer = fmt.Appendf(nil, "%d.%d.%d.%d", a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3])
		}
	}
	p.conns[cn.n] = cn
	p.arm(cn, client)
}

func (p *probe) arm(cn *conn, dir int) {
	p.ring.RecvMultishot(ud(cn.n, recvKind[dir]), cn.fd(dir), p.br, 0)
	cn.inflight++
}

// send sends b whole (MSG_WAITALL: the kernel retries a short send) and
// pins it until the completion.
func (p *probe) send(cn *conn, dir int, b []byte) {
	cn.pins[dir].Pin(unsafe.SliceData(b))
	p.ring.Send(ud(cn.n, sendKind[dir]), cn.fd(dir), b, syscall.MSG_WAITALL)
	cn.sending[dir] = len(b)
	cn.inflight++
}

// close cancels every operation on the connection's sockets, receives and
// sends, and closes them, in the ring and in this order, after whatever was
// queued for them: their descriptors are not free for reuse before that.
// Each cancelled operation still ends with its own completion.
func (p *probe) close(cn *conn) {
	if cn.closed {
		return
	}
	cn.closed = true
	p.ring.CancelFd(ud(0, kindCancel), cn.cfd, true)
	p.ring.CloseFd(ud(0, kindClose), cn.cfd)
	if cn.ufd >= 0 {
		p.ring.CancelFd(ud(0, kindCancel), cn.ufd, true)
		p.ring.CloseFd(ud(0, kindClose), cn.ufd)
	}
	p.forgetIfDone(cn)
}

func (p *probe) forgetIfDone(cn *conn) {
	if cn.inflight == 0 {
		delete(p.conns, cn.n)
	}
}

var crlf2 = []byte("\r\n\r\n")

// request forwards a whole request without a body, with the fields the
// suite's proxies add; anything else closes the connection.
func (p *probe) request(cn *conn, data []byte) {
	end := bytes.Index(data, crlf2)
	// A request while the last one is upstream or its response still
	// being sent (pipelined) is not the probe's either.
	if end < 0 || end+4 != len(data) || cn.waiting || cn.sending[client] != 0 || cn.sending[upstream] != 0 ||
		len(field(data[:end+2], "Content-Length")) > 0 {
		p.close(cn)
		return
	}
	if cn.ufd < 0 {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err == nil {
			if err = syscall.Connect(fd, p.upstream); err != nil {
				syscall.Close(fd)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ceiling: upstream:", err)
			p.close(cn)
			return
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		cn.ufd = fd
		p.arm(cn, upstream)
	}
	p.ids++
	var raw [16]byte
	copy(raw[:8], p.idBase[:])
	binary.LittleEndian.PutUint64(raw[8:], p.ids)
	hex.Encode(cn.id[:], raw[:])
	o := append(cn.out[:0], data[:end+2]...)
	o = append(o, "X-Forwarded-For: "...)
	o = append(o, cn.peer...)
	o = append(o, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...)
	o = append(o, field(data[:end+2], "Host")...)
	o = append(o, "\r\nX-Request-Id: "...)
	o = append(o, cn.id[:]...)
	o = append(o, "\r\n\r\n"...)
	cn.out, cn.need, cn.waiting = o, -1, true
	p.send(cn, upstream, cn.out)
}

// response collects the upstream's response and sends it, with the
// request's ID, once whole. Only Content-Length responses.
func (p *probe) response(cn *conn, data []byte) {
	if !cn.waiting {
		p.close(cn)
		return
	}
	if cn.need < 0 {
		cn.head = append(cn.head, data...)
		end := bytes.Index(cn.head, crlf2)
		if end < 0 {
			return
		}
		cl, err := strconv.Atoi(string(field(cn.head[:end+2], "Content-Length")))
		body := cn.head[end+4:]
		if err != nil || cl < len(body) {
			p.close(cn)
			return
		}
		o := append(cn.cout[:0], cn.head[:end+2]...)
		o = append(o, "X-Request-Id: "...)
		o = append(o, cn.id[:]...)
		o = append(o, "\r\n\r\n"...)
		cn.cout = append(o, body...)
		cn.need = cl - len(body)
		cn.head = cn.head[:0]
	} else {
		if len(data) > cn.need {
			p.close(cn)
			return
		}
		cn.cout = append(cn.cout, data...)
		cn.need -= len(data)
	}
	if cn.need == 0 {
		// cout is not rebuilt before this send's completion: a
		// request that comes before it closes the conn (see request).
		cn.waiting = false
		p.send(cn, client, cn.cout)
	}
}

// field returns the value of the first header field name in head (which
// ends with CRLF), matched case-sensitively as the rig's clients write it.
func field(head []byte, name string) []byte {
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		if len(line) > len(name)+1 && string(line[:len(name)]) == name && line[len(name)] == ':' {
			return bytes.TrimSpace(line[len(name)+1:])
		}
	}
	return nil
}
