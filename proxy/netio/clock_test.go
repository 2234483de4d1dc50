package netio

import (
	"testing"
	"time"
)

// TestNowRoundClock: while a loop runs rounds, Now is the reading of the
// latest round and does not move between rounds; otherwise it is the clock.
func TestNowRoundClock(t *testing.T) {
	for i := 0; roundClock.loops.Load() != 0; i++ {
		if i == 100 {
			t.Fatalf("%d io_uring loops still running rounds", roundClock.loops.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	roundClock.loops.Add(1)
	tick()
	a := Now()
	time.Sleep(5 * time.Millisecond)
	b := Now()
	if !a.Equal(b) {
		t.Errorf("Now moved by %v with no round between", b.Sub(a))
	}
	if now := time.Now(); b.After(now) {
		t.Errorf("Now is %v ahead of the clock", b.Sub(now))
	}
	tick()
	if c := Now(); c.Sub(b) < 5*time.Millisecond {
		t.Errorf("the next round's Now is %v after the last, want at least 5ms", c.Sub(b))
	}
	roundClock.loops.Add(-1)
	before := time.Now()
	time.Sleep(time.Millisecond)
	if d := Now(); d.Sub(before) < time.Millisecond {
		t.Errorf("with no loop running, Now is %v after a reading 1ms before, want the clock", d.Sub(before))
	}
}

// TestMonoOfWallOnly: a deadline without a monotonic reading (time.Unix,
// UTC, Round(0)) is taken relative to the wall clock now, as net.TCPConn
// takes it; one with a reading converts exactly.
func TestMonoOfWallOnly(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		t    time.Time
	}{
		{"monotonic", now.Add(2 * time.Second)},
		{"UTC", now.UTC().Add(2 * time.Second)},
		{"Round(0)", now.Round(0).Add(2 * time.Second)},
		{"Unix", time.Unix(0, now.UnixNano()).Add(2 * time.Second)},
	} {
		want := int64(now.Add(2 * time.Second).Sub(monoBase))
		if d := time.Duration(monoOf(tc.t) - want).Abs(); d > 50*time.Millisecond {
			t.Errorf("%s: monoOf is %v off", tc.name, d)
		}
	}
	if got := monoOf(time.Unix(1, 0)); got != 1 {
		t.Errorf("monoOf(1970) = %d, want 1 (passed)", got)
	}
}
