package bench

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func alive(pid int) bool {
	// A zombie still answers signal 0; read its state too.
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stats, err := readStats("/proc")
	if err != nil {
		return true
	}
	s, ok := stats[pid]
	return ok && s.State != 'Z'
}

// TestProcsStopKillsTree starts a shell with a child that ignores SIGTERM
// and checks that Stop leaves neither running.
func TestProcsStopKillsTree(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed:", err)
	}
	var ps Procs
	defer ps.StopAll()
	log := filepath.Join(t.TempDir(), "sh.log")
	p, err := ps.Start("sh", "0", log, "sh", "-c", `sh -c 'trap "" TERM; sleep 60' & echo child $!; wait`)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if f := strings.Fields(p.Tail(100)); len(f) == 2 {
			child, _ = strconv.Atoi(f[1])
			break
		}
	}
	if child == 0 {
		t.Fatalf("no child pid in the log: %q", p.Tail(100))
	}
	if pids := TreePIDs(p.PID()); len(pids) < 2 {
		t.Errorf("TreePIDs(%d) = %v, want the shell and its children", p.PID(), pids)
	}
	start := time.Now()
	p.Stop(200 * time.Millisecond)
	if exited, _ := p.Exited(); !exited {
		t.Error("process still running after Stop")
	}
	time.Sleep(50 * time.Millisecond)
	if alive(child) {
		t.Errorf("child %d survived Stop", child)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop took %v", d)
	}
}

func TestRunCommandCancel(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := RunCommand(ctx, 0, "0", "sh", "-c", "sleep 60 & sleep 60")
	if err == nil {
		t.Fatal("RunCommand of a cancelled command succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("RunCommand returned after %v, want soon after the cancel", d)
	}
	res, err := RunCommand(context.Background(), 0, "0", "sh", "-c", "echo hello")
	if err != nil || strings.TrimSpace(res.Output) != "hello" {
		t.Errorf("RunCommand(echo) = %q, %v", res.Output, err)
	}
	if _, err := RunCommand(context.Background(), 0, "0", "sh", "-c", "echo oops; exit 3"); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("RunCommand of a failing command: %v, want an error with its output", err)
	}
}

// TestRunCommandTimeout checks that a command outliving its timeout is
// killed with its process group and reported as timed out, not as the
// caller's context ending.
func TestRunCommandTimeout(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed:", err)
	}
	ctx := context.Background()
	start := time.Now()
	_, err := RunCommand(ctx, 200*time.Millisecond, "0", "sh", "-c", "sleep 60 & sleep 60")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunCommand past its timeout: %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's context ended")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("RunCommand returned after %v, want soon after the timeout", d)
	}
	if _, err := RunCommand(ctx, 5*time.Second, "0", "true"); err != nil {
		t.Errorf("RunCommand within its timeout: %v", err)
	}
}
