package bench

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testRuns() []Run {
	run := func(target string, w, rep int, rps, eff float64, status string, bound bool) Run {
		return Run{Case: "http1/c=50/body=1k", Proto: ProtoHTTP1, Conns: 50, Body: "1k", Target: target,
			Workers: w, Rep: rep, RPS: rps, ReqPerCPUSec: eff, P50Ms: 1, P99Ms: 2 * float64(rep),
			Status: status, LoadBound: bound, Detail: map[bool]string{true: "", false: "read 3"}[status == StatusOK]}
	}
	nan := math.NaN()
	return []Run{
		run(TargetDirect, 0, 1, 300, nan, StatusOK, false),
		run(TargetNginx, 1, 1, 100, 1000, StatusOK, true),
		run("monolake/epoll", 1, 1, 120, 2000, StatusOK, true),
		run(TargetNginx, 1, 2, 90, 1100, StatusOK, true),
		run("monolake/epoll", 1, 2, 150, 2400, StatusOK, false),
		run(TargetNginx, 1, 3, 110, 900, StatusOK, false),
		run("monolake/epoll", 1, 3, 130, 2200, StatusFailed, false),
	}
}

func TestSummarizeRuns(t *testing.T) {
	known := []Summary{{Case: "http1/c=50/body=1k", Target: "monolake/uring", Workers: 1,
		Status: StatusUnsupported, Reason: "no io_uring"}}
	sums := SummarizeRuns(testRuns(), known, 3)
	by := map[string]Summary{}
	for _, s := range sums {
		by[s.Target] = s
	}
	if len(by) != 4 {
		t.Fatalf("got %d summaries, want 4: %+v", len(sums), sums)
	}
	n := by[TargetNginx]
	if n.RPS != (Spread{100, 90, 110, 3}) || n.ReqPerCPUSec.Median != 1000 || n.Status != StatusOK {
		t.Errorf("nginx summary %+v", n)
	}
	if !n.LoadBound {
		t.Error("nginx: 2 of 3 runs load-bound, summary not flagged")
	}
	if !math.IsNaN(n.VsNginxRPS) {
		t.Errorf("nginx has a ratio to itself: %v", n.VsNginxRPS)
	}
	m := by["monolake/epoll"]
	if m.Status != StatusFailed || m.Reason != "read 3" {
		t.Errorf("monolake: status %q reason %q, want failed with the run's detail", m.Status, m.Reason)
	}
	// The failed repetition's figures stay out: medians of 120 and 150,
	// 2000 and 2400.
	if math.Abs(m.VsNginxRPS-1.35) > 1e-9 || math.Abs(m.VsNginxEff-2.2) > 1e-9 {
		t.Errorf("monolake ratios %v %v, want 1.35 2.2", m.VsNginxRPS, m.VsNginxEff)
	}
	// Repetitions 1 and 2 pair (3 failed): req/s 120/100 and 150/90,
	// req/cpu-s 2000/1000 and 2400/1100; the median of two is their mean.
	if want := (1.2 + 150.0/90) / 2; math.Abs(m.VsNginxRPSPaired-want) > 1e-9 {
		t.Errorf("paired req/s ratio %v, want %v", m.VsNginxRPSPaired, want)
	}
	if want := (2.0 + 2400.0/1100) / 2; math.Abs(m.VsNginxEffPaired-want) > 1e-9 {
		t.Errorf("paired req/cpu-s ratio %v, want %v", m.VsNginxEffPaired, want)
	}
	if !math.IsNaN(n.VsNginxEffPaired) {
		t.Errorf("nginx has a paired ratio to itself: %v", n.VsNginxEffPaired)
	}
	if m.LoadBound {
		t.Error("monolake: 1 of 3 runs load-bound, summary flagged")
	}
	if m.P99Ms.Median != 3 {
		t.Errorf("p99 median %v, want 3", m.P99Ms.Median)
	}
	if u := by["monolake/uring"]; u.Status != StatusUnsupported || !math.IsNaN(u.VsNginxRPS) {
		t.Errorf("unsupported summary %+v", u)
	}
	if d := by[TargetDirect]; !math.IsNaN(d.ReqPerCPUSec.Median) || d.RPS.Median != 300 {
		t.Errorf("direct summary %+v", d)
	}
}

func TestWriteOutputs(t *testing.T) {
	dir := t.TempDir()
	runs := testRuns()
	sums := SummarizeRuns(runs, nil, 3)
	SortSummaries(sums, []string{"http1/c=50/body=1k"})
	if sums[0].Target != TargetDirect || sums[1].Target != TargetNginx {
		t.Errorf("order: %s, %s; want direct, nginx first", sums[0].Target, sums[1].Target)
	}

	rep := Report{Runs: runs, Summaries: sums, Env: map[string]string{"ncpu": "2"}}
	p := filepath.Join(dir, "results.json")
	if err := WriteJSON(p, rep); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var back struct {
		Runs      []map[string]any `json:"runs"`
		Summaries []map[string]any `json:"summaries"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("results.json does not parse: %v", err)
	}
	if len(back.Runs) != len(runs) || back.Runs[0]["req_per_proxy_cpu_s"] != nil || back.Runs[1]["rps"] != 100.0 {
		t.Errorf("results.json runs: %v", back.Runs[:2])
	}

	p = filepath.Join(dir, "runs.csv")
	if err := WriteRunsCSV(p, runs); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != len(runs)+1 || rows[1][4] != TargetDirect || rows[1][17] != "" {
		t.Errorf("runs.csv: %v %v", err, rows[:2])
	}
	if err := WriteSummaryCSV(filepath.Join(dir, "summary.csv"), sums); err != nil {
		t.Fatal(err)
	}

	var tb strings.Builder
	if err := WriteTable(&tb, sums); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"direct", "nginx", "monolake/epoll", "×1.35", "×2.20", "×2.09", "FAILED: read 3", "load-bound"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	var rb strings.Builder
	WriteRatios(&rb, sums)
	if !strings.Contains(rb.String(), "req/s ×1.35 (paired ×1.43)  req/proxy-cpu-s ×2.20 (paired ×2.09)") {
		t.Errorf("ratios:\n%s", rb.String())
	}

	// Monolake's summary failed (one repetition of three): no overview.
	files, err := WriteCharts(dir, sums, []string{"http1/c=50/body=1k"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 { // rps, cpu, latency
		t.Errorf("charts: %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
			t.Errorf("%s is not a PNG (%v)", f, err)
		}
	}
}

// TestSummarizeRunsMajority checks that a ratio to nginx needs a majority
// of successful repetitions on both sides.
func TestSummarizeRunsMajority(t *testing.T) {
	run := func(target string, rep int, rps float64, status string) Run {
		return Run{Case: "l4/c=50/body=64k", Proto: ProtoL4, Conns: 50, Body: "64k", Target: target,
			Workers: 1, Rep: rep, RPS: rps, ReqPerCPUSec: 10 * rps, P50Ms: 1, P99Ms: 2, Status: status}
	}
	tests := []struct {
		name      string
		okNginx   int // of 5 repetitions, the first ones succeed
		okOurs    int
		wantRatio bool
	}{
		{"all succeeded", 5, 5, true},
		{"3 of 5 ours", 5, 3, true},
		{"2 of 5 ours", 5, 2, false},
		{"1 of 5 ours", 5, 1, false},
		{"2 of 5 nginx", 2, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs []Run
			for rep := 1; rep <= 5; rep++ {
				status := func(ok int) string {
					if rep <= ok {
						return StatusOK
					}
					return StatusFailed
				}
				runs = append(runs, run(TargetNginx, rep, 100, status(tt.okNginx)), run("monolake/epoll", rep, 150, status(tt.okOurs)))
			}
			for _, s := range SummarizeRuns(runs, nil, 5) {
				if s.Target != "monolake/epoll" {
					continue
				}
				ratios := []float64{s.VsNginxRPS, s.VsNginxEff, s.VsNginxRPSPaired, s.VsNginxEffPaired}
				for i, r := range ratios {
					if got := !math.IsNaN(r); got != tt.wantRatio {
						t.Errorf("ratio %d = %v, want one: %v", i, r, tt.wantRatio)
					}
				}
			}
		})
	}
}

// TestChartsLeaveOutFailed checks that failed summaries are not drawn: a
// case whose every summary failed has no chart, and a failed Monolake
// summary no bar in the overview.
func TestChartsLeaveOutFailed(t *testing.T) {
	runs := testRuns()
	runs[len(runs)-1].Status = StatusOK // every run succeeded
	sums := SummarizeRuns(runs, nil, 3)
	cases := []string{"http1/c=50/body=1k"}
	files, err := WriteCharts(t.TempDir(), sums, cases, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 { // rps, cpu, latency, overview
		t.Errorf("charts of a suite that succeeded: %v", files)
	}
	for i := range sums {
		sums[i].Status = StatusFailed
	}
	files, err = WriteCharts(t.TempDir(), sums, cases, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 0 {
		t.Errorf("charts of failed summaries: %v", files)
	}
}
