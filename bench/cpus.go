package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// AllowedCPUs returns the CPUs this process may run on, in order.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("bench: reading CPU affinity: %w", err)
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// SplitCPUs divides the CPUs between the proxy under test and the load side
// (load generator and origin). The proxy's pool starts at the first CPU and
// a proxy with w workers gets the first w of it; the load side gets the last
// CPUs not needed by maxWorkers, at least one. On two CPUs that is the proxy
// on CPU 0 and the load side on CPU 1; with two workers there the proxy
// shares CPU 1 with the load side, and the report says so.
func SplitCPUs(cpus []int, maxWorkers int) (proxy, load []int) {
	n := len(cpus)
	switch {
	case n == 0:
		return nil, nil
	case n == 1:
		return cpus, cpus
	}
	nLoad := n - maxWorkers
	if nLoad < 1 {
		nLoad = max(1, n/4)
	}
	return cpus, cpus[n-nLoad:]
}

// ProxyCPUs returns the CPUs of a proxy with w workers (0 meaning a single
// process) from the pool.
func ProxyCPUs(pool []int, w int) []int {
	return pool[:min(max(w, 1), len(pool))]
}

// Overlaps reports whether two CPU lists share a CPU.
func Overlaps(a, b []int) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// FormatCPUs returns a CPU list as taskset takes it: "0,1,3".
func FormatCPUs(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// ParseCPUs reads a list such as "0-3,6".
func ParseCPUs(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bench: CPU list %q: bad CPU %q", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bench: CPU list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: empty CPU list %q", s)
	}
	return out, nil
}

// HeadlineWorkers returns the worker count the overview reports: the
// largest whose proxy CPUs are not shared with the load side, or the
// smallest when all of them share.
func HeadlineWorkers(ws, pool, load []int) int {
	best := -1
	for _, w := range ws {
		if !Overlaps(ProxyCPUs(pool, w), load) && w > best {
			best = w
		}
	}
	if best < 0 {
		return slices.Min(ws)
	}
	return best
}
