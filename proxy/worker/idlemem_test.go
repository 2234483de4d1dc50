package worker

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

var sink []byte

// TestReleaseWhenIdle: a burst of allocation followed by quiet triggers one
// release; steady allocation triggers none.
func TestReleaseWhenIdle(t *testing.T) {
	const every = 50 * time.Millisecond
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Steady allocation first: no period is quiet.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			sink = make([]byte, 64<<10)
			runtime.Gosched()
		}
	}()
	go releaseWhenIdle(ctx, every, 16<<10, 1<<20, func() { calls.Add(1) })
	time.Sleep(10 * every)
	if n := calls.Load(); n != 0 {
		t.Errorf("released %d times under steady allocation, want 0", n)
	}
	close(stop)
	<-done

	// Quiet now, after far more than 1 MiB: one release.
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(every)
	}
	if calls.Load() != 1 {
		t.Fatalf("released %d times after the burst, want 1", calls.Load())
	}
	// Staying quiet releases nothing more.
	time.Sleep(6 * every)
	if n := calls.Load(); n != 1 {
		t.Errorf("released %d times in all, want 1 (nothing allocated since)", n)
	}
}
