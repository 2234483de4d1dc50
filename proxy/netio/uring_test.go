//go:build uring && cgo

package netio

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ringPair returns a connected pair: a from the driver's Dial, b accepted
// by its listener.
func ringPair(t *testing.T, d *Uring) (a, b net.Conn) {
	t.Helper()
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	a, err = d.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.FailNow()
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestUringAvailable(t *testing.T) {
	if !UringBuilt {
		t.Fatal("UringBuilt is false in the uring build")
	}
	if err := UringAvailable(); err != nil {
		t.Skipf("io_uring unusable: %v", err)
	}
}

// TestUringEcho runs 200 concurrent connections against an echo server,
// both on one ring, with messages of many sizes.
func TestUringEcho(t *testing.T) {
	tests := []struct {
		name   string
		p      UringParams
		server func(c net.Conn)
	}{
		{"read-write", UringParams{}, func(c net.Conn) { echoConn(c, 4096) }},
		{"io.Copy-borrow", UringParams{}, func(c net.Conn) { io.Copy(c, c) }},
		// Few small buffers: receives run the ring dry and fall back to
		// one-shot recvs into the caller's slice.
		{"small-bufring", UringParams{BufCount: 16, BufSize: 512}, func(c net.Conn) { echoConn(c, 1000) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, tt.p)
			ln, err := d.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { defer c.Close(); tt.server(c) }()
				}
			}()
			const conns, msgs = 200, 10
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for i := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := d.Dial(context.Background(), "tcp", ln.Addr().String())
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					got := make([]byte, 40000)
					for j := range msgs {
						msg := bytes.Repeat([]byte{byte(i + j)}, 1+(i*131+j*977)%30000)
						if _, err := c.Write(msg); err != nil {
							errs <- fmt.Errorf("conn %d write: %w", i, err)
							return
						}
						if _, err := io.ReadFull(c, got[:len(msg)]); err != nil {
							errs <- fmt.Errorf("conn %d read: %w", i, err)
							return
						}
						if !bytes.Equal(got[:len(msg)], msg) {
							errs <- fmt.Errorf("conn %d message %d corrupted", i, j)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			st := d.Stats()
			t.Logf("ring %v: %d Enters, %d syscalls, %d SQEs, %d CQEs, %d C rounds", d.Flags(), st.Enters, st.Syscalls, st.SQEs, st.CQEs, st.CRounds)
		})
	}
}

// TestUringRoundsInGo: once a connection is up, its reads and writes (and
// the deadlines it renews) go through rounds prepared in Go; the cgo call
// is left for connects, splices and timeouts (see uring.Ring.Enter).
func TestUringRoundsInGo(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	go echoConn(b, 4096)
	before := d.Stats()
	msg, got := randomBytes(3000), make([]byte, 3000)
	for range 200 {
		a.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, got); err != nil {
			t.Fatal(err)
		}
	}
	st := d.Stats()
	if n := st.Enters - before.Enters; n < 200 || st.CRounds != before.CRounds {
		t.Errorf("%d rounds for 200 round trips, %d of them through C; want none through C", n, st.CRounds-before.CRounds)
	}
}

// TestUringLargeTransfer sends 16 MiB each way at the same time, with and
// without SEND_ZC.
func TestUringLargeTransfer(t *testing.T) {
	for _, zc := range []int{0, -1} {
		t.Run("zc="+strconv.FormatBool(zc == 0), func(t *testing.T) {
			d := newDriver(t, UringParams{ZCThreshold: zc})
			d.zcLocal = true // both ends read: the notifications come
			a, b := ringPair(t, d)
			const size = 16 << 20
			ab, ba := randomBytes(size), randomBytes(size)
			var wg sync.WaitGroup
			send := func(c net.Conn, data []byte) {
				defer wg.Done()
				for off := 0; off < len(data); {
					n := min(len(data)-off, 1<<20)
					if _, err := c.Write(data[off : off+n]); err != nil {
						t.Error(err)
						return
					}
					off += n
				}
			}
			recv := func(c net.Conn, want []byte) {
				defer wg.Done()
				got := make([]byte, len(want))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, want) {
					t.Error("data corrupted")
				}
			}
			wg.Add(4)
			go send(a, ab)
			go send(b, ba)
			go recv(b, ab)
			go recv(a, ba)
			wg.Wait()
		})
	}
}

// TestUringInterop talks between the ring driver and package net, over TCP
// and Unix sockets.
func TestUringInterop(t *testing.T) {
	d := newDriver(t, UringParams{})
	dir := t.TempDir()
	tests := []struct {
		name   string
		listen func() (net.Listener, error)
		dial   func(addr string) (net.Conn, error)
	}{
		{"ring-listener/net-dial/tcp", func() (net.Listener, error) { return d.Listen("tcp", "127.0.0.1:0") },
			func(a string) (net.Conn, error) { return net.Dial("tcp", a) }},
		{"net-listener/ring-dial/tcp", func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
			func(a string) (net.Conn, error) { return d.Dial(context.Background(), "tcp", a) }},
		{"ring-listener/net-dial/unix", func() (net.Listener, error) { return d.Listen("unix", filepath.Join(dir, "a.sock")) },
			func(a string) (net.Conn, error) { return net.Dial("unix", a) }},
		{"net-listener/ring-dial/unix", func() (net.Listener, error) { return net.Listen("unix", filepath.Join(dir, "b.sock")) },
			func(a string) (net.Conn, error) { return d.Dial(context.Background(), "unix", a) }},
		{"ring-listener/ring-dial/unix", func() (net.Listener, error) { return d.Listen("unix", filepath.Join(dir, "c.sock")) },
			func(a string) (net.Conn, error) { return d.Dial(context.Background(), "unix", a) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := tt.listen()
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go serveEcho(ln)
			c, err := tt.dial(ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msg := randomBytes(100 << 10)
			go c.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("echo corrupted")
			}
			if c.LocalAddr().Network() != ln.Addr().Network() || c.RemoteAddr().String() == "" && ln.Addr().Network() == "tcp" {
				t.Errorf("addresses: local %v remote %v, listener %v", c.LocalAddr(), c.RemoteAddr(), ln.Addr())
			}
			if ln.Addr().Network() == "tcp" && c.RemoteAddr().String() != ln.Addr().String() {
				t.Errorf("RemoteAddr %v, want %v", c.RemoteAddr(), ln.Addr())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "a.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ring listener left its socket file: %v", err)
	}
}

// TestUringAcceptedAddrs: an accepted conn's addresses are the dialer's,
// swapped, whether the listener's address is specific (taken from it) or a
// wildcard (asked of the socket).
func TestUringAcceptedAddrs(t *testing.T) {
	d := newDriver(t, UringParams{})
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0", "[::]:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := d.Listen("tcp", addr)
			if err != nil {
				t.Skipf("listen %s: %v", addr, err)
			}
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			loop := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			c, sc := dialAccept(t, ln, loop)
			local, remote := sc.LocalAddr().(*net.TCPAddr), sc.RemoteAddr().(*net.TCPAddr)
			want := c.RemoteAddr().(*net.TCPAddr)
			if !local.IP.Equal(want.IP) || local.Port != want.Port {
				t.Errorf("LocalAddr %v, want %v", local, want)
			}
			if from := c.LocalAddr().(*net.TCPAddr); !remote.IP.Equal(from.IP) || remote.Port != from.Port {
				t.Errorf("RemoteAddr %v, want %v", remote, from)
			}
			// TCP_NODELAY on every accepted socket: the first is asked
			// whether it inherited it from the listener, the next ones
			// rely on the answer.
			for i := range 3 {
				if i > 0 {
					_, sc = dialAccept(t, ln, loop)
				}
				if v, err := syscall.GetsockoptInt(sc.(*uringConn).fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY); err != nil || v == 0 {
					t.Errorf("accepted socket %d: TCP_NODELAY %d, %v", i, v, err)
				}
				// No keep-alive probes, as on the epoll driver
				// (TestListenTCPAcceptedOptions).
				if v, err := syscall.GetsockoptInt(sc.(*uringConn).fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); err != nil || v != 0 {
					t.Errorf("accepted socket %d: SO_KEEPALIVE %d, %v", i, v, err)
				}
			}
		})
	}
}

func TestUringFileListener(t *testing.T) {
	d := newDriver(t, UringParams{})
	nl, err := ListenTCP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := File(nl)
	nl.Close()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := d.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, []byte("inherited"), make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.FileListener(os.Stdin); err == nil {
		t.Error("FileListener accepted a file that is not a listening socket")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

func TestUringDeadlines(t *testing.T) {
	d := newDriver(t, UringParams{})

	t.Run("empty-write", func(t *testing.T) {
		// As on net.TCPConn: a Write of nothing still reports a passed
		// deadline.
		a, _ := ringPair(t, d)
		a.SetWriteDeadline(time.Now().Add(-time.Second))
		if _, err := a.Write(nil); !isTimeout(err) {
			t.Fatalf("Write(nil) past deadline: %v, want a timeout", err)
		}
		a.SetWriteDeadline(time.Time{})
		if n, err := a.Write(nil); n != 0 || err != nil {
			t.Fatalf("Write(nil) = %d, %v, want 0, nil", n, err)
		}
	})

	t.Run("past", func(t *testing.T) {
		a, _ := ringPair(t, d)
		a.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := a.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("Read past deadline: %v, want a timeout", err)
		}
		if _, _, err := a.(Borrower).ReadBorrow(); !isTimeout(err) {
			t.Fatalf("ReadBorrow past deadline: %v, want a timeout", err)
		}
	})

	// A deadline set in the past fails the next Read even with data at
	// hand, also when the round's clock reading (see roundClock) is older
	// than the deadline: the deadline is then found passed when its timer
	// would be armed.
	t.Run("past-data", func(t *testing.T) {
		a, b := ringPair(t, d)
		b.Write([]byte("x")) // a first Read arms the receive
		if _, err := a.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		b.Write([]byte("y"))
		for i := 0; Buffered(a) == 0; i++ {
			if i == 100 {
				t.Fatal("the byte written never arrived")
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(10 * time.Millisecond) // the loop is idle again
		roundClock.loops.Add(1)
		defer roundClock.loops.Add(-1)
		roundClock.mono.Store(monoNow() - int64(time.Minute))
		a.SetReadDeadline(time.Now().Add(-time.Millisecond))
		tick() // a fresh reading again
		if _, err := a.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("Read past deadline, with data at hand: %v, want a timeout", err)
		}
		a.SetReadDeadline(time.Time{})
		if _, err := a.Read(make([]byte, 1)); err != nil {
			t.Fatalf("Read after clearing the deadline: %v", err)
		}
	})

	t.Run("expires-while-parked", func(t *testing.T) {
		a, b := ringPair(t, d)
		a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		start := time.Now()
		_, err := a.Read(make([]byte, 1))
		if !isTimeout(err) {
			t.Fatalf("Read: %v, want a timeout", err)
		}
		if el := time.Since(start); el < 40*time.Millisecond || el > 2*time.Second {
			t.Errorf("timed out after %v, want about 50ms", el)
		}
		// Clearing the deadline makes the conn usable again, and data
		// that arrived meanwhile is not lost.
		a.SetReadDeadline(time.Time{})
		b.Write([]byte("later"))
		got := make([]byte, 5)
		if _, err := io.ReadFull(a, got); err != nil || string(got) != "later" {
			t.Fatalf("Read after clearing deadline: %q %v", got, err)
		}
	})

	t.Run("extended", func(t *testing.T) {
		a, b := ringPair(t, d)
		a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		go func() {
			time.Sleep(20 * time.Millisecond)
			a.SetReadDeadline(time.Now().Add(5 * time.Second))
			time.Sleep(100 * time.Millisecond)
			b.Write([]byte("x"))
		}()
		if _, err := a.Read(make([]byte, 1)); err != nil {
			t.Fatalf("Read with extended deadline: %v", err)
		}
	})

	// A deadline pushed later while its timer fires is the one in force
	// afterwards: the timer neither marks it passed nor is left armed too
	// late for it.
	t.Run("renew-races-timer", func(t *testing.T) {
		a, b := ringPair(t, d)
		buf := make([]byte, 1)
		for i := range 300 {
			a.SetReadDeadline(time.Now().Add(time.Duration(i%20) * 10 * time.Microsecond))
			for range i % 7 {
				runtime.Gosched()
			}
			a.SetReadDeadline(time.Now().Add(time.Minute))
			b.Write([]byte("x"))
			if _, err := a.Read(buf); err != nil {
				t.Fatalf("round %d: Read after renewing the deadline: %v", i, err)
			}
		}
		// And a renewal to a deadline sooner than the timer is armed for
		// re-arms it.
		a.SetReadDeadline(time.Now().Add(time.Minute))
		a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		start := time.Now()
		if _, err := a.Read(buf); !isTimeout(err) || time.Since(start) > 10*time.Second {
			t.Fatalf("Read: %v after %v, want a timeout after 30ms", err, time.Since(start))
		}
	})

	t.Run("splice", func(t *testing.T) {
		// SpliceTo parks a one-shot splice in flight: the deadline must
		// cancel it.
		src, _ := ringPair(t, d)
		dst, _ := ringPair(t, d)
		src.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		start := time.Now()
		n, err := src.(SpliceToer).SpliceTo(dst, -1)
		if !isTimeout(err) || n != 0 {
			t.Fatalf("SpliceTo = %d, %v; want a timeout", n, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("timed out after %v", el)
		}
	})

	t.Run("write", func(t *testing.T) {
		a, _ := ringPair(t, d) // the peer never reads
		big := make([]byte, 64<<20)
		a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := a.Write(big)
		if !isTimeout(err) {
			t.Fatalf("Write: %d, %v, want a timeout", n, err)
		}
		if n <= 0 || n >= len(big) {
			t.Errorf("Write reported %d bytes sent", n)
		}
	})
}

func TestUringCloseWrite(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	a.Write([]byte("request"))
	if err := a.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "request" {
		t.Fatalf("peer read %q, %v; want request then EOF", got, err)
	}
	b.Write([]byte("response"))
	b.Close()
	got, err = io.ReadAll(a)
	if err != nil || string(got) != "response" {
		t.Fatalf("half-closed side read %q, %v", got, err)
	}
}

func TestUringCloseUnblocks(t *testing.T) {
	d := newDriver(t, UringParams{})
	tests := []struct {
		name string
		op   func(c net.Conn) error
	}{
		{"read", func(c net.Conn) error { _, err := c.Read(make([]byte, 10)); return err }},
		{"borrow", func(c net.Conn) error { _, _, err := c.(Borrower).ReadBorrow(); return err }},
		{"write", func(c net.Conn) error { _, err := c.Write(make([]byte, 64<<20)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := ringPair(t, d)
			done := make(chan error, 1)
			go func() { done <- tt.op(a) }()
			time.Sleep(50 * time.Millisecond)
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("parked %s returned %v, want net.ErrClosed", tt.name, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock the parked operation")
			}
			if err := a.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close: %v", err)
			}
		})
	}

	t.Run("listener", func(t *testing.T) {
		ln, err := d.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := ln.Accept(); done <- err }()
		time.Sleep(20 * time.Millisecond)
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	})

	t.Run("driver", func(t *testing.T) {
		d := newDriver(t, UringParams{})
		// The peer is not the driver's: closing it first (the driver
		// closes its conns in any order) would end a's Read with EOF.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		a, err := d.Dial(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		done := make(chan error, 1)
		go func() { _, err := a.Read(make([]byte, 1)); done <- err }()
		time.Sleep(20 * time.Millisecond)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after driver Close: %v", err)
		}
		if _, err := d.Listen("tcp", "127.0.0.1:0"); err == nil {
			t.Error("Listen on a closed driver succeeded")
		}
	})
}

func TestUringDialContext(t *testing.T) {
	d := newDriver(t, UringParams{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Dial(ctx, "tcp", "127.0.0.1:1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a cancelled context: %v", err)
	}
	if _, err := d.Dial(context.Background(), "tcp", "127.0.0.1:1"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial of a closed port: %v, want ECONNREFUSED", err)
	}
	if c, err := d.Dial(context.Background(), "tcp", "localhost:1"); err == nil {
		c.Close()
		t.Error("Dial of localhost:1 succeeded")
	}

	// A listener whose backlog is full drops SYNs: the connect stays in
	// flight until the context's deadline cancels it.
	addr := fullBacklog(t, d)
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if c, err := d.Dial(ctx, "tcp", addr); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("Dial to a full backlog: %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Dial returned %v after the deadline", el)
	}
}

// TestUringDialSharesDeadline: of a name's several addresses, one that
// drops the SYN (a full backlog here) takes its share of the connect
// timeout, not all of it: the next address is tried and connects.
func TestUringDialSharesDeadline(t *testing.T) {
	d := newDriver(t, UringParams{})
	dead := fullBacklog(t, d)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var targets []syscall.Sockaddr
	var raddrs []net.Addr
	for _, a := range []string{dead, ln.Addr().String()} {
		ap := netip.MustParseAddrPort(a)
		targets = append(targets, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
		raddrs = append(raddrs, net.TCPAddrFromAddrPort(ap))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.dialEach(ctx, "tcp", targets, raddrs)
	if err != nil {
		t.Fatalf("dial with the first address dropping SYNs: %v", err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != ln.Addr().String() {
		t.Fatalf("connected to %s, want %s", got, ln.Addr())
	}
}

func TestShareOf(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		left time.Duration
		n    int
		want time.Duration
	}{
		{10 * time.Second, 2, 5 * time.Second},
		{5 * time.Second, 4, 2 * time.Second}, // at least minDialShare
		{time.Second, 3, time.Second},         // unless less is left
		{6 * time.Second, 1, 6 * time.Second},
	} {
		if got := shareOf(now, now.Add(tc.left), tc.n).Sub(now); got != tc.want {
			t.Errorf("shareOf(%v left, %d addresses) = %v, want %v", tc.left, tc.n, got, tc.want)
		}
	}
}

func TestUringBorrowAndSplice(t *testing.T) {
	d := newDriver(t, UringParams{})

	t.Run("borrow", func(t *testing.T) {
		a, b := ringPair(t, d)
		b.Write([]byte("hello"))
		buf, release, err := a.(Borrower).ReadBorrow()
		if err != nil || string(buf) != "hello" {
			t.Fatalf("ReadBorrow = %q, %v", buf, err)
		}
		release()
		b.Close()
		if buf, _, err := a.(Borrower).ReadBorrow(); err != io.EOF || len(buf) != 0 {
			t.Fatalf("ReadBorrow at EOF = %q, %v", buf, err)
		}
	})

	t.Run("splice-limited", func(t *testing.T) {
		src, peer := ringPair(t, d)
		dst, sink := ringPair(t, d)
		data := randomBytes(3 << 20)
		go peer.Write(data)
		// Some bytes already sit in the buffer ring when splicing starts.
		first := make([]byte, 1000)
		if _, err := io.ReadFull(src, first); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		const n = 2 << 20
		done := make(chan []byte)
		go func() {
			got := make([]byte, n)
			io.ReadFull(sink, got)
			done <- got
		}()
		m, err := src.(SpliceToer).SpliceTo(dst, n)
		if err != nil || m != n {
			t.Fatalf("SpliceTo = %d, %v", m, err)
		}
		if !bytes.Equal(<-done, data[1000:1000+n]) {
			t.Fatal("spliced data corrupted")
		}
		// The rest is still readable with Read.
		rest := make([]byte, len(data)-1000-n)
		if _, err := io.ReadFull(src, rest); err != nil || !bytes.Equal(rest, data[1000+n:]) {
			t.Fatalf("Read after SpliceTo: %v", err)
		}
	})

	relays := []struct {
		name string
		p    UringParams
		copy string
	}{
		{"relay/SpliceTo", UringParams{}, "splice"},
		{"relay/io.Copy", UringParams{}, "copy"},
		{"relay/io.Copy-SpliceCopy", UringParams{SpliceCopy: true}, "copy"},
	}
	for _, tt := range relays {
		t.Run(tt.name, func(t *testing.T) {
			// client → relay (both ways) → echo server.
			d := newDriver(t, tt.p)
			echo, err := d.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer echo.Close()
			go serveEcho(echo)
			relay, err := d.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			go serveRelay(relay, d.Dial, echo.Addr().String(), relayCopies[tt.copy])
			c, err := net.Dial("tcp", relay.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			data := randomBytes(8 << 20)
			go func() {
				c.Write(data)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("relayed %d of %d bytes, %v", len(got), len(data), err)
			}
		})
	}

	t.Run("splice-to-net", func(t *testing.T) {
		src, peer := ringPair(t, d)
		nc, ns := netPair(t)
		data := randomBytes(1 << 20)
		go func() { peer.Write(data); peer.Close() }()
		go func() { src.(io.WriterTo).WriteTo(nc); nc.Close() }()
		got, err := io.ReadAll(ns)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("WriteTo a net.Conn: %d bytes, %v", len(got), err)
		}
	})
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestUringTLS runs crypto/tls unchanged on ring connections on both ends.
func TestUringTLS(t *testing.T) {
	d := newDriver(t, UringParams{})
	cert := selfSigned(t)
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	go serveEcho(tln)
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	raw, err := d.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	msg := randomBytes(200 << 10)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("TLS echo: %v", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version %x", v)
	}
}

// TestUringHTTP serves net/http over a ring listener to an http.Client
// dialing through the ring, with keep-alive.
func TestUringHTTP(t *testing.T) {
	d := newDriver(t, UringParams{})
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(body))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       5 * time.Second,
	}
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: d.Dial}}
	defer client.CloseIdleConnections()
	url := "http://" + ln.Addr().String()
	for i := range 20 {
		body := strings.Repeat("b", i*1000)
		resp, err := client.Post(url+"/p"+strconv.Itoa(i), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /p%d %d", i, len(body)); err != nil || string(got) != want {
			t.Fatalf("response %q, %v; want %q", got, err, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 20 sequential requests, want 1 (keep-alive)", n)
	}
}

// TestUringTimersNotStarved checks that with one P a goroutine that only
// sleeps keeps running on time while ring traffic saturates the worker.
func TestUringTimersNotStarved(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	d := newDriver(t, UringParams{})
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rounds atomic.Int64
	for range 8 {
		c, err := d.Dial(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1024)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if roundTrip(c, buf, buf) != nil {
					return
				}
				rounds.Add(1)
			}
		}()
	}
	var ticks int
	var worst time.Duration
	last := time.Now()
	for end := last.Add(500 * time.Millisecond); last.Before(end); {
		time.Sleep(time.Millisecond)
		now := time.Now()
		worst = max(worst, now.Sub(last))
		last = now
		ticks++
	}
	close(stop)
	wg.Wait()
	t.Logf("%d ticks, worst gap %v, %d echo rounds meanwhile", ticks, worst, rounds.Load())
	if rounds.Load() == 0 {
		t.Error("no ring traffic ran")
	}
	if worst > 100*time.Millisecond || ticks < 50 {
		t.Errorf("timer goroutine starved: %d ticks of 1ms in 500ms, worst gap %v", ticks, worst)
	}
}

// TestUringIdleCPU checks that a driver with a parked Accept and parked
// Reads sleeps: the process uses well under 10% of a CPU over 500 ms, with
// one P (as in a worker) and with the test's default.
func TestUringIdleCPU(t *testing.T) {
	for _, procs := range []int{1, runtime.GOMAXPROCS(0)} {
		t.Run(fmt.Sprintf("procs=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			testUringIdleCPU(t)
		})
	}
}

func testUringIdleCPU(t *testing.T) {
	d := newDriver(t, UringParams{})
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln)
	for range 10 {
		c, err := d.Dial(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := roundTrip(c, []byte("warm"), make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		go c.Read(make([]byte, 1))
	}
	time.Sleep(50 * time.Millisecond)
	before := processCPU(t)
	time.Sleep(500 * time.Millisecond)
	used := processCPU(t) - before
	t.Logf("idle driver: %v CPU in 500ms", used)
	if used >= 50*time.Millisecond {
		t.Errorf("idle driver used %v of CPU in 500ms, want < 50ms", used)
	}
}

// processCPU returns the process's user+system CPU time from /proc/self/stat.
func processCPU(t *testing.T) time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces), from field 3.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// TestUringRandomized mixes reads of random sizes, borrows and deadlines on
// one stream and checks every byte arrives once, in order.
func TestUringRandomized(t *testing.T) {
	d := newDriver(t, UringParams{BufCount: 64, BufSize: 1024})
	a, b := ringPair(t, d)
	data := randomBytes(4 << 20)
	go func() {
		r := mrand.New(mrand.NewPCG(1, 2))
		for off := 0; off < len(data); {
			n := min(len(data)-off, 1+r.IntN(70000))
			b.Write(data[off : off+n])
			off += n
		}
		b.Close()
	}()
	r := mrand.New(mrand.NewPCG(3, 4))
	var got []byte
	buf := make([]byte, 100000)
	for {
		var err error
		switch r.IntN(3) {
		case 0:
			var n int
			n, err = a.Read(buf[:1+r.IntN(len(buf)-1)])
			got = append(got, buf[:n]...)
		case 1:
			var p []byte
			var release func()
			p, release, err = a.(Borrower).ReadBorrow()
			got = append(got, p...)
			release()
		case 2:
			a.SetReadDeadline(time.Now().Add(time.Duration(r.IntN(200)) * time.Microsecond))
			var n int
			n, err = a.Read(buf[:1+r.IntN(len(buf)-1)])
			got = append(got, buf[:n]...)
			a.SetReadDeadline(time.Time{})
			if isTimeout(err) {
				err = nil
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d; equal prefix %d", len(got), len(data), commonPrefix(got, data))
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestUringNotifyReadable: the callback runs once, on its own goroutine,
// for data (which stays to be read), EOF, a passing read deadline and
// Close; and is refused while a Read would not wait.
func TestUringNotifyReadable(t *testing.T) {
	d := newDriver(t, UringParams{})
	notified := func(t *testing.T, c net.Conn) <-chan struct{} {
		t.Helper()
		ch := make(chan struct{}, 2)
		if !c.(ReadNotifier).NotifyReadable(func() { ch <- struct{}{} }) {
			t.Fatal("NotifyReadable refused on an idle connection")
		}
		return ch
	}
	waitFor := func(t *testing.T, ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no notification for %s", what)
		}
		select {
		case <-ch:
			t.Fatalf("a second notification for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}

	t.Run("data", func(t *testing.T) {
		a, b := ringPair(t, d)
		ch := notified(t, b)
		select {
		case <-ch:
			t.Fatal("notified before any data")
		case <-time.After(50 * time.Millisecond):
		}
		a.Write([]byte("hello"))
		waitFor(t, ch, "data")
		if b.(ReadNotifier).NotifyReadable(func() {}) {
			t.Fatal("NotifyReadable accepted with data queued")
		}
		buf := make([]byte, 16)
		n, err := b.Read(buf)
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("read after the notification: %q %v", buf[:n], err)
		}
	})
	t.Run("eof", func(t *testing.T) {
		a, b := ringPair(t, d)
		ch := notified(t, b)
		a.Close()
		waitFor(t, ch, "EOF")
		if _, err := b.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read after EOF notification: %v", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		_, b := ringPair(t, d)
		b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		ch := notified(t, b)
		waitFor(t, ch, "the read deadline")
		if _, err := b.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("read after the deadline: %v", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		_, b := ringPair(t, d)
		ch := notified(t, b)
		b.Close()
		waitFor(t, ch, "Close")
	})
}

// TestUringWriteEdges: bytes written arrive in order and whole when Close
// follows at once; a peer that stops reading makes Write time out at its
// deadline instead of hanging; writes to a peer that reset fail.
func TestUringWriteEdges(t *testing.T) {
	d := newDriver(t, UringParams{})
	t.Run("close-after-write", func(t *testing.T) {
		a, b := ringPair(t, d)
		var want []byte
		for i := range 200 {
			msg := []byte(strings.Repeat(strconv.Itoa(i%10), 1+i*37%5000))
			want = append(want, msg...)
			if _, err := a.Write(msg); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan []byte)
		go func() {
			got, _ := io.ReadAll(b)
			done <- got
		}()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if got := <-done; !bytes.Equal(got, want) {
			t.Fatalf("peer read %d bytes, want the %d written", len(got), len(want))
		}
	})
	t.Run("stuck-peer", func(t *testing.T) {
		a, _ := ringPair(t, d)
		a.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		chunk := make([]byte, 16<<10)
		var err error
		for i := 0; i < 100000 && err == nil; i++ {
			_, err = a.Write(chunk)
		}
		if !isTimeout(err) {
			t.Fatalf("writing to a peer that does not read: %v, want a timeout", err)
		}
	})
	t.Run("reset-peer", func(t *testing.T) {
		a, b := ringPair(t, d)
		var err error
		if tc, ok := b.(*uringConn); ok {
			syscall.SetsockoptLinger(tc.fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
		}
		b.Close() // RST
		time.Sleep(50 * time.Millisecond)
		for i := 0; i < 100 && err == nil; i++ {
			_, err = a.Write([]byte("after the reset"))
			time.Sleep(5 * time.Millisecond)
		}
		if err == nil {
			t.Fatal("writes to a reset peer kept succeeding")
		}
	})
}

// TestUringDeadlinesDoNotAllocate: the HTTP server renews deadlines for
// every request; doing so must not allocate.
func TestUringDeadlinesDoNotAllocate(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, _ := ringPair(t, d)
	a.SetReadDeadline(time.Now().Add(time.Hour)) // the timers exist from here on
	a.SetWriteDeadline(time.Now().Add(time.Hour))
	n := testing.AllocsPerRun(100, func() {
		a.SetReadDeadline(time.Now().Add(time.Minute))
		a.SetWriteDeadline(time.Now().Add(time.Minute))
		a.SetReadDeadline(time.Time{})
	})
	if n != 0 {
		t.Fatalf("%v allocations per round of deadline renewals, want 0", n)
	}
}

// TestUringAcceptRearmsOnMovedLoop: a multishot accept submitted from
// another thread than the one the loop now runs on is cancelled and
// submitted again from the loop's thread when Accept next waits, and
// connections keep coming through. (The kernel accepts in task work of
// the submitting thread: a stale one would be woken for every connection.)
func TestUringAcceptRearmsOnMovedLoop(t *testing.T) {
	d := newDriver(t, UringParams{})
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := ln.(*uringListener)
	accept := func() {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			done <- err
		}()
		time.Sleep(20 * time.Millisecond) // let Accept wait first
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Accept did not return")
		}
	}
	accept()
	d.mu.Lock()
	first := l.armTid
	d.mu.Unlock()
	if first == 0 {
		t.Fatal("the accept's submitting thread was not recorded")
	}
	// Pretend the accept went in from a thread the loop has left.
	d.mu.Lock()
	l.armTid = ^uintptr(0)
	d.mu.Unlock()
	accept()
	accept()
	d.mu.Lock()
	tid, armed, loopTid := l.armTid, l.armed, d.tid
	d.mu.Unlock()
	if !armed || tid == ^uintptr(0) || tid == 0 {
		t.Fatalf("accept not re-armed from the loop's thread: armed %v, thread %#x (loop's %#x)", armed, tid, loopTid)
	}
}

// Buffered on the driver's conns counts the rest of a partly read buffer
// and the buffers queued, without a system call.
func TestUringBuffered(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	testBuffered(t, a, b)
}

// Peek on the driver's conns: see testPeek.
func TestUringPeek(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	testPeek(t, a, b)
}

// TestObjTable: IDs find their objects until removed; a slot used again
// gives a new ID, and the old one finds nothing.
func TestObjTable(t *testing.T) {
	var tab objTable
	a, b := &uringConn{}, &uringConn{}
	ida, _ := tab.add(a)
	idb, _ := tab.add(b)
	if ida == 0 || idb == 0 || ida == idb || tab.get(ida) != a || tab.get(idb) != b || tab.len() != 2 {
		t.Fatalf("ids %d %d, len %d", ida, idb, tab.len())
	}
	tab.remove(ida)
	tab.remove(ida) // a second remove does nothing
	c := &uringConn{}
	idc, _ := tab.add(c) // takes a's slot
	if idc == ida || tab.get(ida) != nil || tab.get(idc) != c || tab.get(idb) != b || tab.len() != 2 {
		t.Fatalf("after reuse: ids %d (old %d), get(old) %v, len %d", idc, ida, tab.get(ida), tab.len())
	}
	if tab.get(idc+1<<slotBits) != nil || tab.get(1<<20) != nil {
		t.Fatal("an ID never handed out found an object")
	}
}

// TestPollableDup: the ring's descriptor goes into Go's netpoller; a
// descriptor the netpoller refuses (a regular file) is an error, not a
// watcher that never wakes.
func TestPollableDup(t *testing.T) {
	d := newDriver(t, UringParams{})
	f, err := pollableDup(d.ring.Fd(), "io_uring")
	if err != nil {
		t.Fatalf("ring descriptor: %v", err)
	}
	f.Close()
	reg, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if f, err := pollableDup(int(reg.Fd()), "regular file"); err == nil {
		f.Close()
		t.Fatal("a regular file's descriptor was taken as pollable")
	}
}

// TestUringPeerGoneUnarmed: PeerGone sees the peer's close on a conn with
// no multishot receive running (never read here; after a one-shot
// receive when the buffer ring ran dry, too), and not before it.
func TestUringPeerGoneUnarmed(t *testing.T) {
	d := newDriver(t, UringParams{})
	a, b := ringPair(t, d)
	pg := a.(interface{ PeerGone() bool })
	if pg.PeerGone() {
		t.Fatal("PeerGone before the peer closed")
	}
	b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !pg.PeerGone() {
		if time.Now().After(deadline) {
			t.Fatal("PeerGone still false 5 s after the peer closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
