package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy"
)

// goid is the calling goroutine's id, from its stack's first line.
func goid() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	return string(f[1])
}

// workerGoroutines counts the goroutines running the pool's loop.
func workerGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "server.(*workers).work(")
}

// poolServer serves, on a loopback listener, a service that writes the id
// of the goroutine serving the connection, then waits for release (if not
// nil) and ends the connection.
func poolServer(t *testing.T, release <-chan struct{}, max int, timeout time.Duration) (*Server, string) {
	t.Helper()
	svc := proxy.ServiceFunc[net.Conn, struct{}](func(ctx context.Context, c net.Conn) (struct{}, error) {
		fmt.Fprintf(c, "%s\n", goid())
		if release != nil {
			<-release
		}
		return struct{}{}, c.Close()
	})
	srv := New(svc, nil)
	srv.workers.max, srv.workers.timeout = max, timeout
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

// servedBy dials addr and returns the id of the goroutine that served it.
func servedBy(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	id, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(id)
}

func (p *workers) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// TestWorkersReuseGoroutines: a connection that comes after another ended
// is served by the same goroutine, and Close ends the idle ones.
func TestWorkersReuseGoroutines(t *testing.T) {
	srv, addr := poolServer(t, nil, 0, 0)
	first := servedBy(t, addr)
	waitUntil(t, "the first connection's goroutine is idle", func() bool { return srv.workers.idleCount() == 1 })
	for range 3 {
		if id := servedBy(t, addr); id != first {
			t.Fatalf("served by goroutine %s, want %s, idle since the first connection", id, first)
		}
		waitUntil(t, "the goroutine is idle again", func() bool { return srv.workers.idleCount() == 1 })
	}
	srv.Close()
	waitUntil(t, "Close ended the pool's goroutines", func() bool { return workerGoroutines() == 0 })
}

// TestWorkersBounded: of a burst of connections served at once, at most
// the pool's maximum of goroutines stay, and those end once idle for its
// timeout.
func TestWorkersBounded(t *testing.T) {
	release := make(chan struct{})
	srv, addr := poolServer(t, release, 3, 300*time.Millisecond)
	ids := map[string]bool{}
	for range 6 {
		ids[servedBy(t, addr)] = true
	}
	if len(ids) != 6 {
		t.Fatalf("6 connections at once were served by %d goroutines", len(ids))
	}
	close(release)
	waitUntil(t, "the burst ended", func() bool { return srv.ActiveConns() == 0 && workerGoroutines() == 3 })
	if n := srv.workers.idleCount(); n != 3 {
		t.Fatalf("%d idle goroutines, want 3", n)
	}
	waitUntil(t, "the idle goroutines ended", func() bool { return workerGoroutines() == 0 })
	if n := srv.workers.idleCount(); n != 0 {
		t.Fatalf("%d idle goroutines after the timeout", n)
	}
	servedBy(t, addr) // and the pool still serves
}

// TestWorkersDetachedNotPooled: the goroutine of a connection its protocol
// detached ends rather than joining the pool.
func TestWorkersDetachedNotPooled(t *testing.T) {
	dones := make(chan func(), 1)
	svc := proxy.ServiceFunc[net.Conn, struct{}](func(ctx context.Context, c net.Conn) (struct{}, error) {
		done, ok := Detach(ctx, c)
		if !ok {
			t.Error("Detach failed")
			return struct{}{}, c.Close()
		}
		fmt.Fprintf(c, "detached\n")
		dones <- done
		return struct{}{}, nil
	})
	srv := New(svc, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	servedBy(t, ln.Addr().String())
	done := <-dones
	waitUntil(t, "the detaching goroutine ended", func() bool { return workerGoroutines() == 0 })
	if n := srv.workers.idleCount(); n != 0 {
		t.Fatalf("%d idle goroutines after a detached connection, want 0", n)
	}
	done()
	waitUntil(t, "the detached connection finished", func() bool { return srv.ActiveConns() == 0 })
}
