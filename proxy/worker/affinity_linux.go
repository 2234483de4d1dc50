package worker

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinProcess pins every thread of this process to cpu. Threads the Go
// runtime starts later inherit the mask from the thread that creates them,
// so pinning the existing ones pins the process for good; a thread created
// during the walk by one not pinned yet is caught by walking again until
// a walk finds every thread pinned.
func pinProcess(cpu int) error {
	var set unix.CPUSet
	set.Zero()
	set.Set(cpu)
	for range 10 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("worker: listing threads: %w", err)
		}
		changed := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if unix.SchedGetaffinity(tid, &cur) == nil && cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err == unix.ESRCH {
				continue // the thread has exited since the listing
			} else if err != nil {
				return fmt.Errorf("worker: pinning thread %d to CPU %d: %w", tid, cpu, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return fmt.Errorf("worker: pinning to CPU %d: threads kept starting unpinned", cpu)
}

// allowedCPUs lists the CPUs this process may run on, in order, so workers
// are pinned only to CPUs the master itself was given (taskset, cgroups).
func allowedCPUs() []int {
	cpus, _ := currentAffinity(0)
	return cpus
}

// currentAffinity returns the CPUs pid's main thread may run on.
func currentAffinity(pid int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &set); err != nil {
		return nil, err
	}
	var cpus []int
	for i := 0; i < 1024 && len(cpus) < set.Count(); i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}
