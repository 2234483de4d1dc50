package worker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/porttest"
	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// The test binary doubles as the worker executable: the master re-executes
// it with this variable set.
const childEnv = "MONOLAKE_WORKER_TEST_CHILD=1"

func TestMain(m *testing.M) {
	if os.Getenv("MONOLAKE_WORKER_TEST_CHILD") == "1" {
		// A worker that cannot start, once the test created this file.
		if f := os.Getenv("MONOLAKE_WORKER_TEST_FAIL"); f != "" {
			if _, err := os.Stat(f); err == nil {
				os.Exit(3)
			}
		}
		// A worker that hangs before it reports ready, until a signal or
		// its master's end: the first one started once the test created
		// this file, which it removes.
		if f := os.Getenv("MONOLAKE_WORKER_TEST_HANG"); f != "" {
			if os.Remove(f) == nil {
				io.Copy(io.Discard, os.NewFile(fdAlive, "alive"))
				os.Exit(3)
			}
		}
		os.Exit(ChildMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// echoUpstream accepts connections and echoes lines back with a prefix.
func echoUpstream(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "echo %s", line)
				}
			}()
		}
	}()
	return ln
}

func tcpConfig(t *testing.T, workers int, listen, upstream string, drain int) *config.Config {
	t.Helper()
	text := fmt.Sprintf(`[runtime]
worker_threads = %d
cpu_affinity = true
drain_timeout_sec = %d
[servers.l4]
name = "l4"
proxy_type = "tcp"
listener = { type = "socket", value = %q }
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
`, workers, drain, listen, upstream)
	c, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bgRun is a Run in a goroutine of its own: done is closed when it
// returns, and err holds its result from then on.
type bgRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// runBackground starts Run(o), cancelled (and waited for, up to 30 s) when
// the test ends if not before.
func runBackground(t *testing.T, o Options) *bgRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &bgRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = Run(ctx, o)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
		}
	})
	return r
}

// testExe is the test binary, which doubles as the worker (TestMain).
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// markerFile creates an empty file name in a temporary directory, for a
// test worker to wait on (MONOLAKE_WORKER_TEST_HANG and the like), and
// returns its path.
func markerFile(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a log sink shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// runner is a Run started by start: serving, its log in logs.
type runner struct {
	*bgRun
	logs *syncBuffer
}

func start(t *testing.T, cfg *config.Config) *runner {
	t.Helper()
	return startEnv(t, cfg)
}

// startEnv is start with env added to the workers' environment.
func startEnv(t *testing.T, cfg *config.Config, env ...string) *runner {
	t.Helper()
	ready := make(chan struct{})
	logs := &syncBuffer{}
	r := &runner{logs: logs, bgRun: runBackground(t, Options{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, nil)),
		Exe: testExe(t), ChildEnv: append([]string{childEnv}, env...), Ready: ready})}
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("Run returned before ready: %v\nlogs:\n%s", r.err, r.logs)
	case <-time.After(20 * time.Second):
		r.cancel()
		t.Fatalf("not ready in 20s; logs:\n%s", r.logs)
	}
	return r
}

func (r *runner) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(within):
		t.Fatalf("Run did not return within %v; logs:\n%s", within, r.logs)
		return nil
	}
}

// exchange sends a line through the proxy and checks the echo.
func exchange(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != "echo "+msg+"\n" {
		t.Fatalf("exchange %q: got %q, %v", msg, got, err)
	}
}

func dialEcho(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	exchange(t, c, bufio.NewReader(c), msg)
}

// children lists the pids of this process's child processes.
func children(t *testing.T) []int {
	t.Helper()
	var pids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil && !isZombieOrGone(pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// isZombieOrGone tells whether pid has exited (reaped or not yet reaped).
func isZombieOrGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 15*time.Second, what, cond)
}

func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSingleProcessServesAndDrains(t *testing.T) {
	up := echoUpstream(t)
	addr := porttest.Free(t)
	r := start(t, tcpConfig(t, 0, addr, up.Addr().String(), 10))
	dialEcho(t, addr, "hello")

	// A connection in flight when the stop comes keeps working until the
	// client ends it; new connections are refused meanwhile.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	exchange(t, c, br, "before stop")
	r.cancel()
	waitFor(t, "listener to close", func() bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	exchange(t, c, br, "during drain")
	select {
	case <-r.done:
		t.Fatalf("Run returned while a connection was in flight: %v", r.err)
	default:
	}
	c.Close()
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Fatalf("Run after drain: %v", err)
	}
}

// TestHangupKeepsRunning: SIGHUP (a closed terminal, an operator used to
// nginx's reload) does not take the proxy down; it keeps serving. By Go's
// default it exited, skipping the cleanup of Unix socket files (here it
// would end the test binary).
func TestHangupKeepsRunning(t *testing.T) {
	up := echoUpstream(t)
	addr := porttest.Free(t)
	r := start(t, tcpConfig(t, 0, addr, up.Addr().String(), 10))
	dialEcho(t, addr, "before")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	dialEcho(t, addr, "after SIGHUP")
	select {
	case <-r.done:
		t.Fatalf("Run returned on SIGHUP: %v", r.err)
	default:
	}
}

func TestDrainTimeoutCutsConnections(t *testing.T) {
	up := echoUpstream(t)
	addr := porttest.Free(t)
	r := start(t, tcpConfig(t, 0, addr, up.Addr().String(), 1))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, bufio.NewReader(c), "x")
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after the drain timeout")
	}
	if !strings.Contains(r.logs.String(), "drain timeout") {
		t.Errorf("drain timeout not logged:\n%s", r.logs)
	}
}

func TestMasterRestartsDeadWorker(t *testing.T) {
	up := echoUpstream(t)
	addr := porttest.Free(t)
	r := start(t, tcpConfig(t, 2, addr, up.Addr().String(), 5))
	pids := children(t)
	if len(pids) != 2 {
		t.Fatalf("want 2 worker processes, have %v", pids)
	}
	for _, pid := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if !bytes.Contains(b, []byte("GOMAXPROCS=1\x00")) {
			t.Errorf("worker %d runs without GOMAXPROCS=1", pid)
		}
		if cpus, err := currentAffinity(pid); err != nil || len(cpus) != 1 {
			t.Errorf("worker %d not pinned to one CPU: %v %v", pid, cpus, err)
		}
	}
	for i := range 10 {
		dialEcho(t, addr, fmt.Sprint("msg", i))
	}
	victim, _ := os.FindProcess(pids[0])
	victim.Kill()
	waitFor(t, "a replacement worker", func() bool {
		now := children(t)
		return len(now) == 2 && now[0] != pids[0] && now[1] != pids[0]
	})
	waitFor(t, "restart log", func() bool { return strings.Contains(r.logs.String(), "worker exited; restarting") })
	if !strings.Contains(r.logs.String(), "killed by signal 9") {
		t.Errorf("restart log does not say why:\n%s", r.logs)
	}
	// The replacement serves: with two workers on one SO_REUSEPORT address,
	// enough new connections reach both.
	waitFor(t, "replacement serving", func() bool { return strings.Count(r.logs.String(), "worker serving") >= 3 })
	for i := range 20 {
		dialEcho(t, addr, fmt.Sprint("after", i))
	}
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitFor(t, "workers to exit", func() bool { return len(children(t)) == 0 })
}

func TestMasterDrainsInFlight(t *testing.T) {
	up := echoUpstream(t)
	addr := porttest.Free(t)
	r := start(t, tcpConfig(t, 2, addr, up.Addr().String(), 10))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	exchange(t, c, br, "one")
	r.cancel()
	waitFor(t, "listeners to close", func() bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	exchange(t, c, br, "two, while draining")
	c.Close()
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestStartFailureIsReported: an address another process listens on fails
// the start, also when that process bound it with SO_REUSEPORT as workers
// do (a second instance of the proxy), which the workers' own binds would
// have joined, taking a share of its connections.
func TestStartFailureIsReported(t *testing.T) {
	plain, err := net.Listen("tcp", "127.0.0.1:0") // no SO_REUSEPORT: workers cannot share it
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	shared, err := netio.ListenTCP(context.Background(), "127.0.0.1:0") // as another instance's worker
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	for _, tc := range []struct {
		busy    net.Listener
		workers int
	}{{plain, 0}, {plain, 2}, {shared, 0}, {shared, 2}} {
		busy, workers := tc.busy, tc.workers
		t.Run(fmt.Sprintf("reuseport=%v/workers=%d", busy == shared, workers), func(t *testing.T) {
			cfg := tcpConfig(t, workers, busy.Addr().String(), "127.0.0.1:9", 1)
			exe, _ := os.Executable()
			// A start that wrongly succeeds serves until this ends.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := Run(ctx, Options{Config: cfg, Log: slog.New(slog.DiscardHandler), Exe: exe, ChildEnv: []string{childEnv}})
			if err == nil || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("want an address-in-use error, got %v", err)
			}
			if len(children(t)) != 0 {
				t.Fatalf("workers left running after a failed start")
			}
		})
	}
}

// twoTCPServers is a config of runtime settings and two tcp servers, a on
// addrA and b on addrB, both to up.
func twoTCPServers(runtime, addrA, addrB, up string) string {
	return fmt.Sprintf(`[runtime]
%s
[servers.a]
proxy_type = "tcp"
listener = { type = "socket", value = %q }
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
[servers.b]
proxy_type = "tcp"
listener = { type = "socket", value = %q }
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
`, runtime, addrA, up, addrB, up)
}

// TestStartFailureClosesListeners: when a later server cannot bind, the
// listener an earlier one bound is closed too: a bound listener nobody
// accepts from would queue its share of the port's connections forever.
func TestStartFailureClosesListeners(t *testing.T) {
	up := echoUpstream(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0") // no SO_REUSEPORT: b's bind fails
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, rt := range []string{"legacy", "io_uring"} {
		t.Run(rt, func(t *testing.T) { startFailureClosesListeners(t, rt, up.Addr().String(), busy.Addr().String()) })
	}
}

func startFailureClosesListeners(t *testing.T, rt, up, busy string) {
	addrA := porttest.Free(t)
	text := twoTCPServers(fmt.Sprintf("runtime_type = %q\nworker_threads = 0", rt), addrA, busy, up)
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	inst, err := startServers(cfg, newDriver(cfg, log), nil, "test", &secrets{Tickets: newTickets()}, log)
	if err == nil {
		inst.close()
		t.Fatal("startServers succeeded with b's port taken")
	}
	if c, err := net.DialTimeout("tcp", addrA, time.Second); err == nil {
		c.Close()
		t.Errorf("server a's listener %s still accepts connections after the failed start", addrA)
	}
}

func TestUnixListenerSharedByWorkers(t *testing.T) {
	up := echoUpstream(t)
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	text := fmt.Sprintf(`[runtime]
worker_threads = 2
drain_timeout_sec = 5
[servers.other]
proxy_type = "tcp"
listener = { type = "socket", value = %[3]q }
route = { upstreams = [{ endpoint = { type = "socket", value = %[2]q } }] }
[servers."u,=x"] # a key that would not survive a list of keys
proxy_type = "tcp"
listener = { type = "unix", value = %[1]q }
route = { upstreams = [{ endpoint = { type = "socket", value = %[2]q } }] }
`, sock, up.Addr().String(), porttest.Free(t))
	cfg, err := config.Parse("u.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg)
	for i := range 10 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		exchange(t, c, bufio.NewReader(c), fmt.Sprint("unix", i))
		c.Close()
	}
	// A relay still open keeps the drain going; meanwhile a new client
	// is refused at once, not left in a backlog nobody accepts from.
	held, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	exchange(t, held, bufio.NewReader(held), "held")
	r.cancel()
	waitFor(t, "the stop", func() bool { return strings.Contains(r.logs.String(), "asking workers to drain") })
	deadline := time.Now().Add(4 * time.Second) // within the drain
	for {
		c, err := net.Dial("unix", sock)
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if err == nil {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new client during the drain: %v, want refused", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	held.Close() // the drain ends
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

// TestMasterFailingRestarts: a worker that dies and then cannot be
// started again is retried with a growing delay, and the master still
// stops when asked (each failed restart used to be reported twice: the
// master then blocked on its own channel).
func TestMasterFailingRestarts(t *testing.T) {
	up := echoUpstream(t)
	addr := porttest.Free(t)
	fail := filepath.Join(t.TempDir(), "fail")
	exe := testExe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: tcpConfig(t, 1, addr, up.Addr().String(), 1),
			Log: slog.New(slog.NewTextHandler(logs, nil)), Exe: exe,
			ChildEnv: []string{childEnv, "MONOLAKE_WORKER_TEST_FAIL=" + fail}, Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v\n%s", err, logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("not ready\n%s", logs)
	}
	pids := children(t)
	if len(pids) != 1 {
		t.Fatalf("workers %v", pids)
	}
	if err := os.WriteFile(fail, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	victim, _ := os.FindProcess(pids[0])
	victim.Kill()
	waitFor(t, "three failed restarts", func() bool { return strings.Count(logs.String(), "restarting worker failed") >= 3 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the master did not stop\n%s", logs)
	}
}

// TestStopAllWaitsOnlyForUnreaped: stopAll waits on the workers' Wait
// goroutines, not on their pids. A worker reaped before the stop is not
// waited for, and its pid, which another process may have taken since, is
// not signalled. It used to poll kill(pid, 0) and /proc: a pid taken again
// made it wait out the whole grace, then kill (with a Go that signals by
// pid) the process that took it.
func TestStopAllWaitsOnlyForUnreaped(t *testing.T) {
	sleep := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Skipf("no sleep to stand in for a worker: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd
	}
	// reaped returns a proc for cmd, reaped by its Wait goroutine.
	reaped := func(cmd *exec.Cmd) *proc {
		cmd.Process.Kill()
		cmd.Wait()
		p := &proc{process: cmd.Process, done: make(chan struct{})}
		close(p.done)
		return p
	}

	// A worker that drains on SIGTERM: stopAll waits for it.
	live := sleep()
	liveP := &proc{process: live.Process, done: make(chan struct{})}
	var liveErr error
	go func() {
		liveErr = live.Wait()
		close(liveP.done)
	}()
	// A worker reaped before the stop.
	gone := reaped(sleep())
	// A worker reaped before the stop whose pid another process took: the
	// number the master kept now names that process.
	stranger := sleep()
	taken := reaped(sleep())
	taken.process.Pid = stranger.Process.Pid

	logs := &syncBuffer{}
	m := &master{log: slog.New(slog.NewTextHandler(logs, nil)), procs: []*proc{liveP, gone, taken}}
	const grace = 10 * time.Second
	begin := time.Now()
	m.stopAll(grace, nil)
	if d := time.Since(begin); d > grace/2 {
		t.Errorf("stopAll took %v with a grace of %v: it waited for a reaped worker\nlogs:\n%s", d, grace, logs)
	}
	<-liveP.done
	if s := exitStatus(liveErr); !strings.Contains(s, "signal 15") {
		t.Errorf("the live worker ended with %s, want SIGTERM", s)
	}
	// The stranger is still running: the first signal it gets is ours.
	stranger.Process.Signal(syscall.SIGUSR1)
	if s := exitStatus(stranger.Wait()); !strings.Contains(s, "signal 10") {
		t.Errorf("the process that took a reaped worker's pid ended with %s, want our SIGUSR1: stopAll signalled it", s)
	}
	if strings.Contains(logs.String(), "killing") {
		t.Errorf("stopAll killed something:\n%s", logs)
	}
}

// TestReopenWhileWorkerStarts: a SIGUSR1 that comes while a worker is
// starting does not reach it before it serves (until its Go runtime runs,
// the signal's default action would end it, and the whole start would
// fail) but once it does. The worker here is a shell that waits, then
// becomes the real one.
func TestReopenWhileWorkerStarts(t *testing.T) {
	up := echoUpstream(t)
	exe, hold := testExe(t), markerFile(t, "hold")
	logs := &syncBuffer{}
	ready := make(chan struct{})
	r := runBackground(t, Options{Config: tcpConfig(t, 1, porttest.Free(t), up.Addr().String(), 1),
		Log: slog.New(slog.NewTextHandler(logs, nil)), Ready: ready,
		Exe: "/bin/sh", ChildArgs: []string{"-c", `while [ -e "$HOLD" ]; do sleep 0.01; done; exec "$0" "$@"`, exe},
		ChildEnv: []string{childEnv, "HOLD=" + hold}})
	waitFor(t, "the worker's process", func() bool { return len(children(t)) == 1 })
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	waitFor(t, "the master to take the signal", func() bool { return strings.Contains(logs.String(), "SIGUSR1") })
	os.Remove(hold)
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("the start failed: %v\n%s", r.err, logs)
	}
	waitFor(t, "the held signal to be sent", func() bool {
		return strings.Contains(logs.String(), "a worker that was starting at the signal reopens")
	})
}

// TestStopWhileWorkerStarts: a stop asked while the master starts its
// workers, one of which hangs before it reports ready, ends the start at
// once instead of waiting up to startTimeout for the report.
func TestStopWhileWorkerStarts(t *testing.T) {
	up := echoUpstream(t)
	exe, hang := testExe(t), markerFile(t, "hang")
	logs := &syncBuffer{}
	r := runBackground(t, Options{Config: tcpConfig(t, 1, porttest.Free(t), up.Addr().String(), 1),
		Log: slog.New(slog.NewTextHandler(logs, nil)), Exe: exe,
		ChildEnv: []string{childEnv, "MONOLAKE_WORKER_TEST_HANG=" + hang}})
	waitFor(t, "the worker to hang", func() bool {
		_, err := os.Stat(hang)
		return os.IsNotExist(err)
	})
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run: %v", r.err)
		}
	case <-time.After(startTimeout / 3):
		t.Fatalf("Run did not return within %v of the stop, with startTimeout %v\n%s", startTimeout/3, startTimeout, logs)
	}
	waitFor(t, "the worker to exit", func() bool { return len(children(t)) == 0 })
}

// TestHangingRestartHoldsNoOther: while a restarted worker hangs before it
// reports ready, another that dies meanwhile is restarted, and the master
// still stops at once. The restart used to run in the master's loop: the
// rest waited up to startTimeout behind it.
func TestHangingRestartHoldsNoOther(t *testing.T) {
	up := echoUpstream(t)
	addr := porttest.Free(t)
	hang := filepath.Join(t.TempDir(), "hang")
	r := startEnv(t, tcpConfig(t, 2, addr, up.Addr().String(), 1), "MONOLAKE_WORKER_TEST_HANG="+hang)
	pids := children(t)
	if len(pids) != 2 {
		t.Fatalf("want 2 worker processes, have %v", pids)
	}
	if err := os.WriteFile(hang, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	waitFor(t, "a restarted worker to hang", func() bool {
		_, err := os.Stat(hang)
		return os.IsNotExist(err)
	})
	syscall.Kill(pids[1], syscall.SIGKILL)
	waitWithin(t, startTimeout/3, "the other worker's replacement", func() bool {
		return strings.Count(r.logs.String(), "worker serving") >= 3
	})
	dialEcho(t, addr, "while a restart hangs")
	if err := r.stop(t, startTimeout/3); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Contains(r.logs.String(), "restarting worker failed") {
		t.Errorf("a stop during a restart logged a failure:\n%s", r.logs)
	}
	waitFor(t, "workers to exit", func() bool { return len(children(t)) == 0 })
}

// TestServerFailureEndsInstance: a server whose listener stops accepting
// for a reason other than a stop is reported, so that the worker ends and
// its master starts another (it used to go quiet, serving nothing).
func TestServerFailureEndsInstance(t *testing.T) {
	up := echoUpstream(t)
	cfg := tcpConfig(t, 1, porttest.Free(t), up.Addr().String(), 1)
	log := slog.New(slog.DiscardHandler)
	inst, err := startServers(cfg, newDriver(cfg, log), nil, "test", &secrets{Tickets: newTickets()}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.close()
	inst.servers[0].ln.Close() // Accept fails: use of closed connection
	select {
	case err := <-inst.failed:
		if !strings.Contains(err.Error(), "stopped accepting") {
			t.Fatalf("reported %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a server that stopped accepting was not reported")
	}
}

// startInProcess parses a config and starts its servers in this process;
// the caller closes or drains the instance.
func startInProcess(t *testing.T, text string) *instance {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	inst, err := startServers(cfg, newDriver(cfg, log), nil, "test", &secrets{Tickets: newTickets()}, log)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestMaxConnections: runtime.max_connections caps a worker's client
// connections over all its servers: with a cap of 1, a second client of
// another server is closed at once while the first is served.
func TestMaxConnections(t *testing.T) {
	up := echoUpstream(t)
	addr1, addr2 := porttest.Free(t), porttest.Free(t)
	inst := startInProcess(t, twoTCPServers("worker_threads = 0\nmax_connections = 1", addr1, addr2, up.Addr().String()))
	defer inst.close()
	c1, err := net.Dial("tcp", addr1)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	exchange(t, c1, bufio.NewReader(c1), "first")
	c2, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c2, "second\n")
	if b, err := bufio.NewReader(c2).ReadString('\n'); err == nil {
		t.Fatalf("a connection over max_connections was served: %q", b)
	}
	exchange(t, c1, bufio.NewReader(c1), "first again")
}

// TestDrainKeepsAccessLog: a relay cut at the drain timeout still gets its
// access-log line: the drain waits for the cut connection to unwind before
// it closes the log.
func TestDrainKeepsAccessLog(t *testing.T) {
	up := echoUpstream(t)
	addr := porttest.Free(t)
	path := filepath.Join(t.TempDir(), "access.log")
	text := fmt.Sprintf(`[runtime]
worker_threads = 0
[servers.a]
proxy_type = "tcp"
listener = { type = "socket", value = %q }
access_log = %q
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
`, addr, path, up.Addr())
	inst := startInProcess(t, text)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, bufio.NewReader(c), "before the drain")
	if cut := inst.drain(50 * time.Millisecond); cut != 1 {
		t.Fatalf("drain cut %d connections, want 1", cut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"TCP %s" 200 22 17 `, up.Addr())
	if !strings.Contains(string(b), want) {
		t.Fatalf("access log %q lacks %q", b, want)
	}
}

// testCA returns a CA, a pool trusting it, and a function making leaves
// for proxy.test.
func testCA(t *testing.T) (roots *x509.CertPool, leaf func() *tlstest.Leaf) {
	t.Helper()
	ca, err := tlstest.NewCA("worker test CA")
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	return roots, func() *tlstest.Leaf {
		l, err := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
}

// installPEM writes data to name through a rename, as certificate
// managers do.
func installPEM(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(name+".tmp", name); err != nil {
		t.Fatal(err)
	}
}

// tlsTCPConfig is a config of workers processes with one tcp server
// terminating TLS with stack on addr and relaying to upstream.
func tlsTCPConfig(t *testing.T, workers int, addr, chain, key, stack, upstream string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(fmt.Sprintf(`[runtime]
worker_threads = %d
[servers.tls]
proxy_type = "tcp"
listener = { type = "socket", value = %q }
tls = { chain = %q, key = %q, stack = %q }
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
`, workers, addr, chain, key, stack, upstream)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTicketsAcrossWorkers: with two worker processes behind one
// SO_REUSEPORT listener, a client resumes its TLS session on whichever
// worker each new connection reaches: the workers' ticket keys derive from
// one secret the master hands them. Each backend compiled in.
func TestTicketsAcrossWorkers(t *testing.T) {
	up := echoUpstream(t)
	roots, leaf := testCA(t)
	l := leaf()
	dir := t.TempDir()
	chain, key := filepath.Join(dir, "chain.pem"), filepath.Join(dir, "key.pem")
	installPEM(t, chain, l.CertPEM)
	installPEM(t, key, l.KeyPEM)
	for _, stack := range tlsbackend.Available() {
		t.Run(stack, func(t *testing.T) {
			addr := porttest.Free(t)
			cfg := tlsTCPConfig(t, 2, addr, chain, key, stack, up.Addr().String())
			r := start(t, cfg)
			cc := &tls.Config{RootCAs: roots, ServerName: "proxy.test", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			// Each connection comes from a new port, so the kernel spreads
			// them over both workers: with keys of their own, about half
			// would not resume.
			const n = 16
			resumed := 0
			for i := range n + 1 {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cc)
				if err != nil {
					t.Fatalf("dial %d: %v\nlogs:\n%s", i, err, r.logs)
				}
				// The exchange also reads the ticket, sent after the
				// handshake in TLS 1.3.
				exchange(t, c, bufio.NewReader(c), "hello "+strconv.Itoa(i))
				if i > 0 && c.ConnectionState().DidResume {
					resumed++
				}
				c.Close()
			}
			if resumed != n {
				t.Errorf("%d of %d connections resumed their session", resumed, n)
			}
		})
	}
}

// TestCertFallback: a worker restarted while its certificate files do not
// load serves the last pair the master read that did, instead of failing
// to start (with one worker: the whole proxy down until the files are
// fixed), and picks the files up once they load again.
func TestCertFallback(t *testing.T) {
	up := echoUpstream(t)
	roots, leaf := testCA(t)
	for _, stack := range tlsbackend.Available() {
		t.Run(stack, func(t *testing.T) {
			dir := t.TempDir()
			chain, key := filepath.Join(dir, "chain.pem"), filepath.Join(dir, "key.pem")
			first := leaf()
			installPEM(t, chain, first.CertPEM)
			installPEM(t, key, first.KeyPEM)
			addr := porttest.Free(t)
			cfg := tlsTCPConfig(t, 1, addr, chain, key, stack, up.Addr().String())
			r := start(t, cfg)
			serial := func() string {
				t.Helper()
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "proxy.test"})
				if err != nil {
					t.Fatalf("dial: %v\nlogs:\n%s", err, r.logs)
				}
				defer c.Close()
				exchange(t, c, bufio.NewReader(c), "hello")
				return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
			}
			if s := serial(); s != first.Cert.SerialNumber.String() {
				t.Fatalf("served serial %s, want %s", s, first.Cert.SerialNumber)
			}

			installPEM(t, key, []byte("not a key\n")) // broken, and then the worker dies
			pids := children(t)
			if len(pids) != 1 {
				t.Fatalf("want 1 worker, have %v", pids)
			}
			syscall.Kill(pids[0], syscall.SIGKILL)
			waitFor(t, "the replacement worker", func() bool { return strings.Count(r.logs.String(), "worker serving") >= 2 })
			if s := serial(); s != first.Cert.SerialNumber.String() {
				t.Fatalf("after the restart: serial %s, want the master's copy %s", s, first.Cert.SerialNumber)
			}

			second := leaf() // fixed: the worker follows the files again
			installPEM(t, chain, second.CertPEM)
			installPEM(t, key, second.KeyPEM)
			waitFor(t, "the new certificate", func() bool { return serial() == second.Cert.SerialNumber.String() })
		})
	}
}

// needUring skips the test where the build or the kernel has no io_uring
// (a worker then runs on epoll), or where the environment forces epoll;
// with MONOLAKE_TEST_STRICT (CI) an io_uring build fails instead.
func needUring(t *testing.T) {
	t.Helper()
	if err := netio.UringAvailable(); err != nil {
		if netio.UringBuilt && os.Getenv(tlstest.StrictEnv) != "" {
			t.Fatalf("io_uring unusable under %s: %v", tlstest.StrictEnv, err)
		}
		t.Skipf("no io_uring here: %v", err)
	}
	if os.Getenv(netio.ForceEpollEnv) != "" {
		t.Skipf("%s is set", netio.ForceEpollEnv)
	}
}

// TestRecvBuffersReachDriver: runtime.recv_buffers and recv_buffer_kib
// size the io_uring driver's receive buffer ring.
func TestRecvBuffersReachDriver(t *testing.T) {
	cfg := tcpConfig(t, 1, "127.0.0.1:1", "127.0.0.1:2", 30) // io_uring by default
	cfg.Runtime.RecvBuffers = 64                             // as runtime.recv_buffers = 64 (TestRecvBuffers parses it)
	cfg.Runtime.RecvBufferSize = 4 << 10                     // as runtime.recv_buffer_kib = 4 (TestRecvBufferKiB)
	needUring(t)
	d := newDriver(cfg, slog.New(slog.DiscardHandler))
	defer d.Close()
	u, ok := d.(interface {
		RecvBuffers() int
		RecvBufferSize() int
	})
	if !ok {
		t.Fatalf("driver %s on a machine with io_uring", d.Name())
	}
	if n, size := u.RecvBuffers(), u.RecvBufferSize(); n != 64 || size != 4<<10 {
		t.Fatalf("receive buffers: %d of %d bytes, want 64 of 4096", n, size)
	}
}

// TestRefreshCertsKeepsValidCopy: the master's copy of a server's pair
// (what a worker started later serves) is not replaced by a pair that is
// expired or not valid yet, as a running worker's reload keeps its own;
// a valid one replaces it.
func TestRefreshCertsKeepsValidCopy(t *testing.T) {
	ca, err := tlstest.NewCA("refresh test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(opts tlstest.LeafOptions) *tlstest.Leaf {
		l, err := ca.Leaf(opts, "proxy.test")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	dir := t.TempDir()
	chain, key := filepath.Join(dir, "chain.pem"), filepath.Join(dir, "key.pem")
	cfg := tlsTCPConfig(t, 1, "127.0.0.1:1", chain, key, "gotls", "127.0.0.1:2")
	var s secrets
	install := func(l *tlstest.Leaf) {
		installPEM(t, chain, l.CertPEM)
		installPEM(t, key, l.KeyPEM)
		s.refreshCerts(cfg, slog.New(slog.DiscardHandler))
	}
	good := leaf(tlstest.LeafOptions{})
	install(good)
	for _, tc := range []struct {
		name string
		opts tlstest.LeafOptions
	}{{"expired", tlstest.LeafOptions{Expired: true}}, {"not yet valid", tlstest.LeafOptions{NotBefore: time.Now().Add(time.Hour)}}} {
		install(leaf(tc.opts))
		if !bytes.Equal(s.Certs["tls"].Chain, good.CertPEM) {
			t.Errorf("%s: the copy was replaced", tc.name)
		}
	}
	next := leaf(tlstest.LeafOptions{})
	install(next)
	if !bytes.Equal(s.Certs["tls"].Chain, next.CertPEM) {
		t.Errorf("a valid pair did not replace the copy")
	}
}
