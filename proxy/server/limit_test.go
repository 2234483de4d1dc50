package server_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/server"
)

// TestConnLimit: two servers sharing a limit of 2 serve two connections
// between them; a third is closed at once, counted and logged; once one
// ends, a new connection is served again.
func TestConnLimit(t *testing.T) {
	limit := server.NewConnLimit(2)
	g := newGated()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, b := server.New(g, log), server.New(g, log)
	a.SetConnLimit(limit)
	b.SetConnLimit(limit)
	addrA, _ := start(t, a)
	addrB, _ := start(t, b)

	c1 := dial(t, addrA)
	dial(t, addrB)
	wait(t, g.started, "the first connection")
	wait(t, g.started, "the second connection")
	if got := readLine(t, c1); got != "started" {
		t.Fatalf("first connection: %q", got)
	}
	over := dial(t, addrA)
	expectClosed(t, over)
	if limit.Refused() != 1 || limit.Open() != 2 {
		t.Errorf("refused %d, open %d; want 1 and 2", limit.Refused(), limit.Open())
	}
	if !strings.Contains(logs.String(), "max_connections reached") {
		t.Errorf("no warning logged: %q", logs.String())
	}

	c1.Close()
	g.release <- struct{}{} // one of the two ends
	for deadline := time.Now().Add(5 * time.Second); limit.Open() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open 5s after one ended", limit.Open())
		}
	}
	c3 := dial(t, addrB)
	wait(t, g.started, "a connection after one ended")
	if got := readLine(t, c3); got != "started" {
		t.Fatalf("connection after a slot freed: %q", got)
	}
	if server.NewConnLimit(0) != nil {
		t.Error("a limit of 0 is not nil (no limit)")
	}
}
