package balance

import (
	"sync"
	"sync/atomic"
	"time"
)

// HealthPolicy says when failures take an item out of the balancer's
// choice, as nginx's max_fails and fail_timeout do: MaxFails failures, none
// further apart than FailTimeout from the one before, mark the item down
// for FailTimeout. A success forgets the failures only once FailTimeout has
// passed since the last (an item failing every other request still goes
// down, and a success on a connection opened before the fall does not lift
// it). Once the time is up the item is tried again: one failure more marks
// it down again, a success restores it. A failure while down extends the
// time. MaxFails 0 turns the checks off.
type HealthPolicy struct {
	MaxFails    int
	FailTimeout time.Duration
}

// NewHealthPolicy is the policy for a balancer of n items: off for one
// item, which has no other to turn to (nginx's rule too).
func NewHealthPolicy(maxFails int, failTimeout time.Duration, n int) HealthPolicy {
	if n < 2 {
		maxFails = 0
	}
	return HealthPolicy{MaxFails: maxFails, FailTimeout: failTimeout}
}

// Health is an item's passive health under a HealthPolicy: the failures
// and successes its users report. The zero value is an item up. A Health
// is safe for concurrent use; Down, asked on every pick, is one atomic
// load while the item is up.
type Health struct {
	downUntil atomic.Int64 // nanoseconds on clock; 0 while up
	fails     atomic.Int64 // written under mu, read without by Succeeded

	mu       sync.Mutex
	lastFail int64
}

// epoch makes clock monotonic: time.Since reads the monotonic clock.
var epoch = time.Now()

// clock is the time in nanoseconds, never 0; a variable for tests.
var clock = func() int64 { return int64(time.Since(epoch)) + 1 }

// Down reports whether the item is marked down now.
func (h *Health) Down() bool {
	d := h.downUntil.Load()
	return d != 0 && clock() < d
}

// Failed records a failure under p. It reports whether this failure marked
// the item down (for a log line: once per fall, not per request).
func (p HealthPolicy) Failed(h *Health) bool {
	if p.MaxFails <= 0 {
		return false
	}
	now := clock()
	h.mu.Lock()
	defer h.mu.Unlock()
	fails := h.fails.Load()
	if fails < int64(p.MaxFails) && now-h.lastFail > int64(p.FailTimeout) {
		fails = 0 // the earlier failures are too old to count
	}
	fails++
	h.fails.Store(fails)
	h.lastFail = now
	if fails < int64(p.MaxFails) {
		return false
	}
	wasDown := h.Down()
	h.downUntil.Store(now + int64(p.FailTimeout))
	return !wasDown
}

// Succeeded records a success under p: once FailTimeout has passed since
// the last failure, the item is up and its failures forgotten.
func (p HealthPolicy) Succeeded(h *Health) {
	if h.fails.Load() == 0 {
		return // the common case: no lock, no write
	}
	now := clock()
	h.mu.Lock()
	if now-h.lastFail > int64(p.FailTimeout) {
		h.fails.Store(0)
		h.downUntil.Store(0)
	}
	h.mu.Unlock()
}
