package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/netio"
)

// File descriptors a worker inherits, in this order.
const (
	fdConfig   = 3 // memfd with the config text
	fdReady    = 4 // worker writes "ok\n" or "err MESSAGE\n", then closes
	fdAlive    = 5 // worker reads; EOF means the master is gone
	fdSecrets  = 6 // memfd with the secrets (secrets.go)
	fdFirstLis = 7 // inherited listeners (Unix sockets), in --inherit order
)

// startTimeout bounds how long a worker may take to report ready.
const startTimeout = 15 * time.Second

type master struct {
	o       Options
	log     *slog.Logger
	cfgFile *os.File
	unixIdx []string // indexes in ServerNames of the Unix listeners' servers, for --inherit
	// unixFiles are read by spawn under mu until stopping is set.
	unixFiles []*os.File
	unixSocks []netio.SocketFile // removed by cleanup, if still ours
	cpus      []int
	done      chan struct{} // closed when runMaster returns

	// Restarts run in goroutines of their own, beside runMaster's loop.
	secretsMu sync.Mutex
	secrets   secrets // what workers get in fdSecrets

	mu       sync.Mutex
	stopping bool     // set by stopAll: no worker starts after it
	procs    []*proc  // by worker id; nil while restarting
	exited   chan int // worker id whose process was reaped
}

// proc is a started worker process. Its process's Signal does nothing
// once Wait reaped it (os.Process checks, under a lock the reaper takes),
// so a pid given to another process since is never signalled.
type proc struct {
	process *os.Process
	// done is closed once the process was reaped: from then on its pid
	// may name another process.
	done chan struct{}
	// status is how the process ended (exitStatus), set before done is
	// closed.
	status string

	// Under master.mu: serving is set once the worker reported ready;
	// reopen, a SIGUSR1 held for it until then.
	serving, reopen bool
}

// reaped tells whether p's process was reaped.
func (p *proc) reaped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func runMaster(ctx context.Context, o Options, force <-chan struct{}) error {
	cfg := o.Config
	m := &master{o: o, log: o.Log, done: make(chan struct{}), procs: make([]*proc, cfg.Runtime.Workers), exited: make(chan int, cfg.Runtime.Workers)}
	defer close(m.done)
	// From the start: a SIGUSR1 before the handler would be lost.
	onSignal(syscall.SIGUSR1, m.done, func() {
		// The workers write the access logs: they reopen them. One still
		// starting gets it once it serves (see spawn): until its Go
		// runtime runs, SIGUSR1 would end it, and until it reports ready
		// it may not have its handler yet.
		m.mu.Lock()
		for _, p := range m.procs {
			switch {
			case p == nil:
			case p.serving:
				p.process.Signal(syscall.SIGUSR1)
			default:
				p.reopen = true
			}
		}
		m.mu.Unlock()
		m.log.Info("SIGUSR1: asked the workers to reopen their access logs")
	})
	if cfg.Runtime.CPUAffinity {
		m.cpus = allowedCPUs()
	}
	defer m.cleanup()
	if err := m.prepare(); err != nil {
		return err
	}
	m.log.Info("master starting workers", "pid", os.Getpid(), "workers", cfg.Runtime.Workers, "cpus", m.cpus)
	// Start every worker and wait for each to serve; a worker that cannot
	// start (a port in use, a bad certificate) stops the whole start.
	for id := range cfg.Runtime.Workers {
		err := m.spawn(ctx, id)
		if ctx.Err() != nil {
			m.stop(force) // those that serve drain
			return nil
		}
		if err != nil {
			m.stopAll(time.Second, force)
			return err
		}
	}
	if o.Ready != nil {
		close(o.Ready)
	}
	m.log.Info("all workers serving")

	backoff := make([]time.Duration, cfg.Runtime.Workers)
	started := make([]time.Time, cfg.Runtime.Workers)
	for i := range started {
		started[i] = time.Now()
	}
	restart := make(chan int, cfg.Runtime.Workers)
	refresh := time.NewTicker(refreshEvery)
	defer refresh.Stop()
	for {
		select {
		case <-refresh.C:
			m.secretsMu.Lock()
			m.secrets.refreshCerts(cfg, m.log)
			// Drop the secrets of periods gone by: the master keeps no
			// more than a worker.
			m.secrets.Tickets.Advance(time.Now())
			m.secretsMu.Unlock()
		case <-ctx.Done():
			m.stop(force)
			return nil
		case id := <-m.exited:
			if ctx.Err() != nil {
				continue // stopping: the next round drains the rest
			}
			// Restart at once, but with a growing delay if it keeps dying
			// young, so a crash loop does not spin.
			if time.Since(started[id]) > 10*time.Second {
				backoff[id] = 0
			}
			delay := backoff[id]
			backoff[id] = min(max(2*backoff[id], 100*time.Millisecond), 5*time.Second)
			time.AfterFunc(delay, func() { restart <- id })
		case id := <-restart:
			if ctx.Err() != nil {
				continue
			}
			started[id] = time.Now()
			// Not in this loop: a worker may take up to startTimeout to
			// start, and meanwhile a stop, a refresh and the other
			// workers' exits are served.
			go m.restart(ctx, id)
		}
	}
}

// restart starts worker id again; runMaster runs it in a goroutine.
func (m *master) restart(ctx context.Context, id int) {
	err := m.spawn(ctx, id)
	if err == nil || ctx.Err() != nil {
		return // stopping: stopAll ends what started
	}
	m.log.Error("restarting worker failed; will retry", "worker", id, "err", err)
	// A worker that started and then failed is reported by its Wait
	// goroutine; one that never started, here.
	if errors.Is(err, errNotStarted) {
		m.reportExit(id)
	}
}

// reportExit tells runMaster's loop that worker id is down, unless
// runMaster returned.
func (m *master) reportExit(id int) {
	select {
	case m.exited <- id:
	case <-m.done:
	}
}

// stop drains the workers.
func (m *master) stop(force <-chan struct{}) {
	m.log.Info("stopping: asking workers to drain", "timeout", m.o.Config.Runtime.DrainTimeout)
	m.stopAll(m.o.Config.Runtime.DrainTimeout+5*time.Second, force)
	m.log.Info("stopped")
}

// prepare writes the config into a memfd and binds the Unix listeners,
// which workers share (SO_REUSEPORT does not spread Unix sockets).
func (m *master) prepare() error {
	// Workers read it; none may change it under the others.
	cf, err := sealedFile("monolake-config", m.o.Config.Raw)
	if err != nil {
		return fmt.Errorf("worker: config memfd: %w", err)
	}
	m.cfgFile = cf
	// One ticket ratchet for the master's life, so that a client resumes
	// its session on any worker, also one restarted since.
	m.secrets.Tickets = newTickets()
	for _, key := range m.o.Config.ServerNames {
		s := m.o.Config.Servers[key]
		if s.Listener.Type != config.TypeUnix {
			continue
		}
		ln, err := netio.ListenUnix(s.Listener.Value)
		if err != nil {
			return fmt.Errorf("server %q: %w", key, err)
		}
		f, err := netio.File(ln)
		// Keep the socket file until the master exits: close the listener
		// object without unlinking, and unlink in cleanup.
		ln.SetUnlinkOnClose(false)
		ln.Close()
		m.unixSocks = append(m.unixSocks, ln.Socket())
		if err != nil {
			return err
		}
		m.unixIdx = append(m.unixIdx, strconv.Itoa(slices.Index(m.o.Config.ServerNames, key)))
		m.unixFiles = append(m.unixFiles, f)
	}
	return nil
}

// closeUnix closes the master's copies of the Unix listeners: once the
// workers have closed theirs too, a client is refused at once instead of
// waiting in a backlog nobody accepts from. The files stay until cleanup.
func (m *master) closeUnix() {
	for _, f := range m.unixFiles {
		f.Close()
	}
	m.unixFiles = nil
}

func (m *master) cleanup() {
	if m.cfgFile != nil {
		m.cfgFile.Close()
	}
	m.closeUnix()
	for _, s := range m.unixSocks {
		s.Remove()
	}
}

// errNotStarted marks a spawn error from before the worker's process
// started: no Wait goroutine reports its exit.
var errNotStarted = errors.New("not started")

// errStopping is why spawn starts no worker once stopAll began.
var errStopping = errors.New("stopping")

// spawn starts worker id and waits until it serves or fails to, or ctx is
// done: a worker started then is stopAll's to end. It starts none once
// stopAll began.
func (m *master) spawn(ctx context.Context, id int) error {
	cpu := -1
	if len(m.cpus) > 0 {
		cpu = m.cpus[id%len(m.cpus)]
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("worker %d: %w: %w", id, errNotStarted, err)
	}
	defer readyR.Close()
	aliveR, aliveW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return fmt.Errorf("worker %d: %w: %w", id, errNotStarted, err)
	}
	notStarted := func(err error) error {
		readyW.Close()
		aliveR.Close()
		aliveW.Close()
		return fmt.Errorf("worker %d: %w: %w", id, errNotStarted, err)
	}
	// aliveW stays open in the master for the worker's life: it is never
	// written; the worker sees EOF only when the master is gone.
	args := append(append([]string(nil), m.o.ChildArgs...),
		"--id", strconv.Itoa(id), "--cpu", strconv.Itoa(cpu),
		"--runtime", m.o.Config.Runtime.Type, "--source", m.o.Config.Source)
	if len(m.unixIdx) > 0 {
		args = append(args, "--inherit", strings.Join(m.unixIdx, ","))
	}
	args = append(args, overrideArgs(m.o.Config)...)
	cmd := exec.Command(m.o.Exe, args...)
	if m.o.Exe == "/proc/self/exe" {
		cmd.Args[0] = os.Args[0] // for ps
	}
	// A group of its own: a Ctrl-C in the terminal reaches the master
	// alone, which drains the workers; it does not kill them mid-start.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS=1"), m.o.ChildEnv...)
	sf, err := m.secretsFile()
	if err != nil {
		return notStarted(fmt.Errorf("secrets: %w", err))
	}
	defer sf.Close() // the worker has its copy once started
	p, err := m.startRegistered(ctx, id, cmd, m.cfgFile, readyW, aliveR, sf)
	if err != nil {
		return notStarted(err)
	}
	readyW.Close()
	aliveR.Close()

	go func() {
		err := cmd.Wait()
		p.status = exitStatus(err)
		close(p.done)
		aliveW.Close()
		m.mu.Lock()
		if m.procs[id] == p {
			m.procs[id] = nil
		}
		stopping := m.stopping
		m.mu.Unlock()
		if stopping {
			return
		}
		m.log.Error("worker exited; restarting", "worker", id, "pid", cmd.Process.Pid, "status", p.status)
		m.reportExit(id)
	}()

	readyR.SetReadDeadline(time.Now().Add(startTimeout))
	// A stop does not wait for the report.
	cancel := context.AfterFunc(ctx, func() { readyR.SetReadDeadline(time.Now()) })
	line, err := readLine(readyR)
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("worker %d (pid %d): start cut short: %w", id, cmd.Process.Pid, ctx.Err())
	case err != nil:
		p.process.Signal(os.Kill)
		// Say how it ended, if it did (a crash, a signal).
		t := time.NewTimer(time.Second)
		select {
		case <-p.done:
			err = fmt.Errorf("%w (%s)", err, p.status)
		case <-t.C:
		}
		t.Stop()
		return fmt.Errorf("worker %d (pid %d) did not start: %w", id, cmd.Process.Pid, err)
	case strings.HasPrefix(line, "err "):
		p.process.Signal(os.Kill)
		return fmt.Errorf("worker %d: %s", id, strings.TrimPrefix(line, "err "))
	case line != "ok":
		p.process.Signal(os.Kill)
		return fmt.Errorf("worker %d: unexpected start report %q", id, line)
	}
	m.mu.Lock()
	p.serving = true
	reopen := p.reopen
	m.mu.Unlock()
	m.log.Info("worker serving", "worker", id, "pid", cmd.Process.Pid, "cpu", cpu)
	if reopen {
		// Its handler is set before it reports ready (ChildMain).
		p.process.Signal(syscall.SIGUSR1)
		m.log.Info("SIGUSR1: a worker that was starting at the signal reopens its access logs now", "worker", id)
	}
	return nil
}

// secretsFile refreshes the secrets and writes them for a new worker.
func (m *master) secretsFile() (*os.File, error) {
	m.secretsMu.Lock()
	defer m.secretsMu.Unlock()
	m.secrets.refreshCerts(m.o.Config, m.log)
	m.secrets.Tickets.Advance(time.Now()) // a new worker starts from now
	return m.secrets.file()
}

// startRegistered starts cmd as worker id, with files and the Unix
// listeners from fd 3 on, and registers it in procs, in one step under
// mu: every process started is in the snapshot stopAll takes, and none
// starts after it (nor once ctx is done).
func (m *master) startRegistered(ctx context.Context, id int, cmd *exec.Cmd, files ...*os.File) (*proc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping || ctx.Err() != nil {
		return nil, errStopping
	}
	cmd.ExtraFiles = append(files, m.unixFiles...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", m.o.Exe, err)
	}
	p := &proc{process: cmd.Process, done: make(chan struct{})}
	m.procs[id] = p
	return p, nil
}

// overrideArgs passes settings that flags may have changed after parsing.
func overrideArgs(c *config.Config) []string {
	if c.TLSStack == "" {
		return nil
	}
	return []string{"--tls-backend", c.TLSStack}
}

// readLine reads a line from r, by r's read deadline.
func readLine(r *os.File) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return "", errors.New("exited before reporting ready")
		}
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
		}
		return fmt.Sprintf("exit code %d", ee.ExitCode())
	}
	if err != nil {
		return err.Error()
	}
	return "exit code 0"
}

// stopAll sends SIGTERM to every worker and waits up to grace for them to
// exit, then kills the rest. It waits on the workers' Wait goroutines, not
// on their pids: a pid already reaped may name another process.
func (m *master) stopAll(grace time.Duration, force <-chan struct{}) {
	m.mu.Lock()
	m.stopping = true
	procs := slices.Clone(m.procs)
	m.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			p.process.Signal(syscall.SIGTERM)
		}
	}
	m.closeUnix()
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	late := false // past the deadline: kill the rest at once
	for _, p := range procs {
		if p == nil {
			continue
		}
	wait:
		for !late {
			select {
			case <-p.done:
				break wait
			case <-deadline.C:
				late = true
			case <-force:
				// Asked again: the workers cut their connections (a
				// second stop signal, see ChildMain) and write their
				// lines, as a single process does; killed only if they
				// do not. SIGINT, not another SIGTERM: a worker that has
				// not taken the first yet would get the two as one (the
				// kernel keeps one of each signal pending), and drain.
				force = nil
				m.log.Warn("asked again: workers cut their connections without waiting for the drain")
				for _, q := range procs {
					if q != nil && !q.reaped() {
						q.process.Signal(syscall.SIGINT)
					}
				}
				deadline.Reset(forcedGrace)
			}
		}
		if !p.reaped() {
			m.log.Warn("worker did not stop in time; killing", "pid", p.process.Pid)
			p.process.Signal(os.Kill)
		}
	}
}

// forcedGrace is how long workers asked twice to stop have before they are
// killed: their cut connections unwind (cutUnwind), and the rest closes.
const forcedGrace = cutUnwind + 3*time.Second

// sealedFile returns a memfd holding data, sealed against any change, for
// workers to inherit: unlike an argument or the environment, it is not
// shown by ps nor passed on to other children.
func sealedFile(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
