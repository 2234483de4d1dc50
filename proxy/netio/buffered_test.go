package netio

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

func netPair(t *testing.T) (a, b net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// testBuffered checks Buffered on a, whose peer is b: it counts what
// arrived and a Read has not taken, across several sends.
func testBuffered(t *testing.T, a, b net.Conn) {
	t.Helper()
	// A first exchange: the io_uring conn's receive is armed by its
	// first Read, and counts what arrives from then on.
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(a, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if n := Buffered(a); n != 0 {
		t.Fatalf("Buffered = %d with nothing sent since the last read", n)
	}
	want := 0
	for _, size := range []int{3000, 1, 20000} {
		if _, err := b.Write(bytes.Repeat([]byte("x"), size)); err != nil {
			t.Fatal(err)
		}
		want += size
		waitBuffered(t, a, want)
	}
	if _, err := io.ReadFull(a, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	want -= 1000
	if n := Buffered(a); n != want {
		t.Fatalf("Buffered = %d after a read of 1000, want %d", n, want)
	}
	if _, err := io.ReadFull(a, make([]byte, want)); err != nil {
		t.Fatal(err)
	}
	if n := Buffered(a); n != 0 {
		t.Fatalf("Buffered = %d after everything was read", n)
	}
}

// waitBuffered waits until Buffered(c) is want: bytes sent on loopback
// reach the receiving socket (and its ring) a moment later.
func waitBuffered(t *testing.T, c net.Conn, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n := Buffered(c); n != want; n = Buffered(c) {
		if n > want || time.Now().After(deadline) {
			t.Fatalf("Buffered = %d, want %d", n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBufferedTCP(t *testing.T) {
	a, b := netPair(t)
	testBuffered(t, a, b)
	if n := Buffered(struct{ net.Conn }{a}); n != 0 {
		t.Fatalf("Buffered = %d on a conn that cannot tell", n)
	}
}
