// Command monobench runs the benchmark suite of Monolake for Go against
// nginx: `make bench` (the full suite) and `make bench-smoke` (about ten
// seconds of load, for CI). See the bench package for the method.
//
// Exit status: 0 when every run succeeded, 1 when a run failed, the suite
// itself could not run, or the build lacks a Monolake runtime or TLS
// backend asked for (unless -allow-unsupported), 130 when interrupted. Only
// a full run that exits 0 replaces OUT/latest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monolake-go/monolake/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		monolake    = flag.String("monolake", "bin/monolake", "path of the monolake binary (missing: its targets are unsupported)")
		duration    = flag.Duration("duration", 5*time.Second, "length of each measured run (whole seconds)")
		warmup      = flag.Duration("warmup", time.Second, "warm-up per case and target before the repetitions (0: none)")
		settle      = flag.Duration("settle", bench.DefaultSettle, "wait after each run's load in which the proxy's CPU time still counts (its after-work: collections, memory given back)")
		reps        = flag.Int("reps", 3, "repetitions per case, target and worker count (median reported)")
		conns       = flag.String("conns", "50,200", "client connection counts")
		bodies      = flag.String("bodies", "0,1k,16k", "response body sizes (0, 1k, 16k, 64k)")
		l4Bodies    = flag.String("l4-bodies", "0,1k,16k,64k", "body sizes of the L4 cases")
		workers     = flag.String("workers", "", "proxy worker counts (default 1 up to the number of CPUs)")
		protos      = flag.String("protos", "http1,https,h2,l4,close,close-tls,idle,idle-tls", "case kinds: "+joinProtos()+", idle (memory of idle keep-alive connections), idle-tls (the same over TLS)")
		idleConns   = flag.Int("idle-conns", 10000, "connections of the idle case")
		cases       = flag.String("cases", "", "regexp: run only the cases whose name (like http1/c=50/body=1k) matches")
		runtimes    = flag.String("runtimes", "epoll,uring", "Monolake runtimes to try: epoll, uring, uring-sqpoll (io_uring with sqpoll_idle = 10)")
		tlsBackends = flag.String("tls-backends", "gotls,openssl", "Monolake TLS backends to try")
		h2Streams   = flag.Int("h2-streams", 10, "concurrent streams per h2 connection")
		proxyCPUs   = flag.String("proxy-cpus", "", "CPU pool of the proxy; w workers get the first w (default: all)")
		loadCPUs    = flag.String("load-cpus", "", "CPUs of the load generator and the origin (default: the last CPU on 2 cores)")
		portBase    = flag.Int("port-base", 27000, "first TCP port the suite listens on")
		out         = flag.String("out", "bench/results", "results directory: a timestamped run directory and latest/ go here")
		smoke       = flag.Bool("smoke", false, "smoke mode: ~10 s of load, 1 repetition, few cases, results in OUT/smoke (for CI)")
		sendfile    = flag.String("origin-sendfile", bench.DefaultOriginSendfile, "smallest body the origin serves with sendfile and TCP_CORK on plain HTTP (0: every body, as runs before 155a698)")
		direct      = flag.Bool("direct", true, "measure the direct run (client to origin) as the reference")
		dryRun      = flag.Bool("n", false, "print the cases and the time the suite would take, and exit")
		allowUnsup  = flag.Bool("allow-unsupported", false, "run even when the build lacks a runtime or TLS backend asked for (no binary, a pure-Go build): its targets are reported unsupported, and the results may replace latest/")
	)
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *smoke {
		// The settle is shorter than Monolake's idle-memory release
		// takes: smoke figures are never quoted, and CI waits for it
		// after every run.
		defaults := map[string]func(){
			"duration":   func() { *duration = time.Second },
			"warmup":     func() { *warmup = 0 },
			"settle":     func() { *settle = 500 * time.Millisecond },
			"reps":       func() { *reps = 1 },
			"conns":      func() { *conns = "50" },
			"bodies":     func() { *bodies = "1k" },
			"l4-bodies":  func() { *l4Bodies = "16k" },
			"workers":    func() { *workers = "1" },
			"protos":     func() { *protos = "http1,https,l4,idle,idle-tls" },
			"idle-conns": func() { *idleConns = 300 },
			"direct":     func() { *direct = false },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}

	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "monobench:", err)
		return 1
	}
	allowed, err := bench.AllowedCPUs()
	if err != nil {
		return fail(err)
	}
	m := bench.Matrix{}
	idle := 0
	var idleModes []bench.Mode
	for _, p := range splitList(*protos) {
		if p == "idle" || p == "idle-tls" {
			idle = *idleConns
			idleModes = append(idleModes, map[string]bench.Mode{"idle": bench.ModeHTTP, "idle-tls": bench.ModeHTTPS}[p])
			continue
		}
		pr, err := bench.ParseProto(p)
		if err != nil {
			return fail(err)
		}
		m.Protos = append(m.Protos, pr)
	}
	if m.Conns, err = parseInts(*conns); err != nil {
		return fail(fmt.Errorf("-conns: %w", err))
	}
	if m.Bodies, err = parseBodies(*bodies); err != nil {
		return fail(err)
	}
	if m.L4Bodies, err = parseBodies(*l4Bodies); err != nil {
		return fail(err)
	}
	if _, err := bench.SendfileBodies(*sendfile); err != nil {
		return fail(fmt.Errorf("-origin-sendfile: %w", err))
	}
	if *cases != "" {
		if m.Filter, err = regexp.Compile(*cases); err != nil {
			return fail(fmt.Errorf("-cases: %w", err))
		}
	}
	var ws []int
	if *workers == "" {
		for w := 1; w <= len(allowed); w++ {
			ws = append(ws, w)
		}
	} else if ws, err = parseInts(*workers); err != nil {
		return fail(fmt.Errorf("-workers: %w", err))
	}
	pool, load := bench.SplitCPUs(allowed, slices.Max(ws))
	if *proxyCPUs != "" {
		if pool, err = bench.ParseCPUs(*proxyCPUs); err != nil {
			return fail(err)
		}
	}
	if *loadCPUs != "" {
		if load, err = bench.ParseCPUs(*loadCPUs); err != nil {
			return fail(err)
		}
	}

	if *dryRun {
		opt := bench.Options{Matrix: m, Workers: ws, Runtimes: splitList(*runtimes), NoDirect: !*direct,
			TLSBackends: splitList(*tlsBackends), Duration: *duration, Warmup: *warmup, Settle: settleOpt(*settle), Reps: *reps}
		for _, c := range m.Cases() {
			fmt.Println(c.Name())
		}
		runs, d := bench.Estimate(opt)
		fmt.Printf("%d cases, workers %v, proxy CPUs %s, load CPUs %s: at most %d runs, about %v if every target is supported\n",
			len(m.Cases()), ws, bench.FormatCPUs(pool), bench.FormatCPUs(load), runs, d.Round(time.Second))
		return 0
	}

	started := time.Now().UTC()
	dir := filepath.Join(*out, started.Format("20060102T150405Z"))
	if *smoke {
		dir = filepath.Join(*out, "smoke")
		os.RemoveAll(dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	// nginx resolves relative paths against its prefix, not our directory.
	if dir, err = filepath.Abs(dir); err != nil {
		return fail(err)
	}
	if *monolake != "" {
		if abs, err := filepath.Abs(*monolake); err == nil {
			*monolake = abs
		}
	}
	opt := bench.Options{
		Monolake: *monolake, Matrix: m, Workers: ws,
		Runtimes: splitList(*runtimes), TLSBackends: splitList(*tlsBackends),
		Duration: *duration, Warmup: *warmup, Settle: settleOpt(*settle), Reps: *reps, H2Streams: *h2Streams,
		ProxyCPUs: pool, LoadCPUs: load, PortBase: *portBase, Dir: dir, NoDirect: !*direct,
		OriginSendfile: *sendfile,
		IdleConns:      idle, IdleModes: idleModes, Progress: os.Stdout,
	}
	if _, err := os.Stat(*monolake); err != nil && *smoke {
		// The smoke run is CI's check that the suite runs Monolake.
		return fail(fmt.Errorf("no monolake binary at %q: the smoke run needs one", *monolake))
	}
	for _, w := range ws {
		if bench.Overlaps(bench.ProxyCPUs(pool, w), load) {
			fmt.Printf("monobench: with %d workers the proxy shares CPUs with the load side (%s); req/s there is not the proxy's alone\n",
				w, bench.FormatCPUs(load))
			break
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := bench.NewRunner(opt)
	if err != nil {
		return fail(err)
	}
	// Also on an early return or a panic: a killed nginx master leaves its
	// workers running, holding the suite's ports.
	defer r.Close()
	// A pure-Go build (the cgo one failed) or none at all must not pass
	// for a full run: say so before hours of load, and fail.
	lacking := r.Lacking()
	for _, l := range lacking {
		fmt.Printf("monobench: unsupported: %s\n", l)
	}
	if _, err := verdict(nil, 0, len(lacking), *allowUnsup); err != nil {
		return fail(err)
	}
	runErr := r.Run(ctx)
	r.Close() // every process stopped, the work dir gone, before writing
	stop()

	report := bench.Report{
		Started: started, Finished: time.Now().UTC(), Smoke: *smoke,
		Env: bench.Environment(*monolake),
		Settings: map[string]string{
			"duration": duration.String(), "warmup": warmup.String(), "settle": settle.String(), "reps": strconv.Itoa(*reps),
			"conns": *conns, "bodies": *bodies, "l4_bodies": *l4Bodies, "workers": fmt.Sprint(ws),
			"protos": *protos, "cases": *cases, "runtimes": *runtimes, "tls_backends": *tlsBackends,
			"h2_streams": strconv.Itoa(*h2Streams), "direct": strconv.FormatBool(*direct), "origin_sendfile": *sendfile, "proxy_cpus": bench.FormatCPUs(pool),
			"load_cpus": bench.FormatCPUs(load), "idle_conns": strconv.Itoa(idle), "tls": bench.TLSSuite + " " + bench.TLSCurve + " ECDSA-P256",
			"args": strings.Join(os.Args[1:], " "),
		},
		Runs: r.Runs(),
		Idle: r.Idle(),
	}
	var order []string
	for _, c := range m.Cases() {
		order = append(order, c.Name())
	}
	report.Summaries = bench.SummarizeRuns(report.Runs, r.Known(), *reps)
	bench.SortSummaries(report.Summaries, order)

	if len(report.Summaries) > 0 {
		fmt.Println()
		bench.WriteTable(os.Stdout, report.Summaries)
		fmt.Println()
		bench.WriteRatios(os.Stdout, report.Summaries)
	}
	if len(report.Idle) > 0 {
		fmt.Println()
		bench.WriteIdleTable(os.Stdout, report.Idle)
	}
	noisy := 0
	for _, s := range report.Summaries {
		if s.Noisy {
			noisy++
		}
	}
	if noisy > 0 {
		fmt.Printf("note: %d result(s) ran beside other work on this machine (marked noisy); rerun them on an idle machine before quoting them\n", noisy)
	}

	// The overview chart shows the largest worker count whose proxy has its
	// CPUs to itself (on 2 cores: one worker on CPU 0).
	headline := bench.HeadlineWorkers(ws, pool, load)
	if err := writeResults(dir, report, order, headline); err != nil {
		return fail(err)
	}
	code, err := verdict(runErr, r.Failures, len(lacking), *allowUnsup)
	if code == 0 && !*smoke {
		latest := filepath.Join(*out, "latest")
		if err := replaceDir(dir, latest); err != nil {
			return fail(err)
		}
		fmt.Printf("results: %s (and %s)\n", dir, latest)
	} else {
		fmt.Printf("results: %s\n", dir)
	}
	if code == 130 {
		fmt.Fprintln(os.Stderr, "monobench: interrupted; partial results written")
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "monobench:", err)
	}
	return code
}

// verdict is the exit status of a run: 130 when interrupted, 1 when the
// suite could not run, a run failed, or variants asked for were lacking
// without allowUnsupported; 0 otherwise. Only a 0 may replace latest/.
func verdict(runErr error, failures, lacking int, allowUnsupported bool) (int, error) {
	switch {
	case errors.Is(runErr, context.Canceled):
		return 130, runErr
	case runErr != nil:
		return 1, runErr
	case failures > 0:
		return 1, fmt.Errorf("%d run(s) failed (errors, non-2xx responses, wrong bodies, or targets that did not start); see the table", failures)
	case lacking > 0 && !allowUnsupported:
		return 1, fmt.Errorf("this build lacks %d Monolake variant(s) asked for: build with `make uring`, narrow -runtimes or -tls-backends, or pass -allow-unsupported", lacking)
	}
	return 0, nil
}

func writeResults(dir string, report bench.Report, order []string, headline int) error {
	if err := bench.WriteJSON(filepath.Join(dir, "results.json"), report); err != nil {
		return err
	}
	if err := bench.WriteRunsCSV(filepath.Join(dir, "runs.csv"), report.Runs); err != nil {
		return err
	}
	if err := bench.WriteSummaryCSV(filepath.Join(dir, "summary.csv"), report.Summaries); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "table.txt"))
	if err != nil {
		return err
	}
	bench.WriteTable(f, report.Summaries)
	fmt.Fprintln(f)
	bench.WriteRatios(f, report.Summaries)
	if len(report.Idle) > 0 {
		fmt.Fprintln(f)
		bench.WriteIdleTable(f, report.Idle)
	}
	f.Close()
	charts := filepath.Join(dir, "charts")
	if err := os.MkdirAll(charts, 0o755); err != nil {
		return err
	}
	files, err := bench.WriteCharts(charts, report.Summaries, order, headline)
	if err != nil {
		return err
	}
	fmt.Printf("charts: %d PNG files in %s\n", len(files), charts)
	return nil
}

// replaceDir replaces dst with a copy of src (regular files only) so that
// no reader, and no crash, ever finds dst half-written: the copy is made in
// a directory beside dst, swapped in with one rename(2) (renameat2's
// RENAME_EXCHANGE; two renames where the filesystem lacks it), and the old
// dst removed after.
func replaceDir(src, dst string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+"-new-")
	if err != nil {
		return err
	}
	// After the swap tmp holds the old dst; on an error, the partial copy.
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp's is 0700
		return err
	}
	if err := copyTree(src, tmp); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT): // no dst yet
		return os.Rename(tmp, dst)
	}
	old := tmp + "-old"
	if err := os.Rename(dst, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Rename(old, dst)
		return err
	}
	return os.RemoveAll(old)
}

// copyTree copies the directories and regular files of src into dst,
// which exists.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.Mkdir(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// settleOpt turns the -settle flag into Options.Settle, where 0 is the
// default: -settle 0 asks for none.
func settleOpt(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func parseBodies(s string) ([]string, error) {
	var out []string
	for _, f := range splitList(s) {
		b, err := bench.ParseBody(f)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func joinProtos() string {
	s := make([]string, len(bench.AllProtos))
	for i, p := range bench.AllProtos {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}
