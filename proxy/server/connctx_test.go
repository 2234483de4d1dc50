package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/server"
)

// TestConnContextCallbacks: callbacks hung on a connection's context, with
// context.AfterFunc, a WithCancel child, server.AfterFunc and
// server.AfterDrain, run when the server drains (AfterDrain) and when it
// cancels the connection (the others), unless stopped first; a callback
// registered after the fact runs at once.
func TestConnContextCallbacks(t *testing.T) {
	var ran [8]atomic.Bool // by callback; 2, 4 and 6 are stopped
	mark := func(i int) func() { return func() { ran[i].Store(true) } }
	drained := make(chan struct{})
	ready := make(chan context.Context, 1)
	late := make(chan [2]bool, 1)
	srv := server.New(svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) {
		defer c.Close()
		if ctx.Err() != nil || server.Draining(ctx) == nil {
			t.Errorf("a connection's context at the start: Err %v, Draining %v", ctx.Err(), server.Draining(ctx))
		}
		context.AfterFunc(ctx, mark(1))
		if !context.AfterFunc(ctx, mark(2))() {
			t.Error("stop of context.AfterFunc reported false before the cancel")
		}
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		server.AfterFunc(ctx, mark(3))
		if !server.AfterFunc(ctx, mark(4))() {
			t.Error("stop of server.AfterFunc reported false before the cancel")
		}
		if _, ok := server.AfterDrain(ctx, func() { ran[5].Store(true); close(drained) }); !ok {
			t.Error("AfterDrain on a connection's context: not ok")
		}
		if stop, ok := server.AfterDrain(ctx, mark(6)); !ok || !stop() {
			t.Error("stop of AfterDrain reported false before the drain")
		}
		io.WriteString(c, "started\n")
		ready <- child
		<-ctx.Done()
		// Registered after the cancel and the drain: at once.
		ranAfter := make(chan struct{})
		stop := server.AfterFunc(ctx, func() { close(ranAfter) })
		drainAfter := make(chan struct{})
		stopD, _ := server.AfterDrain(ctx, func() { close(drainAfter) })
		wait(t, ranAfter, "server.AfterFunc registered after the cancel")
		wait(t, drainAfter, "AfterDrain registered after the drain")
		late <- [2]bool{stop(), stopD()}
		return struct{}{}, ctx.Err()
	}), nil)
	addr, served := start(t, srv)
	c := dial(t, addr)
	readLine(t, c)
	child := wait(t, ready, "the service")

	// A graceful Shutdown drains: AfterDrain's callback runs, the
	// connection's context stays live.
	shut := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { shut <- srv.Shutdown(ctx) }()
	wait(t, drained, "the AfterDrain callback")
	if ran[1].Load() || ran[3].Load() || child.Err() != nil {
		t.Fatal("a drain cancelled the connection's context")
	}
	// Shutdown's context ends: the connection is cancelled.
	cancel()
	if err := wait(t, shut, "Shutdown"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	if stops := wait(t, late, "the callbacks registered late"); stops[0] || stops[1] {
		t.Errorf("stop of a callback that ran: %v, want false", stops)
	}
	wait(t, served, "Serve")
	wait(t, srv.Drained(), "Drained")
	wait(t, child.Done(), "the child context")
	for _, i := range []int{1, 3} {
		for deadline := time.Now().Add(5 * time.Second); !ran[i].Load() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if !ran[i].Load() {
			t.Errorf("callback %d did not run", i)
		}
	}
	time.Sleep(20 * time.Millisecond) // a stopped callback that would run, would by now
	for _, i := range []int{2, 4, 6} {
		if ran[i].Load() {
			t.Errorf("callback %d ran after its stop", i)
		}
	}
}

// TestAfterDrainOutsideServer: AfterDrain on a context no Server gave
// arranges nothing; server.AfterFunc is context.AfterFunc.
func TestAfterDrainOutsideServer(t *testing.T) {
	if stop, ok := server.AfterDrain(context.Background(), func() { t.Error("ran") }); ok || stop != nil {
		t.Fatal("AfterDrain outside a Server: ok")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	server.AfterFunc(ctx, func() { close(ran) })
	cancel()
	wait(t, ran, "server.AfterFunc on a plain context")
}
