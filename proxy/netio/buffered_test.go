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

// testPeek checks Peek on a, whose peer is b: before a's first Read (the
// io_uring conn's receive not armed yet), across a partly read buffer and
// queued ones, while a Write of a's is blocked, and after EOF.
func testPeek(t *testing.T, a, b net.Conn) {
	t.Helper()
	p := make([]byte, 8)
	if n, ok := Peek(a, p); !ok || n != 0 {
		t.Fatalf("Peek = %d, %v with nothing sent", n, ok)
	}
	if _, err := b.Write([]byte("HTTP/1.1 413")); err != nil {
		t.Fatal(err)
	}
	waitPeek(t, a, "HTTP/1.1")
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(a, make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte(" Content")); err != nil {
		t.Fatal(err)
	}
	waitPeek(t, a, "413 Cont") // the rest of one buffer, then another
	// A Write blocked on a peer that does not read does not stop Peek.
	done := make(chan error, 1)
	go func() {
		a.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := a.Write(make([]byte, 64<<20))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	waitPeek(t, a, "413 Cont")
	a.SetWriteDeadline(time.Unix(1, 0))
	if err := <-done; err == nil {
		t.Fatal("a 64 MiB write to a peer that reads nothing did not fail at its deadline")
	}
	if _, err := io.ReadFull(a, make([]byte, 11)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	time.Sleep(20 * time.Millisecond)
	if n, ok := Peek(a, p); !ok || n != 0 {
		t.Fatalf("Peek = %d, %v after EOF", n, ok)
	}
	if n, ok := Peek(struct{ net.Conn }{a}, p); ok || n != 0 {
		t.Fatalf("Peek = %d, %v on a conn that cannot tell", n, ok)
	}
}

// waitPeek waits until Peek(c) sees want.
func waitPeek(t *testing.T, c net.Conn, want string) {
	t.Helper()
	p := make([]byte, len(want))
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, _ := Peek(c, p)
		if string(p[:n]) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Peek saw %q, want %q", p[:n], want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPeekTCP(t *testing.T) {
	a, b := netPair(t)
	testPeek(t, a, b)
}

func TestBufferedTCP(t *testing.T) {
	a, b := netPair(t)
	testBuffered(t, a, b)
	if n := Buffered(struct{ net.Conn }{a}); n != 0 {
		t.Fatalf("Buffered = %d on a conn that cannot tell", n)
	}
}
