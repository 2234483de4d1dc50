package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ProcStat
	}{
		{
			name: "nginx worker",
			in:   "4242 (nginx) S 4241 4241 4241 0 -1 4194624 1093 0 0 0 1234 567 8 9 20 0 1 0 123456 12345678 1234 18446744073709551615 1 1 0 0 0 0 0 1073745920 402745863 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			want: ProcStat{PID: 4242, PPID: 4241, Comm: "nginx", State: 'S', Flags: 4194624, UTime: 1234, STime: 567, CUTime: 8, CSTime: 9},
		},
		{
			name: "comm with spaces and parens",
			in:   "17 (a) b (c)) R 1 17 17 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 1 1 1",
			want: ProcStat{PID: 17, PPID: 1, Comm: "a) b (c)", State: 'R', UTime: 10, STime: 20},
		},
		{
			name: "zombie",
			in:   "99 (monolake) Z 98 98 98 0 -1 0 0 0 0 0 3 4 5 6 20 0 1 0 1 0 0",
			want: ProcStat{PID: 99, PPID: 98, Comm: "monolake", State: 'Z', UTime: 3, STime: 4, CUTime: 5, CSTime: 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseStat = %+v, want %+v", got, tt.want)
			}
		})
	}
	bad := []string{
		"",
		"12 nginx S 1",
		"12 (nginx) S 1 2 3",
		"x (nginx) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4 20",
		"12 (nginx) S 1 1 1 0 -1 0 0 0 0 0 1 x 3 4 20",
		"12 (nginx) S 1 1 1 0 -1 0 0 0 0 0 1 2 -3 4 20",
		"12 (nginx) S 1 1 1 0 -1 x 0 0 0 0 1 2 3 4 20",
	}
	for _, in := range bad {
		if _, err := ParseStat([]byte(in)); err == nil {
			t.Errorf("ParseStat(%q) succeeded, want an error", in)
		}
	}
}

func TestProcStatCPU(t *testing.T) {
	s := ProcStat{UTime: 150, STime: 50, CUTime: 20, CSTime: 30}
	if got, want := s.CPU(), 2500*time.Millisecond; got != want {
		t.Errorf("CPU() = %v, want %v", got, want)
	}
}

func TestTree(t *testing.T) {
	stats := map[int]ProcStat{
		1:  {PID: 1, PPID: 0},
		10: {PID: 10, PPID: 1},  // root
		11: {PID: 11, PPID: 10}, // worker
		12: {PID: 12, PPID: 10}, // worker
		13: {PID: 13, PPID: 11}, // grandchild
		20: {PID: 20, PPID: 1},  // unrelated
	}
	got := map[int]bool{}
	for _, s := range Tree(stats, 10) {
		got[s.PID] = true
	}
	want := map[int]bool{10: true, 11: true, 12: true, 13: true}
	if len(got) != len(want) {
		t.Fatalf("Tree(10) = %v, want %v", got, want)
	}
	for pid := range want {
		if !got[pid] {
			t.Errorf("Tree(10) misses %d", pid)
		}
	}
	if len(Tree(stats, 99)) != 0 {
		t.Error("Tree of a missing root is not empty")
	}
}

// TestTreeCPUSelf reads the real /proc: the test process must find itself
// and have spent some CPU time after a busy loop.
func TestTreeCPUSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc:", err)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	cpu, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 {
		t.Errorf("TreeCPU(self) = %v after a busy loop (%d), want > 0", cpu, x)
	}
}

func TestKernelThread(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"14 (ksoftirqd/0) S 2 0 0 0 -1 69238848 0 0 0 0 10 2000 0 0 20 0 1 0 5", true},
		{"4242 (nginx) S 4241 4241 4241 0 -1 4194624 1093 0 0 0 1234 567 8 9 20 0 1 0 1", false},
	} {
		s, err := ParseStat([]byte(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if s.KernelThread() != tt.want {
			t.Errorf("%s: KernelThread() = %v, want %v", s.Comm, !tt.want, tt.want)
		}
	}
}

func TestParseCPUSteal(t *testing.T) {
	in := "cpu  100 20 30 4000 50 6 7 8 9 10\ncpu0 50 10 15 2000 25 3 3 4 4 5\ncpu1 50 10 15 2000 25 3 4 300 5 5\nintr 1 2 3\nctxt 5\n"
	got, err := ParseCPUSteal([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]time.Duration{0: 40 * time.Millisecond, 1: 3 * time.Second}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ParseCPUSteal = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "cpu 1 2 3 4 5 6 7 8 9\n", "cpu0 1 2 3 4 5 6 7\n", "cpu0 1 2 3 4 5 6 7 x\n", "cpux 1 2 3 4 5 6 7 8\n"} {
		if _, err := ParseCPUSteal([]byte(bad)); err == nil {
			t.Errorf("ParseCPUSteal(%q) succeeded", bad)
		}
	}
}
