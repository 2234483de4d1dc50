package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"
)

// The idle case measures what idle keep-alive client connections cost a
// proxy in memory: n connections each make one request through it and then
// stay open without traffic; the resident set of the proxy's process tree
// is read before they connect and once they have been idle for IdleSettle.
// The difference over n is the figure.

// IdleSettle is how long the connections stay idle before the proxy's
// resident set is read: long enough for a collector cycle and for what a
// proxy frees on idle connections (buffers, timers) to go.
const IdleSettle = 3 * time.Second

// IdleResult is one target's figure.
type IdleResult struct {
	Target   string  `json:"target"`
	Mode     Mode    `json:"mode,omitempty"` // ModeHTTP, or ModeHTTPS for the TLS case`
	Conns    int     `json:"conns"`
	BaseRSS  int64   `json:"base_rss_bytes"` // before the connections
	IdleRSS  int64   `json:"idle_rss_bytes"` // with them open and idle
	PerConn  float64 `json:"rss_per_conn_bytes"`
	Opened   int     `json:"opened"` // connections that completed their request
	Status   string  `json:"status"`
	Detail   string  `json:"detail,omitempty"`
	Settings string  `json:"settings,omitempty"`
}

// TreeRSS returns the resident set size of root and all its descendants.
func TreeRSS(root int) (int64, error) {
	var total int64
	for _, pid := range TreePIDs(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			if pid == root {
				return 0, fmt.Errorf("bench: process %d: %w", pid, err)
			}
			continue // a child that just exited
		}
		kb, err := ParseVmRSS(b)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/%d/status: %w", pid, err)
		}
		total += kb << 10
	}
	return total, nil
}

// ParseVmRSS returns the VmRSS line of /proc/PID/status, in KiB.
func ParseVmRSS(b []byte) (int64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("bench: malformed VmRSS line %q", bytes.TrimSpace(line))
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, errors.New("bench: no VmRSS line (a kernel thread or a zombie?)")
}

// IdleConns is a set of open client connections that made one request
// each.
type IdleConns struct {
	conns []net.Conn
}

// OpenIdle opens n connections to addr, at most parallel at a time, and on
// each sends one keep-alive GET for path and reads the whole response,
// which must be a 200. With tc the connections are TLS ones, with a full
// handshake each. It returns the connections that did so; err reports the
// first failure (the set is still returned, to be closed).
func OpenIdle(ctx context.Context, addr, path string, n, parallel int, tc *tls.Config) (*IdleConns, error) {
	s := &IdleConns{conns: make([]net.Conn, 0, n)}
	if tc != nil && tc.ServerName == "" {
		tc = tc.Clone()
		tc.ServerName, _, _ = net.SplitHostPort(addr) // the suite's certificate names 127.0.0.1
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, max(parallel, 1))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: monobench-idle\r\n\r\n"
	for range n {
		sem <- struct{}{}
		mu.Lock()
		stop := firstErr != nil || ctx.Err() != nil
		mu.Unlock()
		if stop {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := oneRequest(ctx, addr, req, tc)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			s.conns = append(s.conns, c)
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return s, firstErr
}

func oneRequest(ctx context.Context, addr, req string, tc *tls.Config) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if tc != nil {
		t := tls.Client(c, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = t
	}
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	// A reader of its own per connection: the response is read whole, so
	// nothing is left buffered, and the reader goes with this function.
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		c.Close()
		return nil, err
	case resp.StatusCode != http.StatusOK:
		c.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	case resp.Close:
		c.Close()
		return nil, errors.New("the proxy closed the connection after the request")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// Len is the number of open connections.
func (s *IdleConns) Len() int { return len(s.conns) }

// Alive checks, without blocking, that the connections are still open: a
// connection the proxy closed reads EOF. It returns how many were closed.
func (s *IdleConns) Alive() (closed int) {
	var b [1]byte
	for _, c := range s.conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(b[:])
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) {
			closed++
		}
	}
	return closed
}

// Close closes every connection.
func (s *IdleConns) Close() {
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// IdleTLSConfig is the client side of the TLS idle case: TLS 1.3 with the
// suite's curve (crypto/tls would offer a post-quantum hybrid first, which
// OpenSSL 3.0 lacks), HTTP/1.1, the suite's certificate verified against
// roots, no resumption.
func IdleTLSConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		RootCAs:          roots,
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
		NextProtos:       []string{"http/1.1"},
	}
}

// RunIdle measures n idle keep-alive connections through nginx and each
// Monolake runtime (and, with ModeHTTPS, each TLS backend), one worker
// each, one after the other. The origin must be running (Run starts it;
// RunIdle does too when it is not). Every target, also one that did not
// start, has a result; a failed one counts in Failures. nginx failing its
// probe is an error: the comparison has no base.
func (r *Runner) RunIdle(ctx context.Context, n int, mode Mode) ([]IdleResult, error) {
	if r.origin == nil {
		if err := r.startOrigin(ctx); err != nil {
			return nil, err
		}
	}
	c := Case{Proto: ProtoHTTP1, Conns: n, Body: "0"}
	if mode == ModeHTTPS {
		c.Proto = ProtoHTTPS
	}
	targets, absent, started, err := r.startTargets(ctx, 1, mode)
	defer func() {
		for _, p := range started {
			r.procs.Remove(p)
		}
	}()
	if err != nil {
		return nil, err
	}
	var out []IdleResult
	for _, v := range absent {
		r.sayNotStarted("idle "+string(mode), v)
		out = append(out, r.idleResult(IdleResult{Target: v.name, Mode: mode, Conns: n, Status: v.status, Detail: v.why}))
	}
	for _, t := range targets {
		res, err := r.idleTarget(ctx, t, c, n)
		if err != nil {
			return out, err
		}
		r.progress("idle %-5s %-24s %6d conns  RSS %s -> %s  %s per connection%s", mode, res.Target, res.Opened,
			fmtBytes(float64(res.BaseRSS)), fmtBytes(float64(res.IdleRSS)), fmtBytes(res.PerConn), failNote(res))
		out = append(out, r.idleResult(res))
	}
	return out, nil
}

// idleTarget probes t and measures it on the idle case c. A probe that
// fails is an error for nginx and a failed result for Monolake.
func (r *Runner) idleTarget(ctx context.Context, t *live, c Case, n int) (IdleResult, error) {
	if why := r.probe(ctx, t, c); why != "" {
		if t.name == TargetNginx {
			return IdleResult{}, fmt.Errorf("bench: nginx on the idle case (%s) does not work: %s", c.Mode(), why)
		}
		return IdleResult{Target: t.name, Mode: c.Mode(), Conns: n, Status: StatusFailed, Detail: "probe: " + why}, nil
	}
	return r.measureIdle(ctx, t, c, n)
}

// idleResult counts res in Failures when it failed, and returns it.
func (r *Runner) idleResult(res IdleResult) IdleResult {
	if res.Status == StatusFailed {
		r.Failures++
	}
	return res
}

func failNote(res IdleResult) string {
	if res.Status == StatusOK {
		return ""
	}
	return "  FAILED: " + res.Detail
}

func (r *Runner) measureIdle(ctx context.Context, t *live, c Case, n int) (IdleResult, error) {
	res := IdleResult{Target: t.name, Mode: ModeHTTP, Conns: n, Status: StatusOK}
	var tc *tls.Config
	if c.TLS() {
		res.Mode, tc = ModeHTTPS, IdleTLSConfig(r.pool)
	}
	pid := t.proc.PID()
	// Let what the probe and start-up left settle first.
	time.Sleep(time.Second)
	base, err := TreeRSS(pid)
	if err != nil {
		return res, err
	}
	set, openErr := OpenIdle(ctx, t.addr(c), "/0", n, 50, tc)
	defer set.Close()
	res.Opened = set.Len()
	select {
	case <-time.After(IdleSettle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	idle, err := TreeRSS(pid)
	if err != nil {
		return res, err
	}
	res.BaseRSS, res.IdleRSS = base, idle
	if res.Opened > 0 {
		res.PerConn = float64(idle-base) / float64(res.Opened)
	}
	switch closed := set.Alive(); {
	case openErr != nil:
		res.Status, res.Detail = StatusFailed, fmt.Sprintf("%d of %d connections opened: %v", res.Opened, n, openErr)
	case closed > 0:
		res.Status, res.Detail = StatusFailed, fmt.Sprintf("the proxy closed %d of the idle connections", closed)
	}
	return res, nil
}

func fmtBytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.2f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// WriteIdleTable writes the idle results as a table, with each target's
// figure over nginx's in the same mode.
func WriteIdleTable(w io.Writer, res []IdleResult) error {
	nginx := map[Mode]float64{}
	for _, x := range res {
		if x.Target == TargetNginx && x.Status == StatusOK {
			nginx[x.modeOrHTTP()] = x.PerConn
		}
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "idle keep-alive connections\tmode\ttarget\tRSS before\tRSS idle\tper connection\tvs nginx\tnote")
	for _, x := range res {
		ratio := "-"
		if ng := nginx[x.modeOrHTTP()]; ng > 0 && x.Target != TargetNginx && x.Status == StatusOK {
			ratio = fmt.Sprintf("×%.2f", x.PerConn/ng)
		}
		note := x.Status
		if x.Detail != "" {
			note += ": " + truncate(x.Detail, 80)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Opened, x.modeOrHTTP(), x.Target, fmtBytes(float64(x.BaseRSS)),
			fmtBytes(float64(x.IdleRSS)), fmtBytes(x.PerConn), ratio, note)
	}
	return tw.Flush()
}

// modeOrHTTP is the result's mode; results written before the TLS case
// have none and are plain HTTP.
func (x IdleResult) modeOrHTTP() Mode {
	if x.Mode == "" {
		return ModeHTTP
	}
	return x.Mode
}
