package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a process the suite started: in its own process group, pinned to
// a CPU list with taskset, its output going to a log file.
type Proc struct {
	Name string
	Log  string // path of the combined stdout and stderr
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done closes
}

// Procs tracks every process the suite started so that all are killed on
// the way out. Its methods may be called from any goroutine.
type Procs struct {
	mu   sync.Mutex
	list []*Proc
}

// Start runs argv pinned to cpus ("0", "0-1", "3,5") in a new process group.
// taskset execs the command, so the pid is the command's own.
func (ps *Procs) Start(name, cpus, logPath string, argv ...string) (*Proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bench: starting %s: %w", name, err)
	}
	defer logf.Close()
	args := append([]string{"-c", cpus}, argv...)
	cmd := exec.Command("taskset", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Tail returns the last n bytes of the process's log, for messages.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Stop ends the process, its process group and any descendant that left the
// group: SIGTERM, then SIGKILL after grace. It waits for the process itself.
func (p *Proc) Stop(grace time.Duration) {
	if exited, _ := p.Exited(); exited {
		killGroup(p.PID(), syscall.SIGKILL) // stragglers of an exited leader
		return
	}
	pids := TreePIDs(p.PID())
	killGroup(p.PID(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	killGroup(p.PID(), syscall.SIGKILL)
	for _, pid := range pids {
		if pid != p.PID() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	<-p.done
}

func killGroup(pgid int, sig syscall.Signal) {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(os.Stderr, "bench: signalling process group %d: %v\n", pgid, err)
	}
}

// Remove stops p and forgets it.
func (ps *Procs) Remove(p *Proc) {
	p.Stop(3 * time.Second)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, q := range ps.list {
		if q == p {
			ps.list = append(ps.list[:i], ps.list[i+1:]...)
			break
		}
	}
}

// StopAll stops every process still running, newest first.
func (ps *Procs) StopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(list) - 1; i >= 0; i-- {
		wg.Go(func() { list[i].Stop(3 * time.Second) })
	}
	wg.Wait()
}

// RunResult is the outcome of a command run to completion.
type RunResult struct {
	Output string
	CPU    time.Duration // user+system time of the process and its children
}

// RunCommand runs argv pinned to cpus in its own process group and returns its
// output. Cancelling ctx kills the whole group, and so does timeout passing
// (0: no limit): the error then wraps context.DeadlineExceeded while ctx
// itself is still live, so a caller can tell a hung run from an interrupted
// suite.
func RunCommand(ctx context.Context, timeout time.Duration, cpus string, argv ...string) (RunResult, error) {
	runCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	args := append([]string{"-c", cpus}, argv...)
	cmd := exec.CommandContext(runCtx, "taskset", args...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var r RunResult
	r.Output = out.String()
	if cmd.ProcessState != nil {
		r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	switch {
	case err == nil:
		return r, nil
	case ctx.Err() != nil:
		return r, ctx.Err()
	case runCtx.Err() != nil:
		return r, fmt.Errorf("bench: %s did not finish within %v (killed): %w", argv[0], timeout, runCtx.Err())
	}
	return r, fmt.Errorf("bench: %s: %w: %s", argv[0], err, lastLines(r.Output, 5))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
