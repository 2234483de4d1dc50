//go:build uring && cgo

package netio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// within fails the test if f has not returned after d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// TestUringCloseWhileConnsClose closes the driver while other goroutines
// are closing its connections, each with a Read parked on it: a conn's
// Close waits for its cancelled recv's completion, so the driver's Close
// must keep the loop running until those come.
func TestUringCloseWhileConnsClose(t *testing.T) {
	for round := range 5 {
		d := newDriver(t, UringParams{})
		var conns []net.Conn
		for range 32 {
			a, b := ringPair(t, d)
			conns = append(conns, a, b)
		}
		var reads sync.WaitGroup
		for _, c := range conns {
			reads.Add(1)
			go func() {
				defer reads.Done()
				// EOF when its peer closed first.
				if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) && err != io.EOF {
					t.Errorf("parked Read: %v, want net.ErrClosed or EOF", err)
				}
			}()
		}
		time.Sleep(20 * time.Millisecond) // the Reads park
		within(t, 10*time.Second, fmt.Sprintf("round %d: closing the conns and the driver", round), func() {
			// The driver closes its conns in turn while another
			// goroutine closes them from the other end of the list:
			// near where they meet, the driver finds conns closing
			// but not yet closed.
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				for i := len(conns) - 1; i >= 0; i-- {
					conns[i].Close()
				}
			}()
			d.Close()
			<-closed
			reads.Wait()
		})
		d.mu.Lock()
		left := d.objs.len()
		d.mu.Unlock()
		if left != 0 {
			t.Fatalf("round %d: %d objects left after Close", round, left)
		}
	}
}

// TestUringDialWhenDriverCloses: a connect in flight when the driver
// closes fails with net.ErrClosed, not the cancel's ECANCELED.
func TestUringDialWhenDriverCloses(t *testing.T) {
	d := newDriver(t, UringParams{})
	addr := fullBacklog(t, d)
	errc := make(chan error, 1)
	go func() {
		c, err := d.Dial(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // the connect is in flight: SYNs are dropped
	within(t, 5*time.Second, "driver Close", func() { d.Close() })
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Dial when the driver closed: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Dial still parked after the driver's Close")
	}
}

// fullBacklog returns the address of a listener that never accepts, its
// backlog filled by connections dialled through d: the kernel drops
// further SYNs, so a connect to it stays in flight.
func fullBacklog(t *testing.T, d *Uring) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 8 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, err := d.Dial(ctx, "tcp", addr)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return addr // full
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the kernel accepted every connect to a listener with backlog 0")
	return ""
}

// TestUringRawRef: Close waits for a system call made on the descriptor
// outside the ring (splice, fcntl) to end before closing it, so that the
// call cannot reach another socket given the same number meanwhile; after
// Close no such call starts.
func TestUringRawRef(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, _ := ringPair(t, d)
	c := a.(*uringConn)
	if !c.rawRef() {
		t.Fatal("rawRef on an open conn failed")
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a raw call held the descriptor", err)
	default:
	}
	if _, err := unix.FcntlInt(uintptr(c.fd), unix.F_GETFL, 0); err != nil {
		t.Fatalf("the descriptor was closed under the raw call: %v", err)
	}
	c.rawUnref()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the raw call ended")
	}
	if c.rawRef() {
		t.Fatal("rawRef after Close succeeded")
	}

	// SpliceTo from a closed conn makes no system call on its number.
	src, _ := ringPair(t, d)
	dst, _ := ringPair(t, d)
	src.Close()
	if _, err := src.(SpliceToer).SpliceTo(dst, 10); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SpliceTo from a closed conn: %v, want net.ErrClosed", err)
	}
}

// TestUringReaderHandOff: a conn closed while a reader holds its partly
// read buffer gets the buffer back when the reader lets go, even though
// Close could not take the reader's lock.
func TestUringReaderHandOff(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	if _, err := b.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	c := a.(*uringConn)
	c.rmu.Lock() // a reader at work, past its closed check
	if c.curID < 0 {
		c.rmu.Unlock()
		t.Fatal("the rest of the received buffer is not held")
	}
	id := c.curID
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.curID != id {
		t.Fatal("Close took the buffer while a reader held the conn")
	}
	c.unlockReader()
	if c.curID >= 0 || c.cur != nil {
		t.Fatalf("buffer %d still held after the reader let go of a closed conn", id)
	}
}

// TestUringDeadlineMovedAfterCancel: a Write whose deadline passed while
// it waited (for the send of the write before it, queued behind) fails
// with os.ErrDeadlineExceeded even when the deadline is moved later before
// the cancelled send completes. The send has moved no
// byte (the socket's buffer is full), so it ends with ECANCELED. The mover
// races the deadline's timer; when it wins, the Write waits on and the
// test closes the conn.
func TestUringDeadlineMovedAfterCancel(t *testing.T) {
	d := newDriver(t, UringParams{})
	big := make([]byte, 16<<20)
	for i := range 24 {
		a, _ := ringPair(t, d) // the peer never reads
		a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := a.Write(big); !isTimeout(err) {
			t.Fatalf("filling the socket buffer: %v", err)
		}
		dl := time.Now().Add(5 * time.Millisecond)
		a.SetWriteDeadline(dl)
		var closedByTest atomic.Bool
		go func() {
			time.Sleep(time.Until(dl) + time.Duration(i%8)*25*time.Microsecond)
			a.SetWriteDeadline(time.Now().Add(time.Hour))
			time.Sleep(50 * time.Millisecond)
			closedByTest.Store(true)
			a.Close()
		}()
		_, err := a.Write([]byte{1}) // queued (writeBehind): returns at once
		if err == nil {
			_, err = a.Write([]byte{2}) // waits for the first one's send
		}
		if !isTimeout(err) && !(closedByTest.Load() && errors.Is(err, net.ErrClosed)) {
			t.Fatalf("round %d: Write: %v, want a timeout", i, err)
		}
	}
}

// TestUringCloseKeepsLentBuffers closes the driver while a reader still
// holds a received buffer: the buffer stays mapped (leaked) rather than
// unmapped under the reader, which would fault on its next access.
func TestUringCloseKeepsLentBuffers(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	if _, err := b.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	buf, release, err := a.(Borrower).ReadBorrow()
	if err != nil || string(buf) != "still here" {
		t.Fatalf("ReadBorrow = %q, %v", buf, err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if string(buf) != "still here" {
		t.Errorf("borrowed buffer after Close = %q", buf)
	}
	release() // after Close: nothing to give back to
}

// TestUringStaleWhileReading asks Stale (a pool's check of an idle conn,
// under the driver's lock) while a reader takes the rest of partly read
// buffers: the race detector flags the conn's current-buffer fields if a
// reader changes them without the driver's lock.
func TestUringStaleWhileReading(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	stop := make(chan struct{})
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		for {
			select {
			case <-stop:
				return
			default:
				a.(interface{ Stale() bool }).Stale()
			}
		}
	}()
	p := make([]byte, 4)
	for i := 0; i < 200; i++ {
		if _, err := b.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, p); err != nil {
			t.Fatal(err)
		}
		for got := 4; got < 10; {
			buf, release, err := a.(Borrower).ReadBorrow()
			if err != nil {
				t.Fatal(err)
			}
			got += len(buf)
			release()
		}
	}
	close(stop)
	<-asked
}

// TestUringBufferedCloseRace: a Close while another goroutine is in
// Buffered (which holds the reader's lock) leaves the partly read buffer to
// it, and it must give the buffer back on its way out, as a Read does.
// Without that, each such race took a buffer from the ring for good.
func TestUringBufferedCloseRace(t *testing.T) {
	d := newDriver(t, UringParams{})
	for round := range 100 {
		a, b := ringPair(t, d)
		if _, err := b.Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Read(make([]byte, 10)); err != nil { // 90 bytes stay in the buffer
			t.Fatal(err)
		}
		var stop atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			for !stop.Load() {
				Buffered(a)
			}
		}()
		time.Sleep(time.Duration(round%5) * 10 * time.Microsecond)
		a.Close()
		stop.Store(true)
		<-done
		b.Close()
	}
	if n := d.BuffersOut(); n != 0 {
		t.Fatalf("%d received buffers still out after every conn closed, want 0", n)
	}
}

// TestCancelRetried stands for a cancel the kernel lost: it marks a
// conn's multishot recv as cancelled, as rearmIfMovedLocked does, but
// queues no cancel. The retry timer must queue one, which ends the recv
// (-ECANCELED); the parked Read then re-arms and gets the bytes sent after.
// Without the retry the Read would wait for the peer's next event.
func TestCancelRetried(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	c := a.(*uringConn)
	t.Cleanup(func() {
		// Should the retry fail, cancel for real, so that the conn
		// and the driver can close.
		d.mu.Lock()
		if c.armed {
			d.ring.Cancel(0, c.ud(kindRecvMulti), false)
			d.kickLocked()
		}
		d.mu.Unlock()
	})
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 1)
		_, err := io.ReadFull(a, buf)
		got <- err
	}()
	// The Read armed the recv and parked; once the recv is in, a lost
	// cancel: marked, followed, never queued.
	untilLocked(t, d, "the Read's recv submitted", func() bool { return c.armed && c.armTid != 0 })
	d.mu.Lock()
	c.mcancel = true
	d.followLocked(c.ud(kindRecvMulti))
	d.mu.Unlock()
	untilLocked(t, d, "the retried cancel ending the recv", func() bool {
		return !(c.armed && c.mcancel) && len(d.cancelling) == 0
	})
	if d.CancelRetries() == 0 {
		t.Fatal("no cancel was retried")
	}
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Read after the retried cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not get the byte sent after the cancel")
	}
}

// TestCancellingForgotten checks that the retry bookkeeping lets go of
// every cancelled operation once it has ended: deadlines and closes of
// many conns with operations in flight leave nothing to retry.
func TestCancellingForgotten(t *testing.T) {
	d := newDriver(t, UringParams{})
	var wg sync.WaitGroup
	for range 16 {
		a, b := ringPair(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			a.Read(make([]byte, 1)) // times out: a one-shot or multishot cancel
			a.Close()               // cancels the multishot recv
			b.Close()
		}()
	}
	wg.Wait()
	untilLocked(t, d, "the cancelled operations' last completions", func() bool { return len(d.cancelling) == 0 })
}

// untilLocked fails the test if cond, asked with d.mu held every
// millisecond, has not held within 5 seconds.
func untilLocked(t *testing.T, d *Uring, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		d.mu.Lock()
		ok := cond()
		d.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

// fillSendBuffer writes to a, whose peer does not read, until a write
// moves nothing for 100 ms, and returns how many bytes went out.
func fillSendBuffer(t *testing.T, a net.Conn) int {
	t.Helper()
	chunk := make([]byte, 1<<20)
	total := 0
	for range 256 {
		a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := a.Write(chunk)
		total += n
		if err != nil && !isTimeout(err) {
			t.Fatalf("filling the socket buffer: %v", err)
		}
		if n == 0 {
			a.SetWriteDeadline(time.Time{})
			return total // nothing went out for 100 ms
		}
	}
	t.Fatalf("the socket took %d bytes and more from a peer that reads nothing", total)
	return 0
}

// TestUringCloseLetsWriteBehindFinish: a small Write returns before its
// send went out (writeBehind); a Close right after it, while the peer's
// buffers are full, returns at once and lets that send finish once the
// peer reads, then closes the socket, as close(2) lets a socket's send
// queue go out, instead of cancelling it.
func TestUringCloseLetsWriteBehindFinish(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	n, tail := queueTailBehind(t, a, 16<<10)
	if err := a.Close(); err != nil { // the peer has not read yet
		t.Fatalf("Close: %v", err)
	}
	expectAllThenEOF(t, b, n, tail)
	waitForgotten(t, d, a)
}

// queueTailBehind fills a's send buffer, then writes a tail of size bytes
// ending "the end", which waits as a write-behind's send; it returns the
// bytes written before the tail, and the tail.
func queueTailBehind(t *testing.T, a net.Conn, size int) (int, []byte) {
	t.Helper()
	n := fillSendBuffer(t, a)
	tail := append(bytes.Repeat([]byte("x"), size-7), "the end"...)
	if _, err := a.Write(tail); err != nil {
		t.Fatalf("a write queued behind: %v", err)
	}
	waitBehindPending(t, a)
	return n, tail
}

// expectAllThenEOF reads b to EOF: n bytes, then tail.
func expectAllThenEOF(t *testing.T, b net.Conn, n int, tail []byte) {
	t.Helper()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("reading to EOF: %v", err)
	}
	if len(got) != n+len(tail) || !bytes.Equal(got[n:], tail) {
		t.Fatalf("the peer read %d bytes ending %q, want %d ending \"the end\"", len(got), got[max(len(got)-7, 0):], n+len(tail))
	}
}

// TestUringCloseWriteBehindLinger: when the peer does not read, the
// write-behind's send that Close let go on is cancelled once closeLinger
// passed without progress (a past write deadline does not cut it short),
// and the socket closed: the peer reads what it had and EOF.
func TestUringCloseWriteBehindLinger(t *testing.T) {
	defer func(l time.Duration) { closeLinger = l }(closeLinger)
	closeLinger = 300 * time.Millisecond
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	n := fillSendBuffer(t, a)
	a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := a.Write(make([]byte, 16<<10)); err != nil {
		t.Fatalf("a write queued behind: %v", err)
	}
	waitBehindPending(t, a) // past the deadline
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	c := a.(*uringConn)
	d.mu.Lock()
	live := d.objs.get(c.id) != nil
	d.mu.Unlock()
	if !live {
		t.Fatal("the send was cancelled before closeLinger")
	}
	waitForgotten(t, d, a)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("reading to EOF: %v", err)
	}
	if len(got) != n {
		t.Fatalf("the peer read %d bytes, want the %d sent before the cancelled one", len(got), n)
	}
}

// waitForgotten waits until the driver has forgotten the closed conn c
// (its last completion came and its socket is closed).
func waitForgotten(t *testing.T, d *Uring, c net.Conn) {
	t.Helper()
	id := c.(*uringConn).id
	deadline := time.Now().Add(3 * time.Second)
	for {
		d.mu.Lock()
		live := d.objs.get(id) != nil
		d.mu.Unlock()
		if !live {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed conn is still in the driver's table")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitBehindPending fails the test unless a's write-behind send is still
// in flight a moment after it was queued (the peer's buffers are full).
func waitBehindPending(t *testing.T, a net.Conn) {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
	c := a.(*uringConn)
	c.d.mu.Lock()
	pending := c.behind != nil
	c.d.mu.Unlock()
	if !pending {
		t.Fatal("the write queued behind went out at once: the socket buffer was not full")
	}
}

// TestUringCloseLetsSettlingWriteBehindFinish: a CloseWrite waiting for a
// write-behind's send (the peer reads slowly) when another goroutine
// closes the conn returns, and leaves the send to Close: the peer still
// reads every byte, then EOF. The waiter used to cancel the send Close had
// let go on (a relay closed as idle lost its last 8 KiB).
func TestUringCloseLetsSettlingWriteBehindFinish(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	n, tail := queueTailBehind(t, a, 8<<10)
	settled := make(chan error, 1)
	go func() { settled <- a.(*uringConn).CloseWrite() }()
	time.Sleep(50 * time.Millisecond) // CloseWrite waits for the send
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-settled:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("CloseWrite after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CloseWrite still waits after Close")
	}
	expectAllThenEOF(t, b, n, tail)
	waitForgotten(t, d, a)
}

// TestUringCloseLeavesRecvToTheLoop: Close does not wait for the cancel of
// a conn's multishot recv; the completion that ends it closes the socket
// and forgets the conn. The peer sees the connection end, data it sent
// around the Close goes back to the buffer ring, and the driver's table
// lets go of every conn, with or without a write-behind's send that Close
// let go on.
func TestUringCloseLeavesRecvToTheLoop(t *testing.T) {
	d := newDriver(t, UringParams{})
	for i := range 40 {
		a, b := ringPair(t, d)
		if _, err := b.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(a, buf); err != nil { // the multishot recv is armed
			t.Fatal(err)
		}
		if i%2 == 1 {
			if _, err := a.Write([]byte("pong")); err != nil { // a write-behind, likely still in flight
				t.Fatal(err)
			}
		}
		b.Write([]byte("more")) // may arrive before the cancel
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		b.Write([]byte("after")) // may fail: the socket may be gone
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(b)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the peer's read after Close: %v", err)
		}
		if i%2 == 1 && err == nil && string(got) != "pong" {
			t.Fatalf("the peer read %q, want the write-behind's \"pong\"", got)
		}
		waitForgotten(t, d, a)
	}
	d.mu.Lock()
	out := d.br.Out()
	d.mu.Unlock()
	if out != 0 {
		t.Errorf("%d received buffers not given back to the ring", out)
	}
}

// TestUringWriteBehindOutlivesDeadline: a write-behind's send (its Write
// returned success) is not cut short when the write deadline passes while
// it waits for the peer: the next Write fails with the timeout, sending
// nothing, and once the deadline is lifted the stream goes on whole. The
// next Write used to cancel that send, leaving a hole in the stream that
// no call reported.
func TestUringWriteBehindOutlivesDeadline(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	n := fillSendBuffer(t, a)
	first, second, third := bytes.Repeat([]byte("1"), 4<<10), bytes.Repeat([]byte("2"), 4<<10), bytes.Repeat([]byte("3"), 4<<10)
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if k, err := a.Write(first); k != len(first) || err != nil {
		t.Fatalf("a write queued behind: %d, %v", k, err)
	}
	waitBehindPending(t, a)
	time.Sleep(60 * time.Millisecond) // past the deadline
	if k, err := a.Write(second); k != 0 || !isTimeout(err) {
		t.Fatalf("a write past the deadline: %d, %v; want 0 and a timeout", k, err)
	}
	a.SetWriteDeadline(time.Time{})
	read := make(chan []byte, 1)
	go func() {
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(b)
		read <- got
	}()
	if _, err := a.Write(third); err != nil {
		t.Fatalf("a write once the deadline is lifted: %v", err)
	}
	if err := a.(*uringConn).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got := <-read
	want := append(append([]byte(nil), first...), third...)
	if len(got) != n+len(want) || !bytes.Equal(got[n:], want) {
		t.Fatalf("the peer read %d bytes, want %d: the written bytes were not all delivered, in order", len(got), n+len(want))
	}
}

// TestUringCloseWriteIgnoresDeadline: CloseWrite, as shutdown(2), is not
// bounded by a write deadline that passed while a write-behind's send
// waited: it waits for that send, then half-closes, and the peer reads
// everything and EOF. It used to fail with the timeout and send no FIN.
func TestUringCloseWriteIgnoresDeadline(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	n := fillSendBuffer(t, a)
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	tail := []byte("the tail")
	if _, err := a.Write(tail); err != nil {
		t.Fatalf("a write queued behind: %v", err)
	}
	waitBehindPending(t, a)
	time.Sleep(60 * time.Millisecond) // past the deadline
	read := make(chan []byte, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // CloseWrite waits for the peer
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(b)
		read <- got
	}()
	if err := a.(*uringConn).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if got := <-read; len(got) != n+len(tail) || !bytes.HasSuffix(got, tail) {
		t.Fatalf("the peer read %d bytes (then EOF or its timeout), want %d ending %q", len(got), n+len(tail), tail)
	}
}
