//go:build uring && cgo

package uring

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestCheckAndProbe(t *testing.T) {
	if err := Check(); err != nil {
		missing(t, "io_uring unusable: %v", err)
	}
	p, err := Probe()
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Missing(ProxyOps...); len(m) > 0 {
		t.Errorf("missing opcodes %v", m)
	}
	if p.Supports(Opcode(p.LastOp)) {
		t.Errorf("Supports(LastOp %d) = true", p.LastOp)
	}
	t.Logf("flags %v, features %#x, last op %d", p.Flags, uint32(p.Features), p.LastOp)
}

func TestSetupFlags(t *testing.T) {
	tests := []struct {
		name   string
		p      Params
		lock   bool
		want   SetupFlags
		reject SetupFlags
	}{
		{name: "default", p: Params{Entries: 8}, want: SetupCoopTaskrun | SetupTaskrunFlag | SetupSubmitAll, reject: SetupSingleIssuer},
		{name: "single-issuer", p: Params{Entries: 8, SingleIssuer: true}, lock: true, want: SetupSingleIssuer | SetupDeferTaskrun},
		{name: "sqpoll", p: Params{Entries: 8, SQPollIdle: 10 * time.Millisecond}, want: SetupSQPoll, reject: SetupCoopTaskrun},
		{name: "cq-size", p: Params{Entries: 8, CQEntries: 64}, want: SetupCQSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.lock {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			r := newRing(t, tt.p)
			if f := r.Flags(); f&tt.want != tt.want || f&tt.reject != 0 {
				t.Errorf("Flags() = %v, want %v without %v", f, tt.want, tt.reject)
			}
			r.Nop(7)
			cqes := collectN(t, r, 1)
			if cqes[0].UserData != 7 || cqes[0].Res != 0 {
				t.Errorf("nop CQE %+v", cqes[0])
			}
			defer r.Close() // before UnlockOSThread
		})
	}
}

func TestNopRoundTrip(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	r.Nop(42)
	if r.Pending() != 1 {
		t.Fatalf("Pending() = %d", r.Pending())
	}
	cqes, err := r.Enter(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(cqes) != 1 || cqes[0] != (CQE{UserData: 42}) {
		t.Fatalf("CQEs %+v", cqes)
	}
	if r.Pending() != 0 {
		t.Errorf("Pending() after Enter = %d", r.Pending())
	}
	if s := r.Stats(); s.Enters != 1 || s.SQEs != 1 || s.CQEs != 1 || s.Syscalls != 1 {
		t.Errorf("Stats() = %+v", s)
	}
	// Nothing queued, nothing ready: no syscall.
	if cqes, err := r.Enter(0, 0); err != nil || len(cqes) != 0 {
		t.Errorf("empty Enter = %v, %v", cqes, err)
	}
	if s := r.Stats(); s.Syscalls != 1 {
		t.Errorf("empty Enter made a syscall: %+v", s)
	}
}

// TestBatch submits more operations than the SQ ring holds in one Enter.
func TestBatch(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		n    int
	}{
		{"n=64", Params{Entries: 256}, 64},
		{"n=1000", Params{Entries: 256}, 1000},
		{"n=1000/sqpoll", Params{Entries: 256, SQPollIdle: 50 * time.Millisecond}, 1000},
	}
	for _, tt := range tests {
		n := tt.n
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(t, tt.p)
			for i := range n {
				r.Nop(uint64(i))
			}
			first, err := r.Enter(0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.Pending() != 0 {
				t.Fatalf("%d ops left queued", r.Pending())
			}
			all := append([]CQE(nil), first...)
			all = append(all, collectN(t, r, n-len(all))...)
			seen := make([]bool, n)
			for _, c := range all {
				if c.Res != 0 || c.UserData >= uint64(n) || seen[c.UserData] {
					t.Fatalf("bad or duplicate CQE %+v", c)
				}
				seen[c.UserData] = true
			}
			if s := r.Stats(); s.SQEs != uint64(n) {
				t.Errorf("Stats() = %+v", s)
			}
		})
	}
}

func TestEnterTimeout(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	start := time.Now()
	cqes, err := r.Enter(1, 20*time.Millisecond)
	if err != nil || len(cqes) != 0 {
		t.Fatalf("Enter = %v, %v; want no CQEs and no error", cqes, err)
	}
	if d := time.Since(start); d < 10*time.Millisecond {
		t.Errorf("Enter returned after %v, before its timeout", d)
	}
}

func TestAcceptMultishot(t *testing.T) {
	r := newRing(t, Params{Entries: 16})
	ln, port := listenTCP(t)
	r.AcceptMultishot(1, ln, syscall.SOCK_CLOEXEC)
	if _, err := r.Enter(0, 0); err != nil {
		t.Fatal(err)
	}
	const conns = 5
	for range conns {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeFd(t, fd)
		if err := syscall.Connect(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
			t.Fatal(err)
		}
	}
	cqes := collectN(t, r, conns)
	fds := map[int32]bool{}
	for _, c := range cqes {
		if c.UserData != 1 || c.Res < 0 || !c.More() {
			t.Errorf("accept CQE %+v (err %v)", c, c.Err())
			continue
		}
		fds[c.Res] = true
		if _, err := syscall.Getpeername(int(c.Res)); err != nil {
			t.Errorf("accepted fd %d: %v", c.Res, err)
		}
		syscall.Close(int(c.Res))
	}
	if len(fds) != conns {
		t.Errorf("accepted %d distinct fds, want %d", len(fds), conns)
	}
	// Cancelling ends the multishot with a CQE without More.
	r.Cancel(2, 1, false)
	got := byUD(collect(t, r, func(all []CQE) bool { return len(byUD(all)[1]) > 0 && len(byUD(all)[2]) > 0 }))
	if c := got[1][len(got[1])-1]; c.More() || c.Res != -int32(syscall.ECANCELED) {
		t.Errorf("last accept CQE %+v", c)
	}
}

func TestRecvMultishotBufRing(t *testing.T) {
	r := newRing(t, Params{Entries: 16})
	const bufs, size, msgs = 4, 64, 16
	br, err := r.NewBufRing(7, bufs, size)
	if err != nil {
		t.Fatal(err)
	}
	a, b := socketpair(t)
	r.RecvMultishot(1, a, br, 0)
	if _, err := r.Enter(0, 0); err != nil {
		t.Fatal(err)
	}
	ids := map[uint16]int{}
	for i := range msgs { // more messages than buffers: each is released and reused
		msg := fmt.Sprintf("message %02d", i)
		if err := writeAll(b, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c := collectN(t, r, 1)[0]
		if c.UserData != 1 || !c.More() {
			t.Fatalf("recv CQE %+v (err %v)", c, c.Err())
		}
		br.Claim(c)
		data, id, ok := br.Get(c)
		if !ok || string(data) != msg {
			t.Fatalf("buffer %d = %q, %v; want %q", id, data, ok, msg)
		}
		ids[id]++
		br.Release(id)
	}
	if len(ids) != bufs {
		t.Errorf("used buffers %v, want all %d", ids, bufs)
	}
	syscall.Shutdown(b, syscall.SHUT_WR)
	if c := collectN(t, r, 1)[0]; c.Res != 0 || c.More() {
		t.Errorf("EOF CQE %+v", c)
	}
	if err := br.Close(); err != nil {
		t.Error(err)
	}
}

// TestBufRingReusesRecentBuffers: a BufRing of 1,024 buffers hands the
// kernel 64 at a time, topped up with the ones released last, so 200
// receives, each released before the next, land in 65 buffers (a ring
// holding all 1,024 would use 200), and the rest are never touched.
func TestBufRingReusesRecentBuffers(t *testing.T) {
	r := newRing(t, Params{Entries: 16})
	br, err := r.NewBufRing(1, 1024, 64)
	if err != nil {
		t.Fatal(err)
	}
	if n, want := br.InRing(); n != minRingBuffers || want != minRingBuffers {
		t.Fatalf("ring holds %d buffers, kept at %d; want %d", n, want, minRingBuffers)
	}
	a, b := socketpair(t)
	r.RecvMultishot(1, a, br, 0)
	ids := map[uint16]bool{}
	for i := range 200 {
		if err := writeAll(b, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		c := collectN(t, r, 1)[0]
		id, ok := br.Claim(c)
		if !ok || !c.More() {
			t.Fatalf("receive %d: %+v", i, c)
		}
		if data, _, _ := br.Get(c); len(data) != 1 || data[0] != byte(i) {
			t.Fatalf("receive %d: %q", i, data)
		}
		ids[id] = true
		br.Release(id)
	}
	if len(ids) != minRingBuffers+1 {
		t.Errorf("200 receives used %d buffers, want %d", len(ids), minRingBuffers+1)
	}
	if n, want := br.InRing(); n != minRingBuffers || want != minRingBuffers || br.Out() != 0 {
		t.Errorf("after: ring holds %d, kept at %d, %d out; want %d, %d, 0", n, want, br.Out(), minRingBuffers, minRingBuffers)
	}
}

// TestBufRingRanDry: 100 receives at once find the 64 buffers the ring
// holds and end with ENOBUFS past them. RanDry for each of those (as the
// driver calls it) doubles the ring's fill once, not once per receive: one
// dry spell. The receives armed again then all get a buffer.
func TestBufRingRanDry(t *testing.T) {
	r := newRing(t, Params{Entries: 256})
	br, err := r.NewBufRing(1, 1024, 64)
	if err != nil {
		t.Fatal(err)
	}
	const conns = 100
	fds := make([]int, conns)
	for i := range fds {
		a, b := socketpair(t)
		fds[i] = a
		if err := writeAll(b, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		r.RecvMultishot(uint64(i+1), a, br, 0)
	}
	got := 0
	var dry []uint64
	collect(t, r, func(all []CQE) bool {
		for _, c := range all[got:] {
			if _, ok := br.Claim(c); ok {
				continue
			}
			if c.Res != -int32(syscall.ENOBUFS) || c.More() {
				t.Fatalf("CQE %+v", c)
			}
			dry = append(dry, c.UserData)
			br.RanDry()
		}
		got = len(all)
		return got >= conns
	})
	if len(dry) != conns-minRingBuffers {
		t.Fatalf("%d receives ran dry, want %d", len(dry), conns-minRingBuffers)
	}
	if _, want := br.InRing(); want != 2*minRingBuffers {
		t.Fatalf("ring kept at %d buffers after one dry spell, want %d", want, 2*minRingBuffers)
	}
	for _, ud := range dry {
		r.RecvMultishot(ud, fds[ud-1], br, 0)
	}
	for _, c := range collectN(t, r, len(dry)) {
		if data, _, ok := br.Get(c); !ok || len(data) != 1 || data[0] != byte(c.UserData-1) {
			t.Fatalf("receive armed again: %+v %q", c, data)
		}
		br.Claim(c)
	}
	if br.Out() != conns {
		t.Errorf("%d buffers out, want %d", br.Out(), conns)
	}
}

// TestBufRingDoubleRelease: releasing a buffer the kernel still holds
// (released twice, or never claimed from its CQE) is refused and counted
// instead of putting it in the ring twice, where two receives could fill
// it at once: with 2 buffers, the ring then hands out each once.
func TestBufRingDoubleRelease(t *testing.T) {
	r := newRing(t, Params{Entries: 16})
	br, err := r.NewBufRing(1, 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	br.Release(0) // never handed out
	if br.Refused() != 1 {
		t.Fatalf("refused %d, want 1", br.Refused())
	}
	a, b := socketpair(t)
	r.RecvMultishot(1, a, br, 0)
	writeAll(b, []byte("x"))
	c := collectN(t, r, 1)[0]
	id, ok := br.Claim(c)
	if !ok {
		t.Fatalf("CQE without a buffer: %+v", c)
	}
	if br.Out() != 1 {
		t.Fatalf("%d buffers out after a claim, want 1", br.Out())
	}
	br.Release(id)
	br.Release(id)
	if br.Refused() != 2 || br.Out() != 0 {
		t.Fatalf("refused %d after a second release, want 2; %d out, want 0", br.Refused(), br.Out())
	}
	// Three more receives with 2 buffers: two get a buffer each, which
	// must differ; the third finds none (ENOBUFS), not a buffer twice.
	seen := map[uint16]bool{}
	for i := range 3 {
		writeAll(b, []byte{'a' + byte(i)})
		c := collectN(t, r, 1)[0]
		id, ok := br.Claim(c)
		if !ok {
			if c.Res != -int32(syscall.ENOBUFS) || i != 2 {
				t.Fatalf("receive %d: %+v", i, c)
			}
			break
		}
		if seen[id] {
			t.Fatalf("buffer %d handed out twice", id)
		}
		seen[id] = true
	}
}

// TestBufRingExhausted shows the contract when buffers are not released: the
// recv ends with ENOBUFS, and works again once they are.
func TestBufRingExhausted(t *testing.T) {
	r := newRing(t, Params{Entries: 16})
	br, err := r.NewBufRing(1, 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	a, b := socketpair(t)
	r.RecvMultishot(1, a, br, 0)
	var held []uint16
	for i := 0; ; i++ {
		writeAll(b, []byte{byte('a' + i)})
		c := collectN(t, r, 1)[0]
		if c.Res == -int32(syscall.ENOBUFS) {
			if c.More() {
				t.Fatalf("ENOBUFS CQE with More: %+v", c)
			}
			break
		}
		br.Claim(c)
		_, id, ok := br.Get(c)
		if !ok || i > 2 {
			t.Fatalf("CQE %d: %+v", i, c)
		}
		held = append(held, id)
	}
	for _, id := range held {
		br.Release(id)
	}
	r.RecvMultishot(2, a, br, 0) // re-arm: the unread byte arrives
	c := collectN(t, r, 1)[0]
	if data, _, ok := br.Get(c); !ok || c.UserData != 2 || len(data) != 1 {
		t.Fatalf("after re-arm: %+v %q", c, data)
	}
}

func TestRecvIntoBuffer(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	a, b := socketpair(t)
	// A Go buffer pinned for the operation's lifetime works as well as
	// Alloc'd memory.
	buf := make([]byte, 64)
	var pin runtime.Pinner
	pin.Pin(&buf[0])
	defer pin.Unpin()
	r.Recv(1, a, buf, 0)
	r.Enter(0, 0)
	writeAll(b, []byte("pinned"))
	c := collectN(t, r, 1)[0]
	if c.Res != 6 || string(buf[:c.Res]) != "pinned" {
		t.Fatalf("recv CQE %+v, buf %q", c, buf[:max(c.Res, 0)])
	}
}

func TestSend(t *testing.T) {
	a, b := tcpPair(t)
	const big = 256 << 10
	payload := alloc(t, big)
	rand.Read(payload)
	fixed := alloc(t, big)
	copy(fixed, payload)

	// sendmsg: three pieces of the payload, out of order, as one write.
	pieces := [][]byte{payload[100:300], payload[:100], payload[1000 : 1000+64<<10]}
	iov := make([]syscall.Iovec, len(pieces))
	for i, p := range pieces {
		iov[i].Base = &p[0]
		iov[i].SetLen(len(p))
	}
	msg := &syscall.Msghdr{Iov: &iov[0]}
	msg.Iovlen = uint64(len(iov))
	tests := []struct {
		name  string
		queue func(r *Ring)
		data  []byte
		zc    bool
	}{
		{name: "send", queue: func(r *Ring) { r.Send(1, a, payload[:5], 0) }, data: payload[:5]},
		{name: "sendmsg", queue: func(r *Ring) { r.Sendmsg(1, a, msg, syscall.MSG_WAITALL) }, data: bytes.Join(pieces, nil)},
		{name: "send-zc", queue: func(r *Ring) { r.SendZC(1, a, payload, 0) }, data: payload, zc: true},
		{name: "send-zc-fixed", queue: func(r *Ring) { r.SendZCFixed(1, a, fixed[:big/2], 0, 0) }, data: fixed[:big/2], zc: true},
	}
	r := newRing(t, Params{Entries: 8})
	if err := r.RegisterBuffers([][]byte{fixed}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan []byte, 1)
			go func() {
				d, _ := readFull(b, len(tt.data))
				got <- d
			}()
			tt.queue(r)
			sent, notified, seen := 0, false, 0
			collect(t, r, func(all []CQE) bool {
				for _, c := range all[seen:] {
					seen++
					switch {
					case c.Notif():
						if sent == 0 || c.Res != 0 {
							t.Fatalf("notification %+v before or without result", c)
						}
						notified = true
					case c.Res < 0:
						t.Fatalf("send CQE %+v: %v", c, c.Err())
					default:
						sent = int(c.Res)
						if tt.zc && !c.More() {
							t.Fatalf("SEND_ZC result without More: %+v", c)
						}
					}
				}
				return sent > 0 && (notified || !tt.zc)
			})
			if sent != len(tt.data) {
				t.Errorf("sent %d of %d bytes", sent, len(tt.data))
			}
			if d := <-got; !bytes.Equal(d, tt.data) {
				t.Errorf("peer read %d bytes, differing from the %d sent", len(d), len(tt.data))
			}
		})
	}
}

func TestConnect(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	ln4, port4 := listenTCP(t)

	unixPath := filepath.Join(t.TempDir(), "s")
	lnu, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, lnu)
	if err := syscall.Bind(lnu, &syscall.SockaddrUnix{Name: unixPath}); err != nil {
		t.Fatal(err)
	}
	syscall.Listen(lnu, 8)

	tests := []struct {
		name   string
		family int
		sa     syscall.Sockaddr
		ln     int
	}{
		{"inet4", syscall.AF_INET, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port4}, ln4},
		{"unix", syscall.AF_UNIX, &syscall.SockaddrUnix{Name: unixPath}, lnu},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd, err := syscall.Socket(tt.family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			closeFd(t, fd)
			if err := r.Connect(1, fd, tt.sa); err != nil {
				t.Fatal(err)
			}
			if c := collectN(t, r, 1)[0]; c.Res != 0 {
				t.Fatalf("connect CQE %+v: %v", c, c.Err())
			}
			nfd, _, err := syscall.Accept4(tt.ln, syscall.SOCK_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			syscall.Close(nfd)
		})
	}
	t.Run("refused", func(t *testing.T) {
		fd, _ := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		closeFd(t, fd)
		// A port nothing listens on: bind one, then close it.
		ln, port := listenTCP(t)
		syscall.Close(ln)
		r.Connect(1, fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port})
		if c := collectN(t, r, 1)[0]; c.Res != -int32(syscall.ECONNREFUSED) {
			t.Fatalf("connect CQE %+v, want ECONNREFUSED", c)
		}
	})
	t.Run("bad-address", func(t *testing.T) {
		if err := r.Connect(1, 0, &syscall.SockaddrLinklayer{}); !errors.Is(err, syscall.EAFNOSUPPORT) {
			t.Errorf("Connect(linklayer) = %v", err)
		}
		if r.Pending() != 0 {
			t.Errorf("a failed Connect queued an op")
		}
	})
}

// TestSplice moves 1 MiB socket → pipe → socket through the ring.
func TestSplice(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	srcPeer, src := tcpPair(t)
	dst, dstPeer := tcpPair(t)
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	closeFd(t, p[0])
	closeFd(t, p[1])

	const total = 1 << 20
	want := make([]byte, total)
	rand.Read(want)
	go func() {
		writeAll(srcPeer, want)
		syscall.Shutdown(srcPeer, syscall.SHUT_WR)
	}()
	got := make(chan []byte, 1)
	go func() {
		d, _ := readFull(dstPeer, total)
		got <- d
	}()

	moved := 0
	for {
		r.Splice(1, src, p[1], 64<<10, 0)
		c := collectN(t, r, 1)[0]
		if c.Res < 0 {
			t.Fatalf("splice in: %v", c.Err())
		}
		if c.Res == 0 {
			break
		}
		for left := int(c.Res); left > 0; {
			r.Splice(2, p[0], dst, left, 0)
			c := collectN(t, r, 1)[0]
			if c.Res <= 0 {
				t.Fatalf("splice out: %+v %v", c, c.Err())
			}
			left -= int(c.Res)
			moved += int(c.Res)
		}
	}
	if moved != total {
		t.Errorf("moved %d bytes, want %d", moved, total)
	}
	if d := <-got; !bytes.Equal(d, want) {
		t.Errorf("received %d bytes, not the %d sent", len(d), total)
	}
}

// TestPollAdd: a poll completes with the events once they are ready, and
// not before.
func TestPollAdd(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	a, b := tcpPair(t)
	r.PollAdd(1, b, syscall.EPOLLOUT)
	if c := collectN(t, r, 1)[0]; c.Res < 0 || c.Res&syscall.EPOLLOUT == 0 {
		t.Fatalf("POLLOUT on a fresh socket: %+v %v", c, c.Err())
	}
	r.PollAdd(2, b, syscall.EPOLLIN)
	if cqes, _ := r.Enter(1, 50*time.Millisecond); len(cqes) != 0 {
		t.Fatalf("POLLIN completed with nothing to read: %+v", cqes)
	}
	writeAll(a, []byte("x"))
	if c := collectN(t, r, 1)[0]; c.UserData != 2 || c.Res&syscall.EPOLLIN == 0 {
		t.Fatalf("POLLIN after a write: %+v %v", c, c.Err())
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name   string
		cancel func(r *Ring, fd int)
	}{
		{"by-user-data", func(r *Ring, fd int) { r.Cancel(2, 1, false) }},
		{"by-fd", func(r *Ring, fd int) { r.CancelFd(2, fd, false) }},
		{"all-on-fd", func(r *Ring, fd int) { r.CancelFd(2, fd, true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(t, Params{Entries: 8})
			a, _ := socketpair(t)
			buf := alloc(t, 64)
			r.Recv(1, a, buf, 0)
			if cqes, err := r.Enter(0, 0); err != nil || len(cqes) != 0 {
				t.Fatalf("recv completed early: %v %v", cqes, err)
			}
			tt.cancel(r, a)
			got := byUD(collectN(t, r, 2))
			if c := got[1]; len(c) != 1 || c[0].Res != -int32(syscall.ECANCELED) {
				t.Errorf("recv CQEs %+v, want ECANCELED", c)
			}
			if c := got[2]; len(c) != 1 || c[0].Res < 0 {
				t.Errorf("cancel CQEs %+v", c)
			}
		})
	}
	t.Run("nothing", func(t *testing.T) {
		r := newRing(t, Params{Entries: 8})
		r.Cancel(2, 99, false)
		if c := collectN(t, r, 1)[0]; c.Res != -int32(syscall.ENOENT) {
			t.Errorf("cancel of nothing: %+v", c)
		}
	})
}

func TestTimeouts(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		r := newRing(t, Params{Entries: 8})
		start := time.Now()
		r.Timeout(1, 20*time.Millisecond)
		c := collectN(t, r, 1)[0]
		if c.UserData != 1 || c.Res != -int32(syscall.ETIME) {
			t.Fatalf("timeout CQE %+v", c)
		}
		if d := time.Since(start); d < 15*time.Millisecond {
			t.Errorf("fired after %v", d)
		}
	})
	t.Run("link-fires", func(t *testing.T) {
		r := newRing(t, Params{Entries: 8})
		a, _ := socketpair(t)
		r.Recv(1, a, alloc(t, 64), 0)
		r.LinkTimeout(2, 20*time.Millisecond)
		got := byUD(collectN(t, r, 2))
		if c := got[1]; len(c) != 1 || c[0].Res != -int32(syscall.ECANCELED) {
			t.Errorf("recv CQEs %+v, want ECANCELED", c)
		}
		if c := got[2]; len(c) != 1 || c[0].Res != -int32(syscall.ETIME) {
			t.Errorf("link timeout CQEs %+v, want ETIME", c)
		}
	})
	t.Run("link-beaten", func(t *testing.T) {
		// Entries 1 is taken as 2: an operation and its link timeout
		// go in one submission (with 1 they never fitted, EBUSY for good).
		r := newRing(t, Params{Entries: 1})
		r.Nop(1)
		r.LinkTimeout(2, time.Second)
		got := byUD(collectN(t, r, 2))
		if c := got[1]; len(c) != 1 || c[0].Res != 0 {
			t.Errorf("nop CQEs %+v", c)
		}
		if c := got[2]; len(c) != 1 || c[0].Res != -int32(syscall.ECANCELED) {
			t.Errorf("link timeout CQEs %+v, want ECANCELED", c)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		r := newRing(t, Params{Entries: 8})
		r.Timeout(1, time.Hour)
		r.Enter(0, 0)
		r.Cancel(2, 1, false)
		got := byUD(collectN(t, r, 2))
		if c := got[1]; len(c) != 1 || c[0].Res != -int32(syscall.ECANCELED) {
			t.Errorf("timeout CQEs %+v", c)
		}
	})
}

// TestEventfd watches the ring's eventfd from a goroutine parked in the
// netpoller while the submitting goroutine sleeps, as the driver will.
func TestEventfd(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		lock bool
	}{
		{"default", Params{Entries: 8}, false},
		{"default-locked", Params{Entries: 8}, true},
		{"single-issuer", Params{Entries: 8, SingleIssuer: true}, true},
		{"sqpoll", Params{Entries: 8, SQPollIdle: 50 * time.Millisecond}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.lock {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			r := newRing(t, tt.p)
			defer r.Close()
			ev, err := r.RegisterEventfd()
			if err != nil {
				t.Fatal(err)
			}
			defer ev.Close()
			a, b := socketpair(t)
			r.Recv(1, a, alloc(t, 64), 0)
			if cqes, err := r.Enter(0, 0); err != nil || len(cqes) != 0 {
				t.Fatalf("Enter: %v %v", cqes, err)
			}
			woke := make(chan error, 1)
			go func() {
				ev.SetReadDeadline(time.Now().Add(5 * time.Second))
				var n [8]byte
				_, err := ev.Read(n[:])
				woke <- err
			}()
			time.Sleep(10 * time.Millisecond) // let the reader park
			go writeAll(b, []byte("wake"))
			if err := <-woke; err != nil {
				t.Fatalf("eventfd not signalled: %v", err)
			}
			cqes, err := r.Enter(0, 0)
			if err != nil || len(cqes) != 1 || cqes[0].Res != 4 {
				t.Fatalf("after wake-up Enter = %+v, %v", cqes, err)
			}
		})
	}
}

// TestEventfdSignals: with the signals off a completion leaves the eventfd
// quiet and shows in Ready; turned on again, the next one signals it.
func TestEventfdSignals(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	defer r.Close()
	ev, err := r.RegisterEventfd()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	signalled := func(wait time.Duration) bool {
		t.Helper()
		ev.SetReadDeadline(time.Now().Add(wait))
		var n [8]byte
		_, err := ev.Read(n[:])
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
		return err == nil
	}
	a, b := socketpair(t)
	if !r.SetEventfdSignals(false) {
		t.Fatal("SetEventfdSignals(false) = false: no CQ flags on this kernel")
	}
	r.Recv(1, a, alloc(t, 64), 0)
	if cqes, err := r.Enter(0, 0); err != nil || len(cqes) != 0 || r.Ready() {
		t.Fatalf("Enter: %v %v, Ready %v", cqes, err, r.Ready())
	}
	writeAll(b, []byte("one"))
	for i := 0; !r.Ready(); i++ {
		if i == 500 {
			t.Fatal("Ready never reported the completion")
		}
		time.Sleep(time.Millisecond)
	}
	if signalled(50 * time.Millisecond) {
		t.Error("the eventfd was signalled with its signals off")
	}
	r.SetEventfdSignals(true)
	if cqes, err := r.Enter(0, 0); err != nil || len(cqes) != 1 || cqes[0].Res != 3 {
		t.Fatalf("Enter = %+v, %v", cqes, err)
	}
	if r.Ready() {
		t.Error("Ready after harvesting everything")
	}
	r.Recv(2, a, alloc(t, 64), 0)
	if _, err := r.Enter(0, 0); err != nil {
		t.Fatal(err)
	}
	writeAll(b, []byte("two"))
	if !signalled(5 * time.Second) {
		t.Fatal("the eventfd was not signalled with its signals back on")
	}
}

func TestCloseAndShutdown(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	a, b := socketpair(t)
	r.Shutdown(1, b, syscall.SHUT_WR)
	if c := collectN(t, r, 1)[0]; c.Res != 0 {
		t.Fatalf("shutdown: %v", c.Err())
	}
	if n, err := syscall.Read(a, make([]byte, 1)); n != 0 || err != nil {
		t.Errorf("read after peer shutdown = %d, %v; want EOF", n, err)
	}
	fd, err := syscall.Dup(a)
	if err != nil {
		t.Fatal(err)
	}
	r.CloseFd(2, fd)
	if c := collectN(t, r, 1)[0]; c.Res != 0 {
		t.Fatalf("close: %v", c.Err())
	}
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0); e != syscall.EBADF {
		t.Errorf("fd still open after close op: %v", e)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	r.Nop(1) // dropped
	if _, err := r.Enter(0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Enter after Close = %v", err)
	}
	if _, err := r.RegisterEventfd(); !errors.Is(err, ErrClosed) {
		t.Errorf("RegisterEventfd after Close = %v", err)
	}
	if r.Fd() != -1 {
		t.Errorf("Fd after Close = %d", r.Fd())
	}
}

// TestUnknownSetupFlags: New refuses setup flags the binding cannot honour
// (SQE128 would double the SQE stride its side table indexes by).
func TestUnknownSetupFlags(t *testing.T) {
	r, err := New(Params{Entries: 4, Flags: 1 << 10}) // IORING_SETUP_SQE128
	if err == nil {
		r.Close()
		t.Fatal("New accepted SQE128")
	}
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("New = %v, want EINVAL", err)
	}
}
