package balance

import (
	"testing"
	"time"
)

// fakeClock makes the health checks' clock one the test moves.
func fakeClock(t *testing.T) (sleep func(time.Duration)) {
	now := int64(1)
	saved := clock
	clock = func() int64 { return now }
	t.Cleanup(func() { clock = saved })
	return func(d time.Duration) { now += int64(d) }
}

func TestHealth(t *testing.T) {
	sleep := fakeClock(t)
	const ft = 10 * time.Second
	p := HealthPolicy{MaxFails: 2, FailTimeout: ft}
	var h Health
	if p.Failed(&h) || h.Down() {
		t.Fatal("down after 1 of 2 failures")
	}
	// A success within fail_timeout does not forget the failure: an item
	// failing every other request goes down.
	p.Succeeded(&h)
	if !p.Failed(&h) || !h.Down() {
		t.Fatal("up after 2 of 2 failures within fail_timeout, a success between")
	}
	// Nor does a success while down (a connection from before the fall)
	// lift it; a failure while down extends it, without a new fall.
	p.Succeeded(&h)
	if !h.Down() {
		t.Fatal("a success while down lifted it")
	}
	sleep(ft / 2)
	if p.Failed(&h) {
		t.Fatal("a failure while down reported as a new fall")
	}
	sleep(ft * 3 / 4)
	if !h.Down() {
		t.Fatal("a failure while down did not extend the time")
	}
	sleep(ft / 2)
	if h.Down() {
		t.Fatal("still down after fail_timeout")
	}
	// Back on trial: one failure more takes it down again.
	if !p.Failed(&h) || !h.Down() {
		t.Fatal("a failure on trial did not mark it down again")
	}
	sleep(ft + 1)
	p.Succeeded(&h) // a success on trial restores it
	if h.Down() {
		t.Fatal("down after a success on trial")
	}
	// Failures further apart than fail_timeout do not add up.
	p.Failed(&h)
	sleep(ft + 1)
	if p.Failed(&h) || h.Down() {
		t.Fatal("two failures a fail_timeout apart marked it down")
	}
	var off Health
	for range 5 {
		HealthPolicy{}.Failed(&off)
	}
	if off.Down() {
		t.Fatal("down with max_fails 0")
	}
}

func TestHealthSucceededAllocs(t *testing.T) {
	var h Health
	p := HealthPolicy{MaxFails: 1, FailTimeout: time.Second}
	if n := testing.AllocsPerRun(100, func() { p.Succeeded(&h); _ = h.Down() }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
