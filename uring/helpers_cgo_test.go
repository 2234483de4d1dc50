//go:build uring && cgo

package uring

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// strictEnv, set by make test's cgo runs, makes a test fail where it would
// skip for want of io_uring: CI must run these tests, not skip them.
const strictEnv = "MONOLAKE_TEST_STRICT"

// missing skips t for a missing facility, or fails it under strictEnv.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(strictEnv) != "" {
		t.Fatalf(format+" (%s is set: this run must have it)", append(args, strictEnv)...)
	}
	t.Skipf(format, args...)
}

// newRing sets up a ring for a test, skipping with the reason when io_uring
// cannot be used here.
func newRing(t testing.TB, p Params) *Ring {
	t.Helper()
	if err := Check(); err != nil {
		missing(t, "io_uring unusable: %v", err)
	}
	r, err := New(p)
	if err != nil {
		t.Fatalf("New(%+v): %v", p, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// collect enters the ring until done says it has seen enough, failing the
// test after 5 seconds. It returns every CQE seen (copied).
func collect(t testing.TB, r *Ring, done func(all []CQE) bool) []CQE {
	t.Helper()
	var all []CQE
	deadline := time.Now().Add(5 * time.Second)
	for !done(all) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out with %d CQEs: %+v", len(all), all)
		}
		cqes, err := r.Enter(1, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("Enter: %v", err)
		}
		all = append(all, cqes...)
	}
	return all
}

// collectN collects until n CQEs have arrived.
func collectN(t testing.TB, r *Ring, n int) []CQE {
	t.Helper()
	return collect(t, r, func(all []CQE) bool { return len(all) >= n })
}

func byUD(cqes []CQE) map[uint64][]CQE {
	m := make(map[uint64][]CQE)
	for _, c := range cqes {
		m[c.UserData] = append(m[c.UserData], c)
	}
	return m
}

func closeFd(t testing.TB, fd int) {
	t.Cleanup(func() { syscall.Close(fd) })
}

// socketpair returns a connected AF_UNIX stream pair, closed at cleanup.
func socketpair(t testing.TB) (a, b int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, fds[0])
	closeFd(t, fds[1])
	return fds[0], fds[1]
}

// listenTCP returns a blocking loopback listener socket and its port.
func listenTCP(t testing.TB) (fd, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 128); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*syscall.SockaddrInet4).Port
}

// tcpPair returns two connected blocking loopback TCP sockets.
func tcpPair(t testing.TB) (a, b int) {
	t.Helper()
	ln, port := listenTCP(t)
	a, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, a)
	if err := syscall.Connect(a, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	b, _, err = syscall.Accept4(ln, syscall.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	closeFd(t, b)
	return a, b
}

// alloc returns mmap'd memory freed at cleanup.
func alloc(t testing.TB, n int) []byte {
	t.Helper()
	b, err := Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Free(b) })
	return b[:n]
}

// readFull reads exactly n bytes from a blocking fd.
func readFull(fd int, n int) ([]byte, error) {
	buf := make([]byte, n)
	m, err := readInto(fd, buf)
	return buf[:m], err
}

// readInto fills buf from a blocking fd.
func readInto(fd int, buf []byte) (int, error) {
	off := 0
	for off < len(buf) {
		m, err := syscall.Read(fd, buf[off:])
		if err != nil {
			return off, err
		}
		if m == 0 {
			return off, errors.New("EOF")
		}
		off += m
	}
	return off, nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
