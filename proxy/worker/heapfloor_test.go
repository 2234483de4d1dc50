package worker

import (
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		floor, live, scan uint64
		want              int
	}{
		{16 * mib, 4 * mib, 0, 300},       // 4 + 4*3 = 16
		{16 * mib, 2 * mib, 2 * mib, 350}, // 2 + 4*3.5 = 16
		{16 * mib, 8 * mib, 0, 100},       // 8 + 8*1 = 16: the base
		{16 * mib, 12 * mib, 0, 100},      // above what the base gives: the base
		{16 * mib, 20 * mib, 0, 100},      // live above the floor
		{16 * mib, 0, 0, 400},             // empty: the runtime's minimum goal caps it
		{64 * mib, 1 * mib, 0, 1600},      // 4 MiB * 16 = 64 MiB
		{64 * mib, 5 * mib, 1 * mib, 983}, // 5 + 6*9.83 = 64
	} {
		if got := floorPercent(tt.floor, tt.live, tt.scan, 100); got != tt.want {
			t.Errorf("floorPercent(%d MiB, live %d, scan %d) = %d, want %d", tt.floor/mib, tt.live, tt.scan, got, tt.want)
		}
	}
}

// heapGoal is the pacer's current heap goal.
func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func gcState() (percent int, cycles uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64()), s[1].Value.Uint64()
}

// churn allocates n bytes of garbage in 32 KiB pieces and returns how many
// collections ran meanwhile.
func churn(n int) uint64 {
	_, before := gcState()
	for range n / (32 << 10) {
		sink = make([]byte, 32<<10)
	}
	_, after := gcState()
	return after - before
}

// waitPercent runs collections until the GC percent is want (the floor
// tunes in a finalizer, after a cycle) or a few seconds pass.
func waitPercent(t *testing.T, want func(int) bool, what string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, _ := gcState()
		if want(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("GC percent %d, want %s", p, what)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// inFreshProcess runs the calling test alone in a new process of the test
// binary and reports true there. The GC percent and the one floor a
// process may run are global: a worker run in-process by an earlier test
// (Run starts a floor) may still be stopping, and would skew the counts.
func inFreshProcess(t *testing.T) bool {
	t.Helper()
	if os.Getenv("MONOLAKE_HEAPFLOOR_TEST") == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "MONOLAKE_HEAPFLOOR_TEST="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in a process of its own:\n%s", out)
	if err != nil {
		t.Fatalf("%s failed: %v", t.Name(), err)
	}
	return false
}

// TestHeapFloor: with a floor, a small heap collects far less often; a live
// heap above the floor paces as GOGC=100; stop puts the percent back.
func TestHeapFloor(t *testing.T) {
	if !inFreshProcess(t) {
		return
	}
	if v, ok := os.LookupEnv("GOGC"); ok {
		t.Setenv("GOGC", v) // restored after the test
		os.Unsetenv("GOGC")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	const floor = 48 << 20
	plainGoal := heapGoal()

	stop := startHeapFloor(floor)
	defer stop()
	waitPercent(t, func(p int) bool { return p > 200 }, "above 200 with a small live heap")
	// A second floor in the process does nothing, and stopping it leaves
	// the first one's percent.
	p1, _ := gcState()
	startHeapFloor(floor)()
	if p2, _ := gcState(); p2 != p1 {
		t.Fatalf("a second floor's stop changed the percent from %d to %d", p1, p2)
	}
	// What the floor changes is the pacer's goal: the heap size at which
	// the next cycle ends. Setting the percent sets it at once, so it is
	// read, not inferred from a count of collections (those depend on how
	// much CPU the GC got: 4 for 256 MiB at GOGC=100 in one CI run, where
	// 64 is the count alone). tune skips changes under an eighth, and the
	// live heap moves a little between cycles: a quarter either way.
	goal := heapGoal()
	t.Logf("heap goal at GOGC=100: %d KiB; with a %d MiB floor: %d KiB (GC percent %d)", plainGoal>>10, floor>>20, goal>>10, p1)
	if goal < floor*3/4 || goal > floor*5/4 {
		t.Errorf("heap goal with a %d MiB floor: %d KiB, want within a quarter of the floor", floor>>20, goal>>10)
	}
	if goal < 8*plainGoal {
		t.Errorf("heap goal with the floor %d KiB, at GOGC=100 %d KiB: want 8 times or more", goal>>10, plainGoal>>10)
	}
	// And collections follow the goal: 1 GiB through a 48 MiB goal is
	// 21-22 cycles. A loaded CPU makes cycles longer, hence fewer, never
	// more, so only the upper bound is held.
	if n := churn(1 << 30); n > 48 {
		t.Errorf("%d collections for 1 GiB of garbage with a %d MiB floor, want at most 48", n, floor>>20)
	} else {
		t.Logf("%d collections for 1 GiB of garbage with the floor", n)
	}

	// A live heap above the floor: back to the base percent.
	live := make([][]byte, 0, 64)
	for range 64 {
		live = append(live, make([]byte, 1<<20))
	}
	waitPercent(t, func(p int) bool { return p == basePercent }, "the base with 64 MiB live")
	runtime.KeepAlive(live)
	live = nil

	debug.SetGCPercent(100) // what stop must restore is what start found
	stop()
	stop() // twice is harmless
	if p, _ := gcState(); p != 100 {
		t.Errorf("after stop: GC percent %d, want 100", p)
	}
	runtime.GC()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if p, _ := gcState(); p != 100 {
		t.Errorf("collections after stop changed the GC percent to %d", p)
	}
}

// TestHeapFloorRespectsGOGC: GOGC in the environment, or a floor of 0,
// leaves the percent alone.
func TestHeapFloorRespectsGOGC(t *testing.T) {
	if !inFreshProcess(t) {
		return
	}
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	t.Setenv("GOGC", "150")
	stop := startHeapFloor(48 << 20)
	runtime.GC()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if p, _ := gcState(); p != 150 {
		t.Errorf("GOGC=150 set: percent %d after start", p)
	}
	stop()
	os.Unsetenv("GOGC")
	stop = startHeapFloor(0)
	runtime.GC()
	if p, _ := gcState(); p != 150 {
		t.Errorf("floor 0: percent %d after start", p)
	}
	stop()
}
