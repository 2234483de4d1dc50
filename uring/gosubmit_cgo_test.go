//go:build uring && cgo

package uring

import (
	"syscall"
	"testing"
	"time"
)

// TestGoPrepMatchesLiburing: for every operation the Go round prepares, the
// SQE it writes is byte for byte the one liburing's io_uring_prep_* helpers
// write (through mlk_prep); the rest are left to C.
func TestGoPrepMatchesLiburing(t *testing.T) {
	r := newRing(t, Params{Entries: 8})
	br, err := r.NewBufRing(3, 4, 4096)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	sa := &syscall.SockaddrInet4{Port: 80, Addr: [4]byte{127, 0, 0, 1}}
	tests := []struct {
		name  string
		queue func()
		inGo  bool
	}{
		{"nop", func() { r.Nop(7) }, true},
		{"accept", func() { r.Accept(7, 5, syscall.SOCK_CLOEXEC) }, true},
		{"accept-multishot", func() { r.AcceptMultishot(7, 5, syscall.SOCK_CLOEXEC) }, true},
		{"recv", func() { r.Recv(7, 5, buf, syscall.MSG_WAITALL) }, true},
		{"recv-multishot", func() { r.RecvMultishot(7, 5, br, 0) }, true},
		{"send", func() { r.Send(7, 5, buf, 0) }, true},
		{"sendmsg", func() { r.Sendmsg(7, 5, &syscall.Msghdr{}, syscall.MSG_WAITALL) }, true},
		{"send-zc", func() { r.SendZC(7, 5, buf, 0) }, true},
		{"send-zc-fixed", func() { r.SendZCFixed(7, 5, buf, 2, 0) }, true},
		{"poll-add", func() { r.PollAdd(7, 5, 0x4) }, true},
		{"close", func() { r.CloseFd(7, 5) }, true},
		{"shutdown", func() { r.Shutdown(7, 5, syscall.SHUT_WR) }, true},
		{"cancel", func() { r.Cancel(7, 99, false) }, true},
		{"cancel-all", func() { r.Cancel(7, 99, true) }, true},
		{"cancel-fd", func() { r.CancelFd(7, 5, true) }, true},
		{"connect", func() { r.Connect(7, 5, sa) }, false},
		{"splice", func() { r.Splice(7, 5, 6, 4096, 0) }, false},
		{"timeout", func() { r.Timeout(7, time.Second) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.queue()
			if r.Pending() != 1 {
				t.Fatalf("%d ops queued", r.Pending())
			}
			c, g, inGo := r.prepBoth()
			if inGo != tt.inGo {
				t.Fatalf("prepared in Go: %v, want %v", inGo, tt.inGo)
			}
			if inGo && c != g {
				t.Errorf("Go's SQE differs from liburing's:\n go       %+v\n liburing %+v", g, c)
			}
		})
	}
}

// TestGoRoundAndCFallback: a round of Go-prepared operations and one that
// needs C (a timeout) both complete, and the ring stays consistent when
// the two alternate.
func TestGoRoundAndCFallback(t *testing.T) {
	r := newRing(t, Params{Entries: 4})
	for round := range 20 {
		// More nops than SQ entries in some rounds: those go through C.
		n := 1 + round%6
		for i := range n {
			r.Nop(uint64(round*10 + i + 1))
		}
		if round%3 == 0 {
			r.Timeout(uint64(round*10+9), time.Microsecond)
			n++
		}
		seen := map[uint64]bool{}
		deadline := time.Now().Add(5 * time.Second)
		for len(seen) < n && time.Now().Before(deadline) {
			cqes, err := r.Enter(0, 0)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			for _, c := range cqes {
				if seen[c.UserData] {
					t.Fatalf("round %d: completion %d twice", round, c.UserData)
				}
				seen[c.UserData] = true
			}
		}
		if len(seen) != n || r.Pending() != 0 {
			t.Fatalf("round %d: %d of %d completions, %d still queued", round, len(seen), n, r.Pending())
		}
	}
	// The cgo call only for the rounds with a timeout (7) or more nops than
	// the 4 SQ entries (6 with 5 or 6), at most once each.
	if s := r.Stats(); s.CRounds == 0 || s.CRounds > 13 || s.CRounds >= s.Enters {
		t.Errorf("Stats() = %+v: want 1 to 13 C rounds", s)
	}
}
