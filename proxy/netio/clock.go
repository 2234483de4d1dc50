package netio

import (
	"sync/atomic"
	"time"
)

// Deadlines are kept on the monotonic clock, in nanoseconds since monoBase:
// reading it (time.Since of a time with a monotonic reading) is one clock
// read where time.Now is two, and converting a deadline made from
// time.Now (time.Time.Sub of two monotonic readings) is none.
var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) }

// monoOf returns t on that clock; at least 1, so that a deadline in the
// past is never 0, which means none. A t without a monotonic reading (from
// time.Unix, or through UTC, In, Round(0)) is taken as net.TCPConn takes
// it, relative to the wall clock now: measured against monoBase's wall
// reading it would move by every step of the system clock since start.
func monoOf(t time.Time) int64 {
	if t.Round(0) == t { // no monotonic reading
		return max(monoNow()+int64(time.Until(t)), 1)
	}
	return max(int64(t.Sub(monoBase)), 1)
}

// roundClock is the monotonic clock as the io_uring loops read it once per
// round, as nginx caches the time once per turn of its event loop. A
// proxied request renews half a dozen deadlines and timestamps; reading the
// clock for each was about 3 % of a worker's CPU.
//
// The reading serves only while a loop is running rounds (loops > 0). A
// goroutine then runs between two rounds of it, which the loop separates by
// a yield, so the reading is older than the true time by at most the time
// other goroutines ran since the loop last entered the ring. A deadline set
// from it falls due that much early: microseconds at load, and bounded by
// the scheduler's 10 ms preemption, against timeouts of seconds. An idle
// loop does not count, and Now reads the clock.
var roundClock struct {
	loops atomic.Int32 // loops in a run of rounds (Uring.run)
	mono  atomic.Int64 // monoNow at the latest round of any of them
}

// tick records the time at a round; the reading only moves forward, as
// several drivers may tick at once.
func tick() {
	n := monoNow()
	for {
		o := roundClock.mono.Load()
		if n <= o || roundClock.mono.CompareAndSwap(o, n) {
			return
		}
	}
}

// roundMono is monoNow, or while a loop runs rounds the reading of its
// latest round.
func roundMono() int64 {
	if roundClock.loops.Load() > 0 {
		return roundClock.mono.Load()
	}
	return monoNow()
}

// Now returns the time for setting deadlines and measuring idle periods:
// while an io_uring loop is running rounds, the time of its latest round
// (see roundClock), without reading the clock; otherwise time.Now. Its
// monotonic reading is the one to use: its wall reading is the process's
// start plus the monotonic time since, which does not follow steps of the
// system clock, so it is no time to print or to send.
func Now() time.Time {
	if roundClock.loops.Load() > 0 {
		return monoBase.Add(time.Duration(roundClock.mono.Load()))
	}
	return time.Now()
}
