package thread

import (
	"runtime"
	"sync"
	"syscall"
	"testing"
)

// TestIDPerThread runs goroutines locked to threads that are all alive at
// once: each sees one ID on every call, and the IDs are distinct exactly
// when the gettid(2) IDs are.
func TestIDPerThread(t *testing.T) {
	const n = 8
	type seen struct {
		tid int
		id  uintptr
	}
	var (
		wg      sync.WaitGroup
		all     = make(chan seen, n)
		started sync.WaitGroup
		release = make(chan struct{})
	)
	started.Add(n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			first := ID()
			if first == 0 {
				t.Error("ID() = 0")
			}
			started.Done()
			<-release // every thread is alive while the others read theirs
			for range 1000 {
				if got := ID(); got != first {
					t.Errorf("ID changed on one thread: %#x then %#x", first, got)
					return
				}
			}
			all <- seen{syscall.Gettid(), first}
		}()
	}
	started.Wait()
	close(release)
	wg.Wait()
	close(all)
	byTid := map[int]uintptr{}
	byID := map[uintptr]int{}
	for s := range all {
		if id, ok := byTid[s.tid]; ok && id != s.id {
			t.Errorf("thread %d had IDs %#x and %#x", s.tid, id, s.id)
		}
		if tid, ok := byID[s.id]; ok && tid != s.tid {
			t.Errorf("threads %d and %d share ID %#x", tid, s.tid, s.id)
		}
		byTid[s.tid], byID[s.id] = s.id, s.tid
	}
	if len(byTid) != n {
		t.Errorf("%d distinct threads, want %d (each goroutine was locked to its own)", len(byTid), n)
	}
}

func BenchmarkID(b *testing.B) {
	for b.Loop() {
		ID()
	}
}

func BenchmarkGettid(b *testing.B) {
	for b.Loop() {
		syscall.Gettid()
	}
}
