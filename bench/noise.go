package bench

import (
	"fmt"
	"os"
	"time"
)

// What else ran during a measured window.
//
// The machine's busy time from /proc/stat less the measured processes' CPU
// time cannot give it: with tick-based accounting (no
// CONFIG_IRQ_TIME_ACCOUNTING, as on the suite's VM) a tick that lands in a
// softirq is charged to the interrupted process's utime or stime but counted
// under "softirq", not "system", in /proc/stat, so under loopback load the
// difference comes out negative. The suite adds up instead the CPU time of
// every process outside the measured ones, and reads the hypervisor's steal
// time of the CPUs the run used.

// Snapshot is the CPU accounting of the machine at one moment: every
// process's times and each CPU's steal time.
type Snapshot struct {
	Taken time.Time
	Procs map[int]ProcStat
	Steal map[int]time.Duration // by CPU number, since boot
}

// TakeSnapshot reads /proc/*/stat and /proc/stat.
func TakeSnapshot() (Snapshot, error) {
	s := Snapshot{Taken: time.Now()}
	var err error
	if s.Procs, err = readStats("/proc"); err != nil {
		return s, err
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, fmt.Errorf("bench: %w", err)
	}
	s.Steal, err = ParseCPUSteal(b)
	return s, err
}

// TreeCPU returns the CPU time of root and its descendants in s (see the
// function TreeCPU).
func (s Snapshot) TreeCPU(root int) (time.Duration, error) { return treeCPU(s.Procs, root) }

// StealBetween returns the steal time of cpus between two snapshots.
func StealBetween(before, after Snapshot, cpus []int) time.Duration {
	var total time.Duration
	seen := map[int]bool{}
	for _, c := range cpus {
		if seen[c] {
			continue
		}
		seen[c] = true
		if d := after.Steal[c] - before.Steal[c]; d > 0 {
			total += d
		}
	}
	return total
}

// OtherCPU returns the CPU time spent between two snapshots by processes
// other than the trees rooted at measured (the proxy under test, the
// origin) and self (the suite, whose reaped children are the load
// generator runs).
//
// Kernel threads are left out. Under loopback load most of their time is
// the measured traffic itself: ksoftirqd finishing the network softirqs the
// proxy, the client and the origin raised, kworkers and RCU callbacks
// freeing their sockets and buffers. Charging that as other work would mark
// the heaviest runs noisy for no outside cause; what another user runs
// shows up in that user's processes.
//
// A process present in both snapshots counts with the growth of its own
// and its reaped children's times; one that started in the window counts
// whole. A process that ended in the window took its whole lifetime into
// its reaper's children's times, of which only the part after the first
// snapshot is this window's: the part before is taken off again, at most
// what the reaper gained. Processes in other PID namespaces are not seen.
func OtherCPU(before, after Snapshot, self int, measured ...int) time.Duration {
	skip := map[int]bool{self: true}
	for _, root := range measured {
		for _, s := range Tree(before.Procs, root) {
			skip[s.PID] = true
		}
		for _, s := range Tree(after.Procs, root) {
			skip[s.PID] = true
		}
	}
	counted := func(pid int, s ProcStat) bool { return !skip[pid] && !s.KernelThread() }

	var total time.Duration
	for pid, a := range after.Procs {
		if !counted(pid, a) {
			continue
		}
		b, ok := before.Procs[pid]
		if !ok || a.Comm != b.Comm || a.CPU() < b.CPU() { // new in the window, or a reused pid
			total += a.CPU()
			continue
		}
		total += a.CPU() - b.CPU()
	}

	// Processes gone by the second snapshot: what they had at the first,
	// by the nearest ancestor still present (the reaper, unless they were
	// orphaned on the way).
	early := map[int]time.Duration{}
	for pid, b := range before.Procs {
		if _, ok := after.Procs[pid]; ok || !counted(pid, b) {
			continue
		}
		p := b.PPID
		for hops := 0; hops < len(before.Procs); hops++ {
			if _, ok := after.Procs[p]; ok {
				break
			}
			q, ok := before.Procs[p]
			if !ok {
				break
			}
			p = q.PPID
		}
		early[p] += b.CPU()
	}
	for pid, d := range early {
		a, okA := after.Procs[pid]
		b, okB := before.Procs[pid]
		if !okA || !okB || !counted(pid, a) {
			continue
		}
		gained := time.Duration(a.CUTime+a.CSTime) * clockTick
		if prev := time.Duration(b.CUTime+b.CSTime) * clockTick; gained > prev {
			gained -= prev
		} else {
			gained = 0
		}
		total -= min(d, gained)
	}
	return max(total, 0)
}

// NoisyShare is the share of a CPU, over a window, that other processes or
// the hypervisor's steal time may take before a run is marked noisy.
const NoisyShare = 0.2

// markNoise records what else ran in a window of the given length and
// marks the run noisy when either took more than NoisyShare of a CPU.
func (run *Run) markNoise(other, steal, window time.Duration) {
	run.OtherCPUSec, run.StealCPUSec = other.Seconds(), steal.Seconds()
	limit := NoisyShare * window.Seconds()
	run.Noisy = run.OtherCPUSec > limit || run.StealCPUSec > limit
}
