//go:build cgo

package fastcall_test

import (
	"bytes"
	"io"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/monolake-go/monolake/tlsbackend/openssl/internal/fastcall"
	"github.com/monolake-go/monolake/tlsbackend/openssl/internal/fastcall/fastcalltest"
)

func call(t testing.TB, fn unsafe.Pointer, a *fastcalltest.Args) {
	t.Helper()
	if !fastcall.Call(fn, unsafe.Pointer(a)) {
		if fastcall.Supported {
			t.Fatal("Call reported false with stacks free")
		}
		t.Skip("fastcall is not implemented on " + runtime.GOOS + "/" + runtime.GOARCH)
	}
}

func TestCall(t *testing.T) {
	a := fastcalltest.Args{A: 40, B: 2}
	call(t, fastcalltest.Add, &a)
	if a.Sum != 42 {
		t.Fatalf("Sum = %d, want 42", a.Sum)
	}
}

// The C code writes Go heap memory it is handed while collections run on
// another P (their stop-the-world waits for the calls).
func TestCallFillsGoMemoryDuringGC(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for i := range 2000 {
		buf := make([]byte, 1+i%5000)
		a := fastcalltest.Args{A: uint64(i), Buf: unsafe.Pointer(&buf[0]), Len: uintptr(len(buf))}
		call(t, fastcalltest.Fill, &a)
		runtime.KeepAlive(buf)
		if want := bytes.Repeat([]byte{byte(i)}, len(buf)); !bytes.Equal(buf, want) {
			t.Fatalf("call %d: buffer not filled", i)
		}
	}
}

// 448 KiB of the 512 KiB stack: more than any user needs.
func TestCallDeepStack(t *testing.T) {
	a := fastcalltest.Args{Depth: 111}
	call(t, fastcalltest.Recurse, &a)
	if a.Out != 112 {
		t.Fatalf("Out = %d, want 112", a.Out)
	}
}

// Calls of 20 ms with one P, a goroutine waiting for it (sysmon asks for
// preemption after 10 ms) and the CPU profiler's signals: they arrive while
// C runs on a fastcall stack and must do no harm, and the P stays with the
// call: the other goroutine never runs while C does (a cgo call this long
// would have its P handed to it).
func TestCallUnderSignals(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	var inC int32
	var spins, during atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				spins.Add(1)
				if atomic.LoadInt32(&inC) != 0 {
					during.Add(1)
				}
			}
		}
	}()
	for i := range 15 {
		a := fastcalltest.Args{SpinNS: uint64(20 * time.Millisecond), Flag: &inC}
		call(t, fastcalltest.Spin, &a)
		if a.Out == 0 {
			t.Fatalf("call %d: the C loop did not run", i)
		}
		runtime.Gosched()
	}
	close(stop)
	<-done
	if spins.Load() == 0 {
		t.Error("the other goroutine never ran between the calls")
	}
	if n := during.Load(); n > 0 {
		t.Errorf("the other goroutine ran %d times while C held the P", n)
	}
}

// Goroutines on several Ps call at once, each on a stack of its own: a
// pattern each writes on its C stack survives the others' calls.
func TestCallConcurrent(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	var wg sync.WaitGroup
	var bad, refused atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				a := fastcalltest.Args{A: uint64(g)<<32 | uint64(i), SpinNS: uint64(20 * time.Microsecond)}
				if !fastcall.Call(fastcalltest.StackPattern, unsafe.Pointer(&a)) {
					refused.Add(1)
				} else if a.Out != 0 {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if !fastcall.Supported {
		t.Skip("fastcall is not implemented on " + runtime.GOOS + "/" + runtime.GOARCH)
	}
	if n := refused.Load(); n > 0 {
		t.Errorf("%d calls found no free stack (16 stacks, at most 8 callers)", n)
	}
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d calls found their stack overwritten", n)
	}
}

func BenchmarkCall(b *testing.B) {
	a := fastcalltest.Args{A: 1, B: 2}
	for b.Loop() {
		fastcall.Call(fastcalltest.Add, unsafe.Pointer(&a))
	}
}
