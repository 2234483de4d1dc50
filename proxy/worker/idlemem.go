package worker

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory given back when traffic stops.
//
// A Go worker keeps the garbage of a burst of traffic until its next
// collection, which an idle worker, allocating nothing, does not reach for
// two minutes (the runtime's forced collection); the stacks its connection
// goroutines grew while serving stay grown until a collection shrinks them.
// So a worker whose connections went idle after a burst holds a few KiB per
// connection more than it needs. releaseWhenIdle watches the allocation
// counter and, once a period passes with almost no allocation after at
// least releaseAfter bytes were allocated since the last release, runs
// debug.FreeOSMemory twice: a collection shrinks a goroutine stack by at
// most half, so the second finishes what the first started, and the free
// pages go back to the OS. Under steady traffic it never fires; a quiet
// worker pays two collections per burst.

const (
	idleCheckEvery = time.Second
	// idleAllocs is the most a period may allocate and count as quiet
	// (timers, health checks, a stray request).
	idleAllocs = 256 << 10
	// releaseAfter is the allocation since the last release below which a
	// quiet period releases nothing: a small burst leaves little to give.
	releaseAfter = 16 << 20
)

// releaseWhenIdle runs until ctx ends, checking every period; release is
// called when the worker went quiet (debug.FreeOSMemory in the workers).
func releaseWhenIdle(ctx context.Context, every time.Duration, quiet, after uint64, release func()) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 {
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[0].Value.Uint64()
	}
	last := read()
	released := last
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read()
		if now-last <= quiet && now-released >= after {
			release()
			now = read()
			released = now
		}
		last = now
	}
}

// startIdleRelease starts releaseWhenIdle with the workers' settings and
// returns its stop function.
func startIdleRelease() func() {
	ctx, cancel := context.WithCancel(context.Background())
	go releaseWhenIdle(ctx, idleCheckEvery, idleAllocs, releaseAfter, func() {
		debug.FreeOSMemory()
		debug.FreeOSMemory()
	})
	return cancel
}
