package netio

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReusePortTwoListeners(t *testing.T) {
	a, err := ListenTCP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ListenTCP(context.Background(), a.Addr().String())
	if err != nil {
		t.Fatalf("second SO_REUSEPORT bind of %s failed: %v", a.Addr(), err)
	}
	defer b.Close()
	// A plain bind of the same address must fail: the option is what lets
	// the workers share it.
	if c, err := net.Listen("tcp", a.Addr().String()); err == nil {
		c.Close()
		t.Fatal("plain bind succeeded on a SO_REUSEPORT address")
	}
}

// TestListenTCPAcceptedOptions: the epoll driver's accepted sockets have
// TCP_NODELAY and no SO_KEEPALIVE, as the io_uring driver's (see
// TestUringAcceptedAddrs): package net's default would turn keep-alive
// probes on, with four setsockopt(2) calls per connection.
func TestListenTCPAcceptedOptions(t *testing.T) {
	ln, err := Epoll().Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, sc := dialAccept(t, ln, ln.Addr().String())
	rc, err := sc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var nodelay, keepalive int
	var err1, err2 error
	rc.Control(func(fd uintptr) {
		nodelay, err1 = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
		keepalive, err2 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if nodelay == 0 {
		t.Error("accepted socket without TCP_NODELAY")
	}
	if keepalive != 0 {
		t.Error("accepted socket with SO_KEEPALIVE")
	}
}

// dialAccept dials addr over TCP and takes the connection from ln; both
// ends are closed when the test ends.
func dialAccept(t *testing.T, ln net.Listener, addr string) (client, accepted net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return c, sc
}

func TestUnixStaleAndLive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(path); err == nil {
		t.Fatal("second listener on a live socket path accepted")
	}
	// Leave a stale socket file behind, as a killed process would.
	ln.SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := ListenUnix(path)
	if err != nil {
		t.Fatalf("stale socket file not replaced: %v", err)
	}
	defer ln2.Close()
	go func() {
		c, err := ln2.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	if string(got) != "hi" {
		t.Fatalf("got %q", got)
	}
}

func TestFileRoundTrip(t *testing.T) {
	ln, err := ListenTCP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := File(ln)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	ln2, err := FromFile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go func() {
		if c, err := ln2.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln2.Addr().String())
	if err != nil {
		t.Fatalf("inherited listener does not accept: %v", err)
	}
	c.Close()
}

// TestFileKeepsNonblocking: handing File's copy to a child (os/exec calls
// its Fd) leaves the shared socket non-blocking. With the listener's own
// File method it turned blocking, and a worker on the epoll runtime then
// slept in accept(2) and could not close its listener to drain.
func TestFileKeepsNonblocking(t *testing.T) {
	ln, err := ListenUnix(filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := File(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Fd() // what exec.Cmd.Start does with ExtraFiles
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("the listener's socket turned blocking once its file was handed out")
	}
}

// TestUnixCloseKeepsAnotherSocket: a listener whose socket file was
// replaced (taken for stale by another process) does not remove the new
// file when it closes.
func TestUnixCloseKeepsAnotherSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	old, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path) // as a process that took it for stale would, then bind
	cur, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	old.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the new listener's socket file is gone: %v", err)
	}
	c.Close()
	cur.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("own socket file left after Close: %v", err)
	}
}

// TestUnixStaleRace: two processes starting at once on a stale socket
// file must not both take it for stale. Without serialising, the second
// removes the first's fresh socket and binds its own, and the first then
// listens on a socket no path reaches.
func TestUnixStaleRace(t *testing.T) {
	dir := t.TempDir()
	for round := range 200 {
		path := filepath.Join(dir, "s.sock")
		stale, err := ListenUnix(path)
		if err != nil {
			t.Fatal(err)
		}
		stale.SetUnlinkOnClose(false)
		stale.Close()
		var lns [2]*UnixListener
		var errs [2]error
		done := make(chan int)
		for i := range 2 {
			go func() { lns[i], errs[i] = ListenUnix(path); done <- i }()
		}
		<-done
		<-done
		won := 0
		for i := range lns {
			if errs[i] == nil {
				won++
			}
		}
		if won != 1 {
			for _, ln := range lns {
				if ln != nil {
					ln.Close()
				}
			}
			t.Fatalf("round %d: %d of 2 listeners bound the stale path (errors %v)", round, won, errs)
		}
		for i, ln := range lns {
			if ln == nil {
				continue
			}
			// Accept in a loop: the loser's probe may sit in the backlog.
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Write([]byte{byte('0' + i)})
					c.Close()
				}
			}()
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("round %d: the path reaches no listener: %v", round, err)
			}
			b, _ := io.ReadAll(c)
			c.Close()
			if string(b) != string(rune('0'+i)) {
				t.Fatalf("round %d: the path reaches %q, not the listener that bound it (%d)", round, b, i)
			}
			ln.Close()
		}
	}
}

// TestUnixCloseAfterChmod: a socket file whose mode was changed after
// start (to let another group in) is still the listener's own, and goes
// with it.
func TestUnixCloseAfterChmod(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close, once chmod'ed: %v", err)
	}
}
