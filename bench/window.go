package bench

import (
	"context"
	"time"
)

// The window of a measured run: the load, then a settle.
//
// Not all the work a run's traffic causes happens while the load
// generator runs. Monolake's workers give memory back once traffic stops
// (proxy/worker/idlemem.go checks every second and, after the first whole
// second with almost no allocation, runs debug.FreeOSMemory twice: 1 to 2 s
// after the load ends); a Go runtime finishes a collection; nginx closes
// connections. So every target alike is read a second time Settle after
// the load generator exits, and charged for what it did until then, rather
// than the next run's target (or nobody) paying for it.

// DefaultSettle is Options.Settle's default: longer than the 2 s within
// which Monolake's idle-memory release starts, with room for the release.
const DefaultSettle = 2500 * time.Millisecond

// cpuWindow holds snapshots of every process's times before a run's load,
// when the load ends, and after the settle.
type cpuWindow struct {
	before, end, after Snapshot
}

// watch takes the snapshots around load, which runs the load generator to
// its end, waiting settle after it. It returns ctx's error when ctx ends.
func watch(ctx context.Context, settle time.Duration, load func()) (cpuWindow, error) {
	var w cpuWindow
	var err error
	if w.before, err = TakeSnapshot(); err != nil {
		return w, err
	}
	load()
	if ctx.Err() != nil {
		return w, ctx.Err()
	}
	if w.end, err = TakeSnapshot(); err != nil {
		return w, err
	}
	if settle > 0 {
		select {
		case <-time.After(settle):
		case <-ctx.Done():
			return w, ctx.Err()
		}
	}
	w.after, err = TakeSnapshot()
	return w, err
}

// treeCPU returns the CPU time of root's process tree over the whole
// window (the load and the settle: what the run is charged) and over the
// load alone (what says how busy it was under load).
func (w cpuWindow) treeCPU(root int) (charged, load time.Duration, err error) {
	var before, end, after time.Duration
	if before, err = w.before.TreeCPU(root); err != nil {
		return 0, 0, err
	}
	if end, err = w.end.TreeCPU(root); err != nil {
		return 0, 0, err
	}
	if after, err = w.after.TreeCPU(root); err != nil {
		return 0, 0, err
	}
	return after - before, end - before, nil
}
