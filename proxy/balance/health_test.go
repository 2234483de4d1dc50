package balance

import (
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	p := HealthPolicy{MaxFails: 2, FailTimeout: 50 * time.Millisecond}
	var h Health
	if p.Failed(&h) || h.Down() {
		t.Fatal("down after 1 of 2 failures")
	}
	if !p.Failed(&h) || !h.Down() {
		t.Fatal("up after 2 of 2 failures")
	}
	if p.Failed(&h) {
		t.Fatal("a failure while down reported as a new fall")
	}
	time.Sleep(60 * time.Millisecond)
	if h.Down() {
		t.Fatal("still down after fail_timeout")
	}
	// Back on trial: one failure more takes it down again.
	if !p.Failed(&h) || !h.Down() {
		t.Fatal("a failure on trial did not mark it down again")
	}
	h.Succeeded()
	if h.Down() {
		t.Fatal("down after a success")
	}
	// Failures further apart than fail_timeout do not add up.
	p.Failed(&h)
	time.Sleep(60 * time.Millisecond)
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
	if n := testing.AllocsPerRun(100, func() { h.Succeeded(); _ = h.Down() }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
