package balance

import (
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of HealthPolicy, nginx's for max_fails and fail_timeout.
const (
	DefaultMaxFails    = 1
	DefaultFailTimeout = 10 * time.Second
)

// HealthPolicy says when failures take an item out of the balancer's
// choice, as nginx's max_fails and fail_timeout do: MaxFails failures, none
// further apart than FailTimeout from the one before, mark the item down
// for FailTimeout. Once that has passed the item is tried again, and one
// failure more (before a success) marks it down again. MaxFails 0 turns
// the checks off.
type HealthPolicy struct {
	MaxFails    int
	FailTimeout time.Duration
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

func clock() int64 { return int64(time.Since(epoch)) + 1 } // never 0

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
	if fails < int64(p.MaxFails) || h.Down() {
		return false
	}
	h.downUntil.Store(now + int64(p.FailTimeout))
	return true
}

// Succeeded records a success: the item is up, its failures forgotten.
func (h *Health) Succeeded() {
	if h.fails.Load() == 0 && h.downUntil.Load() == 0 {
		return // the common case: no write
	}
	h.mu.Lock()
	h.fails.Store(0)
	h.downUntil.Store(0)
	h.mu.Unlock()
}
