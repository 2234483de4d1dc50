package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/porttest"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

var binary string

// TestMain builds the real binary once; the tests drive it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "monolake-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "monolake")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building monolake: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func monolake(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

// TestCheckMonolakeExample: Monolake's example config passes check, with
// the certificate files it names in place; a build without OpenSSL says
// that its native_tls server cannot run, and nothing else.
func TestCheckMonolakeExample(t *testing.T) {
	example, err := filepath.Abs("../../proxy/config/testdata/monolake-example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca, err := tlstest.NewCA("example CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(tlstest.LeafOptions{}, "monolake.example")
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "examples", "certs")
	os.MkdirAll(certs, 0o755)
	os.WriteFile(filepath.Join(certs, "server.crt"), leaf.CertPEM, 0o644)
	os.WriteFile(filepath.Join(certs, "server.key"), leaf.KeyPEM, 0o600)
	cmd := exec.Command(binary, "check", "--config", example)
	cmd.Dir = dir // the example's paths are relative
	b, err := cmd.CombinedOutput()
	out := string(b)
	for _, want := range []string{"server server_basic (monolake.cloudwego.io): http on tcp://0.0.0.0:8080", "route host=* path=/{*p}", "http+tls(openssl)"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	version, _ := monolake(t, "version")
	switch {
	case strings.Contains(version, "openssl"):
		if err != nil || !strings.Contains(out, "config OK") {
			t.Fatalf("check rejected Monolake's example config: %v\n%s", err, out)
		}
	default:
		errs := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, example+": server") {
				errs++
				if !strings.Contains(line, "not in this build") {
					t.Errorf("without OpenSSL, check should refuse only the openssl servers: %s", line)
				}
			}
		}
		if err == nil || errs == 0 {
			t.Fatalf("without OpenSSL, check passed an openssl server: %v\n%s", err, out)
		}
	}

	// Without the certificate files, check says so, as run would.
	out, err = monolake(t, "check", "--config", example)
	if err == nil || !strings.Contains(out, "examples/certs/server.crt") {
		t.Fatalf("check passed without the certificate files: %v\n%s", err, out)
	}
}

func TestCheckDefault(t *testing.T) {
	out, err := monolake(t, "check")
	if err != nil || !strings.Contains(out, "demo upstream on tcp://127.0.0.1:8081") {
		t.Fatalf("check of the embedded default: %v\n%s", err, out)
	}
}

func TestCheckBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("[runtime]\nworker_threads = 2\n\n[servers.a]\nlistener = { type = \"socket\", value = \"127.0.0.1:80\" }\nporxy_type = \"tcp\"\n"), 0o644)
	out, err := monolake(t, "check", "--config", path)
	if err == nil {
		t.Fatalf("bad config accepted:\n%s", out)
	}
	if !strings.Contains(out, path+":6: servers.a.porxy_type: unknown key") {
		t.Fatalf("error does not name file, line and reason:\n%s", out)
	}
}

// TestStrayArgument: a config given as an argument, not with --config, is
// refused, not passed over for the embedded default (which check said was
// OK and run served).
func TestStrayArgument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("[servers.a]\nporxy_type = 1\n"), 0o644)
	for _, args := range [][]string{{"check", path}, {"run", path, "--workers", "0"}} {
		out, err := monolake(t, args...)
		if err == nil || !strings.Contains(out, "unexpected argument") {
			t.Fatalf("%q: %v\n%s", args, err, out)
		}
	}
}

// TestEmptyConfigFlag: --config "" (an unset variable) is refused, not
// taken for the embedded default, which check said was OK and run served.
func TestEmptyConfigFlag(t *testing.T) {
	// run loads its config through the same function; a run that served
	// here would not return.
	for _, args := range [][]string{{"check", "--config", ""}, {"check", "-c="}} {
		out, err := monolake(t, args...)
		if err == nil || !strings.Contains(out, "--config: empty path") {
			t.Fatalf("%q: %v\n%s", args, err, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := monolake(t, "version")
	if err != nil || !strings.Contains(out, "tls backends: gotls") || !strings.Contains(out, "runtimes:") {
		t.Fatalf("version: %v\n%s", err, out)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--runtime", "kqueue"},
		{"run", "--tls-backend", "boringssl"},
		{"run", "--workers", "-5"},
	} {
		out, err := monolake(t, args...)
		if err == nil || !strings.Contains(out, "monolake:") {
			t.Errorf("%v: want a clear error, got %v\n%s", args, err, out)
		}
	}
}

// TestRunDrainsOnSIGTERM runs the real binary with two workers, keeps a
// connection in flight, sends SIGTERM (or SIGQUIT, nginx's graceful stop),
// and checks the connection still works, new ones are refused, and the
// process exits 0 once it is done.
func TestRunDrainsOnSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) { drainsOn(t, sig) })
	}
}

func drainsOn(t *testing.T, sig syscall.Signal) {
	proxyAddr, cmd, logs := runDemoProxy(t, 2)

	resp, err := http.Get("http://" + proxyAddr + "/through-proxy")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Its idle keep-alive connection would count as in flight; close it.
	http.DefaultClient.CloseIdleConnections()
	if !strings.Contains(string(body), "GET /through-proxy HTTP/1.1") {
		t.Fatalf("demo page not served through the proxy:\n%s", body)
	}

	// A keep-alive connection in flight across the SIGTERM.
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	get := func(path string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %s on the in-flight connection: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get("/before")
	cmd.Process.Signal(sig)
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", proxyAddr, time.Second)
		if err != nil {
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting 10s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	get("/during-drain")
	c.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after drain: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("did not exit after its last connection closed\n%s", logs.String())
	}
}

// TestSecondSignalForces: a second SIGTERM during the drain stops at once:
// a connection kept open would otherwise hold the drain for its 20 s.
func TestSecondSignalForces(t *testing.T) {
	for _, workers := range []int{1, 0} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { secondSignal(t, workers) })
	}
}

func secondSignal(t *testing.T, workers int) {
	proxyAddr := porttest.Free(t)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	cmd, logs := startRun(t, demoProxyConfig(t, workers, proxyAddr, fmt.Sprintf("access_log = %q", accessLog)), proxyAddr)
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A request head begun and not finished: the drain waits for it.
	fmt.Fprintf(c, "GET /held HTTP/1.1\r\nHost: x\r\n")
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	logs.waitFor(t, "drain", 10*time.Second)
	cmd.Process.Signal(syscall.SIGTERM) // at once: it must not be lost
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		if !strings.Contains(logs.String(), "asked again") {
			t.Errorf("no word of the second signal\n%s", logs.String())
		}
		// The cut connection is logged (the master used to kill its
		// workers at once, and the line was lost).
		if b, _ := os.ReadFile(accessLog); !strings.Contains(string(b), "127.0.0.1") {
			t.Errorf("no access-log line for the connection cut:\n%q\n%s", b, logs.String())
		}
		if strings.Contains(logs.String(), "did not stop in time") {
			t.Errorf("workers killed:\n%s", logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still draining 15 s after a second SIGTERM (drain timeout 20 s)\n%s", logs.String())
	}
}

// TestSecondSignalReachesStoppedWorker: the master's two requests to stop
// reach a worker that takes neither before both are sent (here a worker
// held by SIGSTOP; a busy machine does the same for a moment). Both used
// to be SIGTERM, which the kernel keeps pending once: the worker saw one,
// drained for its 20 s, and was killed.
func TestSecondSignalReachesStoppedWorker(t *testing.T) {
	proxyAddr := porttest.Free(t)
	cmd, logs := startRun(t, demoProxyConfig(t, 1, proxyAddr, ""), proxyAddr)
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A request answered through the relay: the worker holds the
	// connection (kept alive), and the drain waits for it.
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("through the relay: %q, %v", line, err)
	}
	logs.waitFor(t, `msg="worker up"`, 10*time.Second)
	var worker int
	for _, f := range strings.Fields(logs.String()[strings.Index(logs.String(), `msg="worker up"`):]) {
		if pid, ok := strings.CutPrefix(f, "pid="); ok {
			fmt.Sscan(pid, &worker)
			break
		}
	}
	if worker <= 0 {
		t.Fatalf("no worker pid in the log\n%s", logs.String())
	}
	if err := syscall.Kill(worker, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(worker, syscall.SIGCONT)
	cmd.Process.Signal(syscall.SIGTERM)
	logs.waitFor(t, "asking workers to drain", 10*time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	logs.waitFor(t, "asked again", 10*time.Second)
	syscall.Kill(worker, syscall.SIGCONT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		if !strings.Contains(logs.String(), "cutting the connections still open") || strings.Contains(logs.String(), "did not stop in time") {
			t.Errorf("the worker did not cut its connections when asked twice\n%s", logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still draining 15 s after a second SIGTERM (drain timeout 20 s)\n%s", logs.String())
	}
}

// TestLogReaderGone: when whatever reads the proxy's standard error goes
// away (a tee killed, a log shipper restarting), the master and its
// workers go on serving and stop cleanly when asked; Go's default ended
// each process at its next log line (SIGPIPE).
func TestLogReaderGone(t *testing.T) {
	proxyAddr := porttest.Free(t)
	path := filepath.Join(t.TempDir(), "m.toml")
	os.WriteFile(path, []byte(demoProxyConfig(t, 1, proxyAddr, "")), 0o644)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "--config", path)
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill() })
	var seen strings.Builder
	for sc := bufio.NewScanner(r); !strings.Contains(seen.String(), "all workers serving") && sc.Scan(); {
		seen.WriteString(sc.Text() + "\n")
	}
	if !strings.Contains(seen.String(), "all workers serving") {
		t.Fatalf("the proxy did not start:\n%s", seen.String())
	}
	r.Close()
	// The master and the worker each log on SIGUSR1.
	cmd.Process.Signal(syscall.SIGUSR1)
	time.Sleep(300 * time.Millisecond)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + proxyAddr + "/after")
	if err != nil {
		t.Fatalf("the proxy stopped serving once its log reader was gone: %v", err)
	}
	resp.Body.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v (want 0)", err)
	}
}

func waitUp(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDefaultConfigServesDemo is the README's first command: `monolake run`
// with no config proxies 127.0.0.1:8080 to the built-in demo origin, and the
// page shows the forwarding headers and the worker that served it.
func TestDefaultConfigServesDemo(t *testing.T) {
	cmd := exec.Command(binary, "run")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitUp(t, "127.0.0.1:8080")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://127.0.0.1:8080/hello")
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"GET /hello HTTP/1.1", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Proto: http", "Via: 1.1 monolake-demo (worker "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("demo page lacks %q:\n%s", want, body)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
}

// runDemoProxy starts the binary with workers worker processes on a
// config whose tcp server relays to the built-in demo origin, with extra
// flags, waits until it accepts, and returns the proxy's address, the
// process (killed at cleanup) and its log.
func runDemoProxy(t *testing.T, workers int, flags ...string) (string, *exec.Cmd, *syncLog) {
	t.Helper()
	proxyAddr := porttest.Free(t)
	cmd, logs := startRun(t, demoProxyConfig(t, workers, proxyAddr, ""), proxyAddr, flags...)
	return proxyAddr, cmd, logs
}

// demoProxyConfig is runDemoProxy's config: workers worker processes, a tcp
// server on proxyAddr relaying to the built-in demo origin, with the lines
// of extra in the server's table.
func demoProxyConfig(t *testing.T, workers int, proxyAddr, extra string) string {
	demoAddr := porttest.Free(t)
	return fmt.Sprintf(`[runtime]
worker_threads = %d
drain_timeout_sec = 20
[demo]
listener = { type = "socket", value = %q }
[servers.web]
proxy_type = "tcp"
listener = { type = "socket", value = %q }
%s
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
`, workers, demoAddr, proxyAddr, extra, demoAddr)
}

// startRun starts "monolake run" on the config text cfg with extra flags,
// waits until addr accepts, and returns the process (killed at cleanup)
// and its log.
func startRun(t *testing.T, cfg, addr string, flags ...string) (*exec.Cmd, *syncLog) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.toml")
	os.WriteFile(path, []byte(cfg), 0o644)
	cmd := exec.Command(binary, append([]string{"run", "--config", path}, flags...)...)
	logs := &syncLog{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitUp(t, addr)
	return cmd, logs
}

// TestLogLevelReachesWorkers: --log-level applies to the worker processes
// too, not only to the master.
func TestLogLevelReachesWorkers(t *testing.T) {
	_, cmd, logs := runDemoProxy(t, 1, "--log-level", "warn")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if strings.Contains(logs.String(), "level=INFO") {
		t.Fatalf("info lines logged under --log-level warn:\n%s", logs.String())
	}
}

// TestCheckBuilds: check fails on what only building the servers finds,
// as run would, and names the line: here two routes with the same path,
// and certificate files that do not load.
func TestCheckBuilds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dup.toml")
	os.WriteFile(path, []byte("[servers.a]\nlistener = { type = \"socket\", value = \"127.0.0.1:8080\" }\n"+
		"[[servers.a.routes]]\npath = \"/x\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"http://127.0.0.1:1\" } }]\n"+
		"[[servers.a.routes]]\npath = \"/x\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"http://127.0.0.1:2\" } }]\n"), 0o644)
	out, err := monolake(t, "check", "--config", path)
	if err == nil || strings.Contains(out, "config OK") || !strings.Contains(out, "duplicates") || !strings.Contains(out, `server "a" (line 6)`) {
		t.Fatalf("check passed clashing routes, or without the line of the second: %v\n%s", err, out)
	}
	os.WriteFile(path, []byte("[servers.a]\nlistener = { type = \"socket\", value = \"127.0.0.1:8080\" }\n"+
		"tls = { chain = \"/nonexistent/chain.pem\", key = \"/nonexistent/key.pem\" }\n"+
		"[[servers.a.routes]]\npath = \"/x\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"http://127.0.0.1:1\" } }]\n"), 0o644)
	out, err = monolake(t, "check", "--config", path)
	if err == nil || !strings.Contains(out, `server "a" (line 3): tls:`) || !strings.Contains(out, "no such file") {
		t.Fatalf("check passed missing certificate files, or without the tls key's line: %v\n%s", err, out)
	}
}

// TestCheckLeavesNoFiles: check looks at an access log's directory
// without creating the log (it may run as another user than the proxy).
func TestCheckLeavesNoFiles(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "access.log")
	path := filepath.Join(dir, "c.toml")
	os.WriteFile(path, []byte(fmt.Sprintf("[servers.a]\nlistener = { type = \"socket\", value = \"127.0.0.1:8080\" }\naccess_log = %q\n"+
		"[[servers.a.routes]]\npath = \"/\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"http://127.0.0.1:1\" } }]\n", log)), 0o644)
	if out, err := monolake(t, "check", "--config", path); err != nil || !strings.Contains(out, "config OK") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if _, err := os.Stat(log); !os.IsNotExist(err) {
		t.Errorf("check created the access log: %v", err)
	}
	os.WriteFile(path, []byte("[servers.a]\nlistener = { type = \"socket\", value = \"127.0.0.1:8080\" }\naccess_log = \"/nonexistent-dir/a.log\"\n"+
		"[[servers.a.routes]]\npath = \"/\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"http://127.0.0.1:1\" } }]\n"), 0o644)
	if out, err := monolake(t, "check", "--config", path); err == nil || !strings.Contains(out, "no such file or directory") || !strings.Contains(out, `server "a" (line 1)`) {
		t.Fatalf("check passed an access log in a missing directory, or without the server's line: %v\n%s", err, out)
	}
}

// syncLog collects a process's output while the test reads it.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor fails the test unless the log holds what within d.
func (l *syncLog) waitFor(t *testing.T, what string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); !strings.Contains(l.String(), what); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after %v:\n%s", what, d, l.String())
		}
	}
}

// TestAccessLogReopen: logrotate's create mode renames the access log and
// sends SIGUSR1 to the master, as with nginx: the workers reopen the path,
// and the next lines land in the new file, not the renamed one.
func TestAccessLogReopen(t *testing.T) {
	dir := t.TempDir()
	proxyAddr, demoAddr := porttest.Free(t), porttest.Free(t)
	logPath := filepath.Join(dir, "access.log")
	cfg := fmt.Sprintf(`[runtime]
worker_threads = 2
[demo]
listener = { type = "socket", value = %q }
[servers.web]
listener = { type = "socket", value = %q }
access_log = %q
[[servers.web.routes]]
path = "/{*p}"
upstreams = [{ endpoint = { type = "socket", value = %q } }]
`, demoAddr, proxyAddr, logPath, demoAddr)
	cmd, logs := startRun(t, cfg, proxyAddr)
	get := func(p string) {
		t.Helper()
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + proxyAddr + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitLog := func(file, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if b, _ := os.ReadFile(file); strings.Contains(string(b), want) {
				return
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(file)
				t.Fatalf("%s lacks %q:\n%s\nproxy log:\n%s", filepath.Base(file), want, b, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Every worker serving, its SIGUSR1 handler set, before the signal.
	logs.waitFor(t, "all workers serving", 15*time.Second)
	get("/before")
	waitLog(logPath, "GET /before")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "access logs reopened") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the workers did not say they reopened their logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 4 { // both workers, whichever accepts
		get(fmt.Sprintf("/after%d", i))
	}
	waitLog(logPath, "GET /after")
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
	if b, _ := os.ReadFile(logPath + ".1"); strings.Contains(string(b), "/after") {
		t.Fatalf("lines after the reopen went to the renamed file:\n%s", b)
	}
}

// TestCheckShowsWarnings: check prints what a worker would warn of when it
// builds the servers (here a certificate that has expired), not only the
// errors; it still passes.
func TestCheckShowsWarnings(t *testing.T) {
	ca, err := tlstest.NewCA("check CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(tlstest.LeafOptions{Expired: true}, "proxy.test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chain, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(chain, leaf.CertPEM, 0o600)
	os.WriteFile(key, leaf.KeyPEM, 0o600)
	path := filepath.Join(dir, "m.toml")
	os.WriteFile(path, []byte(fmt.Sprintf(`[servers.a]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = %q, key = %q }
[[servers.a.routes]]
path = "/"
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:9000" } }]
`, chain, key)), 0o644)
	out, err := monolake(t, "check", "--config", path)
	if err != nil || !strings.Contains(out, "config OK") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if !strings.Contains(out, "has expired") {
		t.Fatalf("check says nothing of the expired certificate:\n%s", out)
	}
}
