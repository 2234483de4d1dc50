package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Target names. Monolake's are "monolake/RUNTIME" and, on TLS cases,
// "monolake/RUNTIME/BACKEND".
const (
	TargetDirect = "direct"
	TargetNginx  = "nginx"
)

// LoadGrace is how long wrk or h2load may run past its duration before it
// is killed and the run recorded as failed: both stop on their own, but a
// hung one must not hang the suite.
const LoadGrace = 30 * time.Second

// StreamModule is the nginx module the L4 cases load.
const StreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// Options configure a run of the suite.
type Options struct {
	// Monolake is the path of the monolake binary; empty or missing marks
	// every Monolake target unsupported.
	Monolake string
	Matrix   Matrix
	Workers  []int
	// Runtimes and TLSBackends name the Monolake variants to try; the ones
	// the build lacks are reported unsupported.
	Runtimes    []string
	TLSBackends []string
	Duration    time.Duration
	Warmup      time.Duration // per case and target, before the repetitions
	// Settle is how long after each run's load the proxy's CPU time is
	// still charged to the run (see DefaultSettle): 0 is DefaultSettle, a
	// negative value none.
	Settle    time.Duration
	Reps      int
	H2Streams int // concurrent streams per h2 connection
	ProxyCPUs []int
	LoadCPUs  []int
	PortBase  int
	// OriginSendfile names the smallest body the origin serves with
	// sendfile(2) (see OriginConfig.Sendfile): "" is DefaultOriginSendfile;
	// "0" serves every body so, as the runs before 155a698 did.
	OriginSendfile string
	// NoDirect skips measuring the direct run (the origin is still probed).
	NoDirect bool
	// Dir is where configs and logs are written (the results directory);
	// the temporary work directory holds certs, bodies and pid files.
	Dir string
	// IdleConns, when positive, adds the idle case: that many idle
	// keep-alive connections through each target (see RunIdle), in each
	// of IdleModes: ModeHTTP (the default when empty) and ModeHTTPS (over
	// TLS through each TLS backend).
	IdleConns int
	IdleModes []Mode
	// Progress receives a line per run.
	Progress io.Writer
}

// Runner runs the suite. It is used by one goroutine.
type Runner struct {
	opt   Options
	procs Procs
	work  string
	cert  string
	key   string
	pool  *x509.CertPool

	origin      *Proc
	originHTTP  string
	originHTTPS string
	originH2    string

	// features is what the monolake binary says it contains; when
	// haveFeatures is false every variant is tried.
	features     Features
	haveFeatures bool

	runs    []Run
	known   []Summary
	idle    []IdleResult
	lastWhy string          // last unsupported reason printed, so it is said once
	tlsSeen map[string]bool // targets whose TLS parameters were printed
	step    int
	steps   int
	// Failures counts failed runs, cases a Monolake target failed to
	// start or probe or had died before, and failed idle results.
	Failures int
}

// live is a target running for one group of cases.
type live struct {
	name    string
	proc    *Proc // nil for the direct run
	plain   string
	tls     string
	h2      string
	cpus    []int
	workers int
	probed  map[probeKey]string // probe result: "" ok, else why it failed
	tlsInfo string
	dead    string // why a Monolake target stopped working mid-suite
}

// probeKey is what a probe depends on: the protocol and the body asked for.
type probeKey struct {
	proto Proto
	body  string
}

func (t *live) addr(c Case) string {
	switch {
	case c.H2():
		return t.h2
	case c.TLS():
		return t.tls
	}
	return t.plain
}

// NewRunner checks the tools and prepares the work directory.
func NewRunner(opt Options) (*Runner, error) {
	r := &Runner{opt: opt}
	need := []string{"taskset", "nginx", "wrk"}
	cases := opt.Matrix.Cases()
	if len(cases) == 0 && opt.IdleConns <= 0 {
		return nil, errors.New("bench: no case left to run (check -cases and -protos)")
	}
	for _, c := range cases {
		if c.H2() && !slices.Contains(need, "h2load") {
			need = append(need, "h2load")
		}
		if c.Mode() == ModeTCP {
			if _, err := os.Stat(StreamModule); err != nil {
				return nil, fmt.Errorf("bench: L4 cases need nginx's stream module (libnginx-mod-stream): %w", err)
			}
		}
	}
	for _, tool := range need {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("bench: %s not found; run scripts/install-deps.sh: %w", tool, err)
		}
	}
	if opt.Reps < 1 {
		return nil, errors.New("bench: at least one repetition")
	}
	for _, sub := range []string{"configs", "logs"} {
		if err := os.MkdirAll(filepath.Join(opt.Dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	work, err := os.MkdirTemp("", "monobench-")
	if err != nil {
		return nil, fmt.Errorf("bench: creating work dir: %w", err)
	}
	// nginx workers run as nobody and must read the bodies.
	if err := os.Chmod(work, 0o755); err != nil {
		os.RemoveAll(work)
		return nil, fmt.Errorf("bench: %w", err)
	}
	r.work = work
	if opt.Monolake != "" {
		if out, err := exec.Command(opt.Monolake, "version").Output(); err == nil {
			r.features, r.haveFeatures = ParseFeatures(string(out))
		}
	}
	return r, nil
}

// Close stops every process the runner started and removes its work
// directory. It is safe to call more than once.
func (r *Runner) Close() {
	r.procs.StopAll()
	if r.work != "" {
		os.RemoveAll(r.work)
		r.work = ""
	}
}

// Runs returns the runs so far.
func (r *Runner) Runs() []Run { return r.runs }

// Idle returns the idle case's results.
func (r *Runner) Idle() []IdleResult { return r.idle }

// Known returns the summaries of targets that did not run on a case:
// unsupported by the build, or dead from an earlier case.
func (r *Runner) Known() []Summary { return r.known }

func (r *Runner) progress(format string, args ...any) {
	if r.opt.Progress != nil {
		fmt.Fprintf(r.opt.Progress, format+"\n", args...)
	}
}

// Run runs the whole suite. It returns an error only when the suite itself
// cannot go on (a tool missing, nginx not starting, the context cancelled);
// failed runs and unsupported targets are in the results.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.startOrigin(ctx); err != nil {
		return err
	}
	cases := r.opt.Matrix.Cases()
	var est time.Duration
	r.steps, est = Estimate(r.opt)
	r.progress("%d cases, workers %v, %d repetitions of %v (warm-up %v); proxy CPUs %s, load CPUs %s; at most %d runs, about %v",
		len(cases), r.opt.Workers, r.opt.Reps, r.opt.Duration, r.opt.Warmup,
		FormatCPUs(r.opt.ProxyCPUs), FormatCPUs(r.opt.LoadCPUs), r.steps, est.Round(time.Second))

	// The direct run: the client against the origin, once per case.
	direct := &live{name: TargetDirect, plain: r.originHTTP, tls: r.originHTTPS, h2: r.originH2,
		cpus: r.opt.LoadCPUs, probed: map[probeKey]string{}}
	for _, c := range cases {
		if err := r.probeOrFail(ctx, direct, c); err != nil {
			return err
		}
		if r.opt.NoDirect {
			continue
		}
		if err := r.measureCase(ctx, c, []*live{direct}); err != nil {
			return err
		}
	}

	for _, w := range r.opt.Workers {
		for _, mode := range []Mode{ModeHTTP, ModeHTTPS, ModeTCP} {
			var group []Case
			for _, c := range cases {
				if c.Mode() == mode {
					group = append(group, c)
				}
			}
			if len(group) == 0 {
				continue
			}
			if err := r.runGroup(ctx, w, mode, group); err != nil {
				return err
			}
		}
	}
	if r.opt.IdleConns > 0 {
		for _, mode := range r.opt.idleModes() {
			res, err := r.RunIdle(ctx, r.opt.IdleConns, mode)
			r.idle = append(r.idle, res...)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// settle is the wait after each run's load.
func (o Options) settle() time.Duration {
	switch {
	case o.Settle == 0:
		return DefaultSettle
	case o.Settle < 0:
		return 0
	}
	return o.Settle
}

// Estimate returns how many measured runs the suite makes and about how long
// it takes if every target is supported.
func Estimate(opt Options) (runs int, d time.Duration) {
	targets := 0 // target runs per repetition
	for _, c := range opt.Matrix.Cases() {
		variants := len(opt.Runtimes)
		if c.TLS() {
			variants *= max(1, len(opt.TLSBackends))
		}
		targets += len(opt.Workers) * (1 + variants)
		if !opt.NoDirect {
			targets++
		}
	}
	// wrk and h2load run whole seconds; starting them and the proxies adds
	// a little to each run.
	settle := opt.settle()
	run := time.Duration(max(1, int((opt.Duration+time.Second/2)/time.Second)))*time.Second + 300*time.Millisecond + settle
	warm := time.Duration(0)
	if opt.Warmup > 0 {
		warm = time.Duration(max(1, int((opt.Warmup+time.Second/2)/time.Second)))*time.Second + 300*time.Millisecond + settle
	}
	return targets * opt.Reps, time.Duration(targets) * (time.Duration(opt.Reps)*run + warm)
}

// runGroup starts nginx and every Monolake variant for one mode and worker
// count, and measures the cases of that mode on them, interleaved.
func (r *Runner) runGroup(ctx context.Context, w int, mode Mode, cases []Case) error {
	targets, absent, started, err := r.startTargets(ctx, w, mode)
	defer func() {
		for _, p := range started {
			r.procs.Remove(p)
		}
	}()
	if err != nil {
		return err
	}
	for _, v := range absent {
		r.skipVariant(mode, w, v, cases)
	}

	for _, c := range cases {
		var ts []*live
		for _, t := range targets {
			if t.name == TargetNginx {
				if err := r.probeOrFail(ctx, t, c); err != nil {
					return err
				}
				ts = append(ts, t)
				continue
			}
			if t.dead != "" {
				r.Failures++
				r.known = append(r.known, skipped(c, t.name, w, StatusFailed, t.dead))
				continue
			}
			if why := r.probe(ctx, t, c); why != "" {
				if c.H2() {
					// HTTP/2 is not served yet: not a failure.
					r.progress("  %s w=%d %s: unsupported: %s", c.Name(), w, t.name, why)
					r.skip(c, t.name, w, StatusUnsupported, why)
				} else {
					r.progress("  %s w=%d %s: FAILED the probe: %s", c.Name(), w, t.name, why)
					r.skip(c, t.name, w, StatusFailed, why)
				}
				continue
			}
			ts = append(ts, t)
		}
		if err := r.measureCase(ctx, c, ts); err != nil {
			return err
		}
	}
	return nil
}

// notStarted is a Monolake variant startTargets did not start: one the
// build lacks (StatusUnsupported), or one that did not come up
// (StatusFailed).
type notStarted struct {
	name, status, why string
}

// startTargets starts nginx and every Monolake variant for w workers in
// mode, and says which variants it did not start; the caller records them
// as its case wants. The caller removes the started processes, also on an
// error.
func (r *Runner) startTargets(ctx context.Context, w int, mode Mode) (targets []*live, absent []notStarted, started []*Proc, err error) {
	port := r.opt.PortBase + 100
	next := func() string { port++; return "127.0.0.1:" + strconv.Itoa(port) }
	cpus := ProxyCPUs(r.opt.ProxyCPUs, w)
	maxConns := 1
	if len(r.opt.Matrix.Conns) > 0 {
		maxConns = slices.Max(r.opt.Matrix.Conns)
	}

	// nginx.
	nx := &live{name: TargetNginx, cpus: cpus, workers: w, probed: map[probeKey]string{}}
	keepalive := maxConns
	if mode == ModeHTTPS {
		// Each h2 stream in flight holds an upstream connection.
		keepalive *= max(1, r.opt.H2Streams)
	}
	nname := fmt.Sprintf("nginx-%s-w%d", mode, w)
	nc := NginxProxyConfig{
		Dir: filepath.Join(r.work, nname), Log: r.logPath(nname + "-error"), NoFile: noFile(), Workers: max(w, 1), Mode: mode,
		Upstream: r.originHTTP, Keepalive: keepalive, Cert: r.cert, Key: r.key,
	}
	nc.Listen = next()
	nx.plain, nx.tls, nx.h2 = nc.Listen, nc.Listen, nc.Listen
	if mode == ModeHTTPS {
		nc.ListenH2 = next()
		nx.h2 = nc.ListenH2
	}
	text, err := RenderNginxProxy(nc)
	if err != nil {
		return nil, nil, started, err
	}
	p, err := r.startNginx(ctx, nname, nc.Dir, text, cpus, nc.Listen, nc.ListenH2)
	if err != nil {
		return nil, nil, started, err
	}
	started = append(started, p)
	nx.proc = p
	targets = []*live{nx}

	// Monolake variants.
	for _, rt := range r.opt.Runtimes {
		for _, stack := range r.opt.stacks(mode) {
			name := variantName(rt, stack)
			t := &live{name: name, cpus: cpus, workers: w, probed: map[probeKey]string{}}
			if why := r.missing(rt, stack); why != "" {
				absent = append(absent, notStarted{name, StatusUnsupported, why})
				continue
			}
			listen := next()
			t.plain, t.tls, t.h2 = listen, listen, listen
			why, p, err := r.startMonolake(ctx, t, mode, rt, stack, w, listen, cpus)
			if err != nil {
				return nil, nil, started, err
			}
			if p != nil {
				started = append(started, p)
				t.proc = p
			}
			if why != "" {
				// The runtime and backend are ones the binary lists
				// (monolake version): not starting is a failure.
				absent = append(absent, notStarted{name, StatusFailed, why})
				if p != nil {
					r.procs.Remove(p)
					started = slices.DeleteFunc(started, func(q *Proc) bool { return q == p })
				}
				continue
			}
			targets = append(targets, t)
		}
	}
	return targets, absent, started, nil
}

// skip records a target that did not run on a case: unsupported, or
// failed (it should have run and could not).
func (r *Runner) skip(c Case, target string, w int, status, why string) {
	r.steps -= r.opt.Reps
	if status == StatusFailed {
		r.Failures++
	}
	r.known = append(r.known, skipped(c, target, w, status, why))
}

// skipVariant skips a Monolake variant that did not start on every case
// of its mode, saying so once per reason.
func (r *Runner) skipVariant(mode Mode, w int, v notStarted, cases []Case) {
	r.sayNotStarted(fmt.Sprintf("  %s w=%d", mode, w), v)
	for _, c := range cases {
		r.skip(c, v.name, w, v.status, v.why)
	}
}

// sayNotStarted prints why a variant did not start, once per reason.
func (r *Runner) sayNotStarted(where string, v notStarted) {
	if v.why != r.lastWhy {
		label := "unsupported"
		if v.status == StatusFailed {
			label = "FAILED to start"
		}
		r.progress("%s %s: %s: %s", where, v.name, label, v.why)
	}
	r.lastWhy = v.why
}

// skipped is the summary of a target that did not run on a case.
func skipped(c Case, target string, w int, status, why string) Summary {
	none := Summarize(nil)
	return Summary{Case: c.Name(), Proto: c.Proto, Conns: c.Conns, Body: c.Body,
		Target: target, Workers: w, Status: status, Reason: why,
		RPS: none, ReqPerCPUSec: none, P50Ms: none, P99Ms: none,
		ProxyUtil: math.NaN(), LoadUtil: math.NaN()}
}

// noFile is the open-file limit nginx workers may raise themselves to: the
// hard limit, at most 65536.
func noFile() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return int(min(lim.Max, 65536))
}

// measureCase warms each target up, then runs the repetitions interleaved:
// target 1, target 2, …, target 1, target 2, ….
func (r *Runner) measureCase(ctx context.Context, c Case, ts []*live) error {
	if r.opt.Warmup > 0 {
		for _, t := range ts {
			run, err := r.measure(ctx, c, t, 0, r.opt.Warmup)
			if err != nil {
				return err
			}
			if t.dead != "" {
				r.runs = append(r.runs, run)
				r.Failures++
				r.report(run, r.opt.Reps)
			}
		}
	}
	for rep := 1; rep <= r.opt.Reps; rep++ {
		// Each repetition starts with another target, so that a machine
		// that drifts during a case does not favour the same target
		// every time. A target's after-work (a collection, memory given
		// back) is charged to its own run: measure waits the settle.
		for i := range ts {
			t := ts[(i+rep-1)%len(ts)]
			if t.dead != "" {
				continue
			}
			run, err := r.measure(ctx, c, t, rep, r.opt.Duration)
			if err != nil {
				return err
			}
			r.runs = append(r.runs, run)
			r.step++
			if run.Status != StatusOK {
				r.Failures++
			}
			r.report(run, r.opt.Reps)
		}
	}
	return nil
}

func (r *Runner) report(run Run, reps int) {
	w := "-"
	if run.Target != TargetDirect {
		w = strconv.Itoa(run.Workers)
	}
	line := fmt.Sprintf("[%3d/%3d] %-22s w=%-2s %-24s rep %d/%d %9.0f req/s  p50 %s  p99 %s",
		r.step, max(r.steps, r.step), run.Case, w, run.Target, run.Rep, reps, run.RPS,
		fmtMs(run.P50Ms), fmtMs(run.P99Ms))
	if run.Target != TargetDirect {
		line += fmt.Sprintf("  %9.0f req/cpu-s (proxy %3.0f%%)", run.ReqPerCPUSec, 100*run.ProxyUtil)
	}
	line += fmt.Sprintf("  load %3.0f%%", 100*run.LoadUtil)
	if run.LoadBound {
		line += " LOAD-BOUND"
	}
	if run.Noisy {
		line += fmt.Sprintf(" NOISY (other processes %.1f CPU-s, steal %.1f s)", run.OtherCPUSec, run.StealCPUSec)
	}
	if run.Status != StatusOK {
		line += "  FAILED: " + run.Detail
	}
	r.progress("%s", line)
}

// measure runs the load generator once against t and takes the CPU time of
// the proxy over the window and the settle after it (see DefaultSettle),
// and of the load side over the window. rep 0 is a warm-up.
func (r *Runner) measure(ctx context.Context, c Case, t *live, rep int, d time.Duration) (Run, error) {
	run := Run{Case: c.Name(), Proto: c.Proto, Conns: c.Conns, Body: c.Body, Target: t.name,
		Workers: t.workers, Rep: rep}
	scheme := "http"
	if c.TLS() {
		scheme = "https"
	}
	url := scheme + "://" + t.addr(c) + c.Path()
	threads := len(r.opt.LoadCPUs)
	var argv []string
	if c.H2() {
		argv = append([]string{"h2load"}, H2loadArgs(url, threads, c.Conns, r.opt.H2Streams, d)...)
	} else {
		argv = append([]string{"wrk"}, WrkArgs(url, threads, c.Conns, d, c.Close())...)
	}

	var (
		res    RunResult
		runErr error
		wall   time.Duration
	)
	w, err := watch(ctx, r.opt.settle(), func() {
		start := time.Now()
		res, runErr = RunCommand(ctx, d+LoadGrace, FormatCPUs(r.opt.LoadCPUs), argv...)
		wall = time.Since(start)
	})
	if err != nil {
		return run, err
	}
	var proxyCPU, proxyLoadCPU time.Duration
	if t.proc != nil {
		if proxyCPU, proxyLoadCPU, err = w.treeCPU(t.proc.PID()); err != nil {
			return r.procGone(run, t, err)
		}
	}
	// The origin's share of the load side is taken over the load alone:
	// it idles in the settle.
	_, originCPU, err := w.treeCPU(r.origin.PID())
	if err != nil {
		return run, fmt.Errorf("bench: origin: %w", err)
	}
	loadCPU := res.CPU + originCPU
	measured := []int{r.origin.PID()}
	if t.proc != nil {
		measured = append(measured, t.proc.PID())
	}
	run.markNoise(OtherCPU(w.before, w.after, os.Getpid(), measured...),
		StealBetween(w.before, w.after, append(slices.Clone(t.cpus), r.opt.LoadCPUs...)),
		w.after.Taken.Sub(w.before.Taken))

	r.logLoad(run, argv, res.Output)
	var lr LoadResult
	if runErr != nil {
		lr.Detail = runErr.Error()
		lr.Errors = 1
	} else if c.H2() {
		lr, err = ParseH2load(res.Output)
	} else {
		lr, err = ParseWrk(res.Output)
	}
	if err != nil {
		lr.Detail = fmt.Sprintf("%v: %s", err, lastLines(res.Output, 3))
		lr.Errors = max(lr.Errors, 1)
	} else if !lr.Failed() {
		// wrk and h2load check the status only.
		inflight := c.Conns
		if c.H2() {
			inflight *= max(1, r.opt.H2Streams)
		}
		lr.CheckBytes(Bodies[c.Body], inflight)
	}

	run.Requests, run.RPS = lr.Requests, lr.RPS
	run.Seconds = wall.Seconds()
	run.P50Ms, run.P99Ms, run.MeanMs = durMs(lr.P50), durMs(lr.P99), durMs(lr.Mean)
	run.Errors, run.Non2xx, run.Detail = lr.Errors, lr.Non2xx, lr.Detail
	run.BytesRead = lr.Bytes
	run.LoadCPUSec = loadCPU.Seconds()
	run.LoadUtil = run.LoadCPUSec / (wall.Seconds() * float64(len(r.opt.LoadCPUs)))
	if t.proc != nil {
		run.ProxyCPUSec = proxyCPU.Seconds()
		run.ProxySettleCPUSec = (proxyCPU - proxyLoadCPU).Seconds()
		run.ProxyUtil = proxyLoadCPU.Seconds() / (wall.Seconds() * float64(len(t.cpus)))
		run.ReqPerCPUSec = math.NaN()
		if run.ProxyCPUSec > 0 {
			run.ReqPerCPUSec = float64(run.Requests) / run.ProxyCPUSec
		}
		run.LoadBound = run.LoadUtil >= 0.85 && run.ProxyUtil < 0.85
	} else {
		run.ReqPerCPUSec, run.ProxyUtil = math.NaN(), math.NaN()
	}
	if c.TLS() {
		run.TLS = t.tlsInfo
	}
	run.Status = StatusOK
	if lr.Failed() {
		run.Status = StatusFailed
		if run.Detail == "" {
			run.Detail = "no request completed"
		}
	}
	return run, nil
}

// procGone handles a proxy that exited during a run: a harness error for
// nginx; for Monolake a failed run, and the target is dead for the cases
// after it.
func (r *Runner) procGone(run Run, t *live, err error) (Run, error) {
	why := fmt.Sprintf("exited during the run (%v): %s", err, lastLines(t.proc.Tail(600), 3))
	if t.name == TargetNginx {
		return run, fmt.Errorf("bench: nginx %s; log %s", why, t.proc.Log)
	}
	t.dead = why
	run.Status, run.Detail, run.Errors = StatusFailed, why, 1
	run.RPS, run.ReqPerCPUSec, run.P50Ms, run.P99Ms, run.MeanMs = 0, math.NaN(), math.NaN(), math.NaN(), math.NaN()
	return run, nil
}

func durMs(d time.Duration) float64 {
	if d == 0 {
		return math.NaN()
	}
	return float64(d) / 1e6
}

func fmtMs(ms float64) string {
	switch {
	case math.IsNaN(ms):
		return "    -  "
	case ms < 1:
		return fmt.Sprintf("%4.0fus", ms*1000)
	case ms < 1000:
		return fmt.Sprintf("%5.2fms", ms)
	}
	return fmt.Sprintf("%5.2fs ", ms/1000)
}

// startOrigin writes the certificate and the bodies, and starts nginx as the
// origin on the load CPUs.
func (r *Runner) startOrigin(ctx context.Context) error {
	var err error
	if r.cert, r.key, err = WriteCert(r.work); err != nil {
		return err
	}
	pem, err := os.ReadFile(r.cert)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	r.pool = x509.NewCertPool()
	r.pool.AppendCertsFromPEM(pem)
	www := filepath.Join(r.work, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for name, size := range Bodies {
		body := make([]byte, size)
		for i := range body {
			body[i] = 'a' + byte(i%26)
		}
		if err := os.WriteFile(filepath.Join(www, name), body, 0o644); err != nil {
			return fmt.Errorf("bench: writing body: %w", err)
		}
	}
	b := r.opt.PortBase
	r.originHTTP = fmt.Sprintf("127.0.0.1:%d", b)
	r.originHTTPS = fmt.Sprintf("127.0.0.1:%d", b+1)
	r.originH2 = fmt.Sprintf("127.0.0.1:%d", b+2)
	oc := OriginConfig{Dir: filepath.Join(r.work, "origin"), Log: r.logPath("origin-error"), NoFile: noFile(), WWW: www, Workers: len(r.opt.LoadCPUs),
		HTTP: r.originHTTP, HTTPS: r.originHTTPS, H2: r.originH2, Cert: r.cert, Key: r.key}
	if oc.Sendfile, err = SendfileBodies(r.opt.OriginSendfile); err != nil {
		return err
	}
	text, err := RenderOrigin(oc)
	if err != nil {
		return err
	}
	p, err := r.startNginx(ctx, "origin", oc.Dir, text, r.opt.LoadCPUs, oc.HTTP, oc.HTTPS, oc.H2)
	if err != nil {
		return err
	}
	r.origin = p
	return nil
}

// startNginx writes an nginx config (also into the results directory) and
// starts nginx in the foreground, waiting until its listeners accept.
func (r *Runner) startNginx(ctx context.Context, name, dir, text string, cpus []int, addrs ...string) (*Proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r.saveConfig(name+".conf", text)
	for _, a := range addrs {
		if err := portFree(a); err != nil {
			return nil, err
		}
	}
	errLog := r.logPath(name + "-error")
	p, err := r.procs.Start(name, FormatCPUs(cpus), r.logPath(name),
		"nginx", "-p", dir, "-e", errLog, "-c", conf, "-g", "daemon off; master_process on;")
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		if err := waitListening(ctx, p, a, 10*time.Second); err != nil {
			text, _ := os.ReadFile(errLog)
			r.procs.Remove(p)
			return nil, fmt.Errorf("bench: %s: %w\n%s%s", name, err, p.Tail(1000), lastLines(string(text), 5))
		}
	}
	return p, nil
}

// startMonolake starts one Monolake variant. A variant the build cannot run
// is no error: why says what it lacks, and p (if not nil) must be stopped.
// missing says why a Monolake variant cannot run at all (no binary, or a
// runtime or TLS backend the binary does not list), "" when it can.
func (r *Runner) missing(rt, stack string) string {
	if r.opt.Monolake == "" {
		return "no monolake binary"
	}
	if _, err := os.Stat(r.opt.Monolake); err != nil {
		return fmt.Sprintf("no monolake binary (%v)", err)
	}
	// The binary may fall back to another runtime rather than fail, so a
	// variant it does not list is not run under a wrong name.
	if r.haveFeatures {
		if !slices.Contains(r.features.Runtimes, buildRuntime(rt)) {
			return fmt.Sprintf("runtime %s not in this build (it has %s)", rt, strings.Join(r.features.Runtimes, ", "))
		}
		if stack != "" && !slices.Contains(r.features.TLSBackends, stack) {
			return fmt.Sprintf("TLS backend %s not in this build (it has %s)", stack, strings.Join(r.features.TLSBackends, ", "))
		}
	}
	return ""
}

// Lacking lists the Monolake variants the options ask for that this build
// cannot run, each as "monolake/RUNTIME[/BACKEND]: why": no binary, or a
// runtime or TLS backend the binary does not list (see missing). The suite
// reports them unsupported; a caller that publishes results should not take
// them for a full run.
func (r *Runner) Lacking() []string {
	modes := map[Mode]bool{}
	for _, c := range r.opt.Matrix.Cases() {
		modes[c.Mode()] = true
	}
	if r.opt.IdleConns > 0 {
		for _, m := range r.opt.idleModes() {
			modes[m] = true
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, rt := range r.opt.Runtimes {
		for _, mode := range []Mode{ModeHTTP, ModeTCP, ModeHTTPS} {
			if !modes[mode] {
				continue
			}
			for _, stack := range r.opt.stacks(mode) {
				name := variantName(rt, stack)
				if seen[name] {
					continue
				}
				seen[name] = true
				if why := r.missing(rt, stack); why != "" {
					out = append(out, name+": "+why)
				}
			}
		}
	}
	return out
}

// idleModes are the modes of the idle case (HTTP unless set).
func (o Options) idleModes() []Mode {
	if len(o.IdleModes) == 0 {
		return []Mode{ModeHTTP}
	}
	return o.IdleModes
}

// stacks are the TLS backends a Monolake variant runs with in mode: one
// per backend for HTTPS, none ("") otherwise.
func (o Options) stacks(mode Mode) []string {
	if mode == ModeHTTPS {
		return o.TLSBackends
	}
	return []string{""}
}

// variantName names a Monolake variant: "monolake/RUNTIME[/BACKEND]".
func variantName(rt, stack string) string {
	if stack == "" {
		return "monolake/" + rt
	}
	return "monolake/" + rt + "/" + stack
}

// startMonolake starts a variant that missing allows; why says why it did
// not come up (a failure).
func (r *Runner) startMonolake(ctx context.Context, t *live, mode Mode, rt, stack string, w int, listen string, cpus []int) (why string, p *Proc, err error) {
	mc := MonolakeConfig{Workers: w, Runtime: rt, Mode: mode, Listen: listen, Upstream: r.originHTTP,
		Cert: r.cert, Key: r.key, TLSStack: stack}
	text, err := RenderMonolake(mc)
	if err != nil {
		return "", nil, err
	}
	name := strings.ReplaceAll(t.name, "/", "-") + fmt.Sprintf("-%s-w%d", mode, w)
	conf := filepath.Join(r.work, name+".toml")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	r.saveConfig(name+".toml", text)
	if err := portFree(listen); err != nil {
		return "", nil, err
	}
	argv := []string{r.opt.Monolake, "run", "--config", conf, "--workers", strconv.Itoa(w), "--runtime", buildRuntime(rt)}
	if stack != "" {
		argv = append(argv, "--tls-backend", stack)
	}
	p, err = r.procs.Start(name, FormatCPUs(cpus), r.logPath(name), argv...)
	if err != nil {
		return "", nil, err
	}
	if err := waitListening(ctx, p, listen, 10*time.Second); err != nil {
		if ctx.Err() != nil {
			return "", p, ctx.Err()
		}
		return fmt.Sprintf("%v: %s", err, lastLines(p.Tail(600), 1)), p, nil
	}
	return "", p, nil
}

// logLoad appends the load generator's output to logs/load.log.
func (r *Runner) logLoad(run Run, argv []string, out string) {
	f, err := os.OpenFile(r.logPath("load"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s w=%d %s rep %d: %s\n%s\n", run.Case, run.Workers, run.Target, run.Rep, strings.Join(argv, " "), out)
}

// logPath is where the log of the named process goes: the results
// directory, so that logs outlive the run.
func (r *Runner) logPath(name string) string {
	return filepath.Join(r.opt.Dir, "logs", name+".log")
}

func (r *Runner) saveConfig(name, text string) {
	if err := os.WriteFile(filepath.Join(r.opt.Dir, "configs", name), []byte(text), 0o644); err != nil {
		r.progress("bench: saving config %s: %v", name, err)
	}
}

// probeOrFail probes a target that must work (the origin, nginx).
func (r *Runner) probeOrFail(ctx context.Context, t *live, c Case) error {
	if why := r.probe(ctx, t, c); why != "" {
		log := ""
		if t.proc != nil {
			log = " log: " + t.proc.Tail(400)
		}
		return fmt.Errorf("bench: %s on %s does not work: %s%s", t.name, c.Name(), why, log)
	}
	return nil
}

// probe sends one request for case c's body through t the way c does (TLS,
// h2) and checks the answer. It returns why it failed, or "".
func (r *Runner) probe(ctx context.Context, t *live, c Case) string {
	k := probeKey{c.Proto, c.Body}
	if why, ok := t.probed[k]; ok {
		return why
	}
	why := r.probeOnce(ctx, t, c)
	if t.probed != nil {
		t.probed[k] = why
	}
	return why
}

func (r *Runner) probeOnce(ctx context.Context, t *live, c Case) string {
	if t.proc != nil {
		if exited, err := t.proc.Exited(); exited {
			return fmt.Sprintf("exited (%v): %s", err, lastLines(t.proc.Tail(600), 1))
		}
	}
	tickets := &ticketCounter{ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs: r.pool,
			// What wrk's OpenSSL 3.0 offers, so the probe sees what the
			// load generator will negotiate.
			CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
			// A second probe must not resume, nor a ticket arrive (see
			// below).
			ClientSessionCache: tickets,
		},
		ForceAttemptHTTP2: c.H2(),
		DisableKeepAlives: true,
	}
	if !c.H2() {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	defer tr.CloseIdleConnections()
	scheme := "http"
	if c.TLS() {
		scheme = "https"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := scheme + "://" + t.addr(c) + c.Path()
	resp, why := probeGet(ctx, tr, url, Bodies[c.Body], c.H2())
	if why != "" {
		return why
	}
	if cs := resp.TLS; cs != nil {
		// Every target makes full handshakes: wrk resumes a session
		// whenever it was given a ticket, which would compare
		// resumptions with nginx's full handshakes.
		again, why := probeGet(ctx, tr, url, Bodies[c.Body], c.H2())
		if why != "" {
			return why
		}
		if again.TLS.DidResume {
			return "the target resumed a TLS session (session tickets on); the suite compares full handshakes"
		}
		// Nor may a target send tickets nobody uses: OpenSSL sends TLS
		// 1.3 tickets even with tickets and the session cache off, unless
		// told to send none, and each costs the server CPU.
		if n := tickets.n.Load(); n > 0 {
			return fmt.Sprintf("the target sent %d TLS session tickets in two handshakes with tickets off; the suite wants none", n)
		}
		// Every target must negotiate what the suite compares.
		if cs.Version != tls.VersionTLS13 || tls.CipherSuiteName(cs.CipherSuite) != TLSSuite || cs.CurveID.String() != TLSCurve {
			return fmt.Sprintf("negotiated %s %s %s, want TLS 1.3 %s %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID, TLSSuite, TLSCurve)
		}
		t.tlsInfo = fmt.Sprintf("%s %s %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID)
		if r.tlsSeen == nil {
			r.tlsSeen = map[string]bool{}
		}
		if !r.tlsSeen[t.name] {
			r.tlsSeen[t.name] = true
			r.progress("  tls %-24s %s", t.name, t.tlsInfo)
		}
	}
	return ""
}

// probeGet makes one request and checks the answer, a 200 with a body of
// size bytes: the response (body read and closed) or why it failed.
func probeGet(ctx context.Context, tr *http.Transport, url string, size int, h2 bool) (*http.Response, string) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err.Error()
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Sprintf("probe request: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("probe reading body: %v", err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Sprintf("probe got status %d", resp.StatusCode)
	case len(body) != size:
		return nil, fmt.Sprintf("probe got %d bytes, want %d", len(body), size)
	case h2 && resp.ProtoMajor != 2:
		return nil, fmt.Sprintf("no h2 (got %s)", resp.Proto)
	}
	return resp, ""
}

func portFree(addr string) error {
	if addr == "" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: port %s is taken (another run, or choose -port-base): %w", addr, err)
	}
	l.Close()
	return nil
}

// waitListening waits until addr accepts a connection, p exits, or the
// timeout passes.
func waitListening(ctx context.Context, p *Proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("exited before listening (%v)", err)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ticketCounter is a client session cache that counts the sessions stored:
// the tickets a server sent.
type ticketCounter struct {
	tls.ClientSessionCache
	n atomic.Int32
}

func (c *ticketCounter) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.n.Add(1)
	}
	c.ClientSessionCache.Put(key, cs)
}
