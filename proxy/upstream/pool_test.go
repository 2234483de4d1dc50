package upstream

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/monolake-go/monolake/proxy/porttest"
)

func listener(t *testing.T) (net.Listener, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return ln, accepted
}

func TestReuseAndStale(t *testing.T) {
	ln, accepted := listener(t)
	p := NewPool(PoolConfig{})
	defer p.Close()
	k := Key{"tcp", ln.Addr().String()}
	ctx := context.Background()

	c1, reused, err := p.Get(ctx, k)
	if err != nil || reused {
		t.Fatalf("first Get: %v reused=%v", err, reused)
	}
	s1 := <-accepted
	p.Put(k, c1)
	c2, reused, err := p.Get(ctx, k)
	if err != nil || !reused || c2 != c1 {
		t.Fatalf("idle connection not reused: %v reused=%v", err, reused)
	}
	p.Put(k, c2)

	// The upstream closes the idle connection: Get must not hand it out.
	s1.Close()
	time.Sleep(checkAfter + 50*time.Millisecond) // past the no-peek window
	c3, reused, err := p.Get(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if reused || c3 == c1 {
		t.Fatal("a connection the upstream closed was handed out")
	}
	<-accepted
	c3.Close()
}

func TestUnexpectedBytesMeanStale(t *testing.T) {
	ln, accepted := listener(t)
	p := NewPool(PoolConfig{})
	defer p.Close()
	k := Key{"tcp", ln.Addr().String()}
	c, _, err := p.Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	p.Put(k, c)
	s.Write([]byte("HTTP/1.1 408 Request Timeout\r\n\r\n"))
	time.Sleep(checkAfter + 50*time.Millisecond)
	if c2, reused, _ := p.Get(context.Background(), k); reused {
		t.Fatal("connection with unread bytes reused")
	} else {
		c2.Close()
	}
}

// fill dials n connections to a new listener through p and puts them back
// (the pool keeps up to its cap); it returns their key.
func fill(t *testing.T, p *Pool, n int) Key {
	t.Helper()
	ln, _ := listener(t)
	k := Key{"tcp", ln.Addr().String()}
	var conns []net.Conn
	for range n {
		c, _, err := p.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		p.Put(k, c)
	}
	return k
}

func TestIdleCapAndTimeout(t *testing.T) {
	p := NewPool(PoolConfig{MaxIdlePerHost: 2, IdleTimeout: 100 * time.Millisecond})
	defer p.Close()
	k := fill(t, p, 3)
	if n := p.Idle(k); n != 2 {
		t.Fatalf("idle cap 2, have %d", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Idle(k) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle connections not reaped after the idle timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDialRefused(t *testing.T) {
	addr := porttest.Free(t)
	p := NewPool(PoolConfig{})
	defer p.Close()
	if _, _, err := p.Get(context.Background(), Key{"tcp", addr}); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	p.Close()
	if _, _, err := p.Get(context.Background(), Key{"tcp", addr}); err != ErrClosed {
		t.Fatalf("Get on closed pool: %v", err)
	}
}

// TestHandedOutNotHeld: the pool keeps no reference to a connection it
// handed out, so one the caller closed (all of them, after an upstream
// restart) is garbage, buffers and all.
func TestHandedOutNotHeld(t *testing.T) {
	p := NewPool(PoolConfig{})
	defer p.Close()
	k := fill(t, p, 4)
	var gone []weak.Pointer[net.TCPConn]
	for range 4 {
		c, reused, err := p.Get(context.Background(), k)
		if err != nil || !reused {
			t.Fatalf("Get: %v reused=%v", err, reused)
		}
		gone = append(gone, weak.Make(c.(*net.TCPConn)))
		c.Close()
	}
	for range 3 {
		runtime.GC()
	}
	for i, w := range gone {
		if w.Value() != nil {
			t.Errorf("connection %d, handed out and closed, is still referenced by the pool", i)
		}
	}
}
