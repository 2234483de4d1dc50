package bench

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestWatchChargesAfterWork runs a stand-in proxy that works only after the
// stand-in load has ended, as Monolake's workers do when they give memory
// back: the window must charge that work to the run, and keep it out of
// the load's share.
func TestWatchChargesAfterWork(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc:", err)
	}
	if _, err := exec.LookPath("timeout"); err != nil {
		t.Skip("no timeout(1):", err)
	}
	// Idle for 300 ms, busy for 300 ms, then idle.
	proxy := exec.Command("sh", "-c", `sleep 0.3; timeout 0.3 sh -c 'while :; do :; done'; sleep 60`)
	proxy.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := proxy.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer func() {
		syscall.Kill(-proxy.Process.Pid, syscall.SIGKILL)
		proxy.Wait()
	}()
	w, err := watch(context.Background(), time.Second, func() { time.Sleep(200 * time.Millisecond) })
	if err != nil {
		t.Fatal(err)
	}
	charged, load, err := w.treeCPU(proxy.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if charged < 150*time.Millisecond {
		t.Errorf("charged %v for a proxy busy for 300 ms after the load, want at least 150ms", charged)
	}
	if load > 50*time.Millisecond {
		t.Errorf("%v of it in the load, which the proxy idled through", load)
	}
}

func TestWatchCancelled(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc:", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	_, err := watch(ctx, time.Minute, func() { time.AfterFunc(50*time.Millisecond, cancel) })
	if err != context.Canceled {
		t.Errorf("watch with its context cancelled in the settle: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("watch returned after %v", d)
	}
}
