package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of the times in /proc/PID/stat. It is 100
// on every Linux architecture Go supports; reading sysconf(_SC_CLK_TCK)
// would need cgo for no gain.
const clockTick = time.Second / 100

// ProcStat is the part of /proc/PID/stat the suite uses.
type ProcStat struct {
	PID, PPID int
	Comm      string
	State     byte
	Flags     uint64 // PF_* flags of the kernel's task_struct
	// Times in clock ticks: user and system time of the process (all its
	// threads), and of its waited-for children.
	UTime, STime, CUTime, CSTime uint64
}

// pfKThread is PF_KTHREAD in the flags of /proc/PID/stat.
const pfKThread = 0x00200000

// KernelThread reports whether the process is a kernel thread (kthreadd and
// its children: ksoftirqd, kworkers, RCU threads, …).
func (s ProcStat) KernelThread() bool { return s.Flags&pfKThread != 0 }

// CPU returns the process's user+system time including waited-for
// children.
func (s ProcStat) CPU() time.Duration {
	return time.Duration(s.UTime+s.STime+s.CUTime+s.CSTime) * clockTick
}

// ParseStat reads the contents of /proc/PID/stat. The command name may hold
// spaces and parentheses, so fields are counted from its last ')'.
func ParseStat(b []byte) (ProcStat, error) {
	var s ProcStat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return s, errors.New("bench: /proc stat: no command name")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return s, fmt.Errorf("bench: /proc stat pid: %w", err)
	}
	s.PID, s.Comm = pid, string(b[open+1:closing])
	// After ")": state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14)
	// stime(15) cutime(16) cstime(17) …
	f := bytes.Fields(b[closing+1:])
	if len(f) < 15 {
		return s, fmt.Errorf("bench: /proc stat: %d fields after the command name", len(f))
	}
	if len(f[0]) != 1 {
		return s, fmt.Errorf("bench: /proc stat state %q", f[0])
	}
	s.State = f[0][0]
	if s.PPID, err = strconv.Atoi(string(f[1])); err != nil {
		return s, fmt.Errorf("bench: /proc stat ppid: %w", err)
	}
	if s.Flags, err = strconv.ParseUint(string(f[6]), 10, 64); err != nil {
		return s, fmt.Errorf("bench: /proc stat flags: %w", err)
	}
	dst := []*uint64{&s.UTime, &s.STime, &s.CUTime, &s.CSTime}
	for i, p := range dst {
		// cutime and cstime are signed in the kernel's format; they are
		// never negative in practice.
		v, err := strconv.ParseInt(string(f[11+i]), 10, 64)
		if err != nil || v < 0 {
			return s, fmt.Errorf("bench: /proc stat field %d %q", 14+i, f[11+i])
		}
		*p = uint64(v)
	}
	return s, nil
}

// readStats reads /proc/*/stat of every process; processes that exit while
// it reads are skipped.
func readStats(proc string) (map[int]ProcStat, error) {
	paths, err := filepath.Glob(filepath.Join(proc, "[0-9]*", "stat"))
	if err != nil {
		return nil, err
	}
	m := make(map[int]ProcStat, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone
		}
		s, err := ParseStat(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		m[s.PID] = s
	}
	return m, nil
}

// Tree returns root and its descendants from a table of processes.
func Tree(stats map[int]ProcStat, root int) []ProcStat {
	children := make(map[int][]int)
	for pid, s := range stats {
		children[s.PPID] = append(children[s.PPID], pid)
	}
	var out []ProcStat
	queue := []int{root}
	seen := map[int]bool{}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		s, ok := stats[pid]
		if !ok || seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, s)
		queue = append(queue, children[pid]...)
	}
	return out
}

// TreeCPU returns the user+system time of root and all its descendants,
// including children they have already reaped. Sampled before and after a
// window, the difference is the CPU time the process tree spent in it.
func TreeCPU(root int) (time.Duration, error) {
	stats, err := readStats("/proc")
	if err != nil {
		return 0, err
	}
	return treeCPU(stats, root)
}

func treeCPU(stats map[int]ProcStat, root int) (time.Duration, error) {
	tree := Tree(stats, root)
	if len(tree) == 0 {
		return 0, fmt.Errorf("bench: process %d is gone", root)
	}
	var total time.Duration
	for _, s := range tree {
		total += s.CPU()
	}
	return total, nil
}

// TreePIDs returns the ids of root and all its descendants.
func TreePIDs(root int) []int {
	stats, err := readStats("/proc")
	if err != nil {
		return []int{root}
	}
	var pids []int
	for _, s := range Tree(stats, root) {
		pids = append(pids, s.PID)
	}
	return pids
}

// ParseCPUSteal reads the per-CPU lines of /proc/stat ("cpu0 …", "cpu1 …")
// and returns each CPU's steal time since boot: time the hypervisor ran
// something else while this guest had work for the CPU.
func ParseCPUSteal(b []byte) (map[int]time.Duration, error) {
	steal := map[int]time.Duration{}
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) == 0 || !bytes.HasPrefix(f[0], []byte("cpu")) || len(f[0]) == 3 {
			continue // not a CPU line, or the machine-wide one
		}
		cpu, err := strconv.Atoi(string(f[0][3:]))
		if err != nil {
			return nil, fmt.Errorf("bench: /proc/stat line %q", bytes.TrimSpace(line))
		}
		// cpuN user nice system idle iowait irq softirq steal …
		if len(f) < 9 {
			return nil, fmt.Errorf("bench: /proc/stat line %q has no steal field", bytes.TrimSpace(line))
		}
		v, err := strconv.ParseUint(string(f[8]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bench: /proc/stat %s steal: %w", f[0], err)
		}
		steal[cpu] = time.Duration(v) * clockTick
	}
	if len(steal) == 0 {
		return nil, errors.New("bench: /proc/stat: no per-CPU line")
	}
	return steal, nil
}
