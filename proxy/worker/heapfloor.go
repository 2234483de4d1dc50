package worker

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// A floor under the collector's heap goal.
//
// Go's collector starts a cycle when the heap has grown by GOGC percent
// (100) of what the last cycle found live. A worker's live heap is small,
// a few MiB while it serves thousands of requests a second, and its
// garbage per new connection is not: a TLS handshake in crypto/tls leaves
// about 45 KiB. So a worker taking new TLS connections collects twenty
// times a second or more, and each cycle shrinks the stacks of the
// goroutines it finds, which they grow again. Keep-alive traffic allocates
// next to nothing and is not affected.
//
// heapFloor keeps the heap goal at least floor bytes: after each cycle it
// sets GOGC so that the live heap plus its growth reaches the floor, and
// never below the base percent (Go's default when GOGC is unset), so a
// worker whose live heap is above the floor paces as Go would. Memory the
// floor lets the heap reach is given back when traffic stops
// (releaseWhenIdle). GOGC in the environment turns the floor off: the
// operator chose.
//
// Measured on the profiling rig (crypto/tls, Connection: close, one pinned
// worker, 10 interleaved rounds): handshakes per CPU-second x1.13 with a
// 16 MiB floor, x1.11 with 32 MiB, x1.01 with 64 MiB (three times the page
// faults of 16 MiB: each cycle runs through more fresh memory). OpenSSL
// allocates little on the Go heap and is unchanged.

const (
	basePercent = 100
	// heapMinimum is the runtime's smallest heap goal at GOGC=100; it
	// scales with GOGC (runtime/mgcpacer.go, defaultHeapMinimum).
	heapMinimum = 4 << 20
)

// floorPercent is the GOGC that gives a heap goal of floor, for a cycle that
// found live heap bytes and scan bytes of stacks and globals (the goal is
// live + (live+scan)*GOGC/100), never below base. Nor above the percent at
// which the runtime's own minimum goal, heapMinimum*GOGC/100, passes the
// floor: a nearly empty heap would otherwise get a goal of gigabytes.
func floorPercent(floor, live, scan uint64, base int) int {
	if live >= floor {
		return base
	}
	p := min((floor-live)*100/max(live+scan, 1), floor*100/heapMinimum)
	return max(int(p), base)
}

// startHeapFloor keeps the heap goal at least floor bytes until the returned
// function is called, which puts the GC percent back. A floor of 0, or GOGC
// set in the environment, leaves the collector alone.
func startHeapFloor(floor uint64) func() {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	// One floor per process: a second one would save the first's percent
	// as the one to restore.
	if !floorRunning.CompareAndSwap(false, true) {
		return func() {}
	}
	f := &heapFloor{
		floor: floor,
		samples: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/stack:bytes"},
			{Name: "/gc/scan/globals:bytes"},
		},
	}
	f.prev = debug.SetGCPercent(basePercent)
	f.set = basePercent
	f.tune()
	f.arm()
	return f.stop
}

// floorRunning is set while a floor runs in this process.
var floorRunning atomic.Bool

type heapFloor struct {
	floor   uint64
	prev    int // GOGC before the floor, restored by stop
	samples []metrics.Sample

	mu      sync.Mutex // serializes tune and stop
	set     int        // the percent last set
	stopped bool
}

// arm puts a finalizer on a fresh object: it runs once a collection finds
// the object garbage, that is about once per cycle, and arms the next.
func (f *heapFloor) arm() {
	// 16 bytes: the tiny allocator packs smaller pointer-free objects
	// together, and one of those may never be freed on its own.
	s := new([16]byte)
	runtime.SetFinalizer(s, func(*[16]byte) {
		if f.tune() {
			f.arm()
		}
	})
}

// tune sets the percent for the live heap the last cycle found. It skips
// changes under an eighth, so a steady heap does not reset the pacer's
// goal at every cycle. It reports false once the floor is stopped.
func (f *heapFloor) tune() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.samples)
	var v [3]uint64
	for i, s := range f.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return true // unknown metric: leave the percent as it is
		}
		v[i] = s.Value.Uint64()
	}
	p := floorPercent(f.floor, v[0], v[1]+v[2], basePercent)
	if d := p - f.set; d != 0 && (p == basePercent || d >= f.set/8 || -d >= f.set/8) {
		debug.SetGCPercent(p)
		f.set = p
	}
	return true
}

func (f *heapFloor) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		debug.SetGCPercent(f.prev)
		floorRunning.Store(false)
	}
}
