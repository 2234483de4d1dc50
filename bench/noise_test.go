package bench

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// procs builds a process table; each entry is pid, ppid, own ticks and
// reaped children's ticks.
func procs(rows ...[4]int) map[int]ProcStat {
	m := map[int]ProcStat{}
	for _, r := range rows {
		m[r[0]] = ProcStat{PID: r[0], PPID: r[1], Comm: "p", UTime: uint64(r[2]), CUTime: uint64(r[3])}
	}
	return m
}

func TestOtherCPU(t *testing.T) {
	const self, proxy, origin = 100, 200, 300
	measured := [][4]int{
		{self, 1, 50, 0},
		{proxy, self, 1000, 0}, {201, proxy, 5000, 0},
		{origin, self, 10, 0}, {301, origin, 3000, 0},
	}
	// The same table, the measured processes busy for 2 s each and the
	// suite having reaped a wrk run of 300 ticks.
	measuredAfter := [][4]int{
		{self, 1, 51, 300},
		{proxy, self, 1000, 0}, {201, proxy, 5200, 0},
		{origin, self, 10, 0}, {301, origin, 3200, 0},
	}
	snap := func(rows ...[4]int) Snapshot { return Snapshot{Procs: procs(rows...)} }
	kthread := func(s Snapshot, pid int) Snapshot {
		p := s.Procs[pid]
		p.Flags |= pfKThread
		s.Procs[pid] = p
		return s
	}
	tests := []struct {
		name          string
		before, after Snapshot
		want          time.Duration // in ticks
	}{
		{"nothing else ran", snap(measured...), snap(measuredAfter...), 0},
		{
			"an idle proxy of the same group collecting",
			snap(append(measured, [4]int{400, self, 700, 0})...),
			snap(append(measuredAfter, [4]int{400, self, 730, 0})...),
			30,
		},
		{
			"another user's build: a shell, a compiler that ran through, one that started",
			snap(append(measured, [4]int{500, 1, 10, 40}, [4]int{501, 500, 90, 0})...),
			snap(append(measuredAfter, [4]int{500, 1, 10, 40 + 150}, [4]int{502, 500, 25, 0})...),
			// 501 ran 60 ticks in the window (150 at its end, 90 of them
			// before); 502 ran 25.
			60 + 25,
		},
		{
			"a process and its child both gone, reaped by the grandparent",
			snap(append(measured, [4]int{600, 1, 0, 0}, [4]int{601, 600, 100, 0}, [4]int{602, 601, 200, 0})...),
			snap(append(measuredAfter, [4]int{600, 1, 0, 100 + 10 + 200 + 20})...),
			30,
		},
		{
			"a process gone whose reaper is not seen",
			snap(append(measured, [4]int{700, 999, 500, 0}, [4]int{800, 1, 0, 0})...),
			snap(append(measuredAfter, [4]int{800, 1, 40, 0})...),
			40,
		},
		{
			"a kernel thread (ksoftirqd) carrying the run's softirqs",
			kthread(snap(append(measured, [4]int{14, 2, 1000, 0})...), 14),
			kthread(snap(append(measuredAfter, [4]int{14, 2, 1400, 0})...), 14),
			0,
		},
		{
			"a pid reused by a new process",
			snap(append(measured, [4]int{900, 1, 5000, 0})...),
			snap(append(measuredAfter, [4]int{900, 1, 80, 0})...),
			80,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := OtherCPU(tt.before, tt.after, self, proxy, origin)
			if want := tt.want * clockTick; got != want {
				t.Errorf("OtherCPU = %v, want %v", got, want)
			}
		})
	}
}

// TestOtherCPUSeesBusyProcess reads the real /proc: a busy process that is
// not one of the measured ones shows up as other CPU time.
func TestOtherCPUSeesBusyProcess(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc:", err)
	}
	before, err := TakeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	time.Sleep(300 * time.Millisecond)
	mid, err := TakeSnapshot()
	busy.Process.Kill()
	busy.Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Other users' processes may run too: compare with the busy process
	// counted as measured, which takes it (and only it) out.
	other := OtherCPU(before, mid, os.Getpid())
	measured := OtherCPU(before, mid, os.Getpid(), busy.Process.Pid)
	if other-measured < 100*time.Millisecond {
		t.Errorf("OtherCPU with a process busy for 300 ms = %v, and %v with it measured; want it to count at least 100ms", other, measured)
	}
}

func TestStealBetween(t *testing.T) {
	before := Snapshot{Steal: map[int]time.Duration{0: time.Second, 1: time.Second, 2: 0}}
	after := Snapshot{Steal: map[int]time.Duration{0: 1500 * time.Millisecond, 1: 1200 * time.Millisecond, 2: time.Hour}}
	if got, want := StealBetween(before, after, []int{0, 1, 1}), 700*time.Millisecond; got != want {
		t.Errorf("StealBetween(0, 1, 1) = %v, want %v (each CPU once, CPU 2 not asked for)", got, want)
	}
}

func TestMarkNoise(t *testing.T) {
	tests := []struct {
		name         string
		other, steal time.Duration
		want         bool
	}{
		{"quiet", 100 * time.Millisecond, 50 * time.Millisecond, false},
		{"other work", 1100 * time.Millisecond, 0, true},
		{"steal", 0, 1100 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var run Run
			run.markNoise(tt.other, tt.steal, 5*time.Second)
			if run.Noisy != tt.want || run.OtherCPUSec != tt.other.Seconds() || run.StealCPUSec != tt.steal.Seconds() {
				t.Errorf("markNoise(%v, %v, 5s) = %+v, want noisy %v", tt.other, tt.steal, run, tt.want)
			}
		})
	}
}
