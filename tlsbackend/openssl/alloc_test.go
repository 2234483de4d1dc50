//go:build openssl && cgo

package openssl

import (
	"os"
	"runtime"
	"testing"
	"unsafe"
)

// TestAllocClasses: the size classes of OpenSSL's allocator grow, each
// size maps to the smallest class that holds it, and a block's usable size
// to the largest class it holds.
func TestAllocClasses(t *testing.T) {
	if got := allocClass(0); got != 0 {
		t.Errorf("class(0) = %d, want 0", got)
	}
	last := allocClassSize(allocNClass - 1)
	if last != 64<<10 {
		t.Errorf("largest class %d, want 65536", last)
	}
	prev := 0
	for i := range allocNClass {
		sz := allocClassSize(i)
		if sz <= prev || sz%16 != 0 {
			t.Fatalf("class %d: size %d after %d", i, sz, prev)
		}
		if got := allocClass(sz); got != i {
			t.Errorf("class(%d) = %d, want %d", sz, got, i)
		}
		if got := allocClass(prev + 1); got != i {
			t.Errorf("class(%d) = %d, want %d", prev+1, got, i)
		}
		if got := allocFloor(sz); got != i {
			t.Errorf("floor(%d) = %d, want %d", sz, got, i)
		}
		if i > 0 {
			if got := allocFloor(sz - 1); got != i-1 {
				t.Errorf("floor(%d) = %d, want %d", sz-1, got, i-1)
			}
		}
		// 4 classes per doubling past 256: at most a quarter wasted.
		if prev > 0 && sz > 256 && (sz-prev)*4 > prev {
			t.Errorf("class %d: %d after %d wastes more than a quarter", i, sz, prev)
		}
		prev = sz
	}
	for _, n := range []int{last + 1, 1 << 20} {
		if got := allocClass(n); got != allocNClass {
			t.Errorf("class(%d) = %d, want none (%d)", n, got, allocNClass)
		}
	}
	for _, u := range []int{8, last + last/4, 100000, 1 << 20} {
		if got := allocFloor(u); got != allocNClass {
			t.Errorf("floor(%d) = %d, want none (%d)", u, got, allocNClass)
		}
	}
	if got := allocFloor(last + last/4 - 1); got != allocNClass-1 {
		t.Errorf("floor(%d) = %d, want %d", last+last/4-1, got, allocNClass-1)
	}
}

// onThread runs f on one OS thread, whose cache it sees.
func onThread(t *testing.T, f func()) {
	t.Helper()
	if os.Getenv("MONOLAKE_OPENSSL_MALLOC") == "libc" {
		t.Skip("MONOLAKE_OPENSSL_MALLOC=libc: OpenSSL is on malloc(3)")
	}
	if allocSanitized() {
		t.Skip("a sanitizer build: OpenSSL is on malloc(3)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if !allocInstalled() {
		t.Fatal("OpenSSL does not allocate through csrc/mlk_libc.c's cache (CRYPTO_set_mem_functions refused)")
	}
	f()
}

func fill(p unsafe.Pointer, n int, b byte) []byte {
	s := unsafe.Slice((*byte)(p), n)
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

// TestAllocReuse: a block OpenSSL frees is kept by class and handed out
// again to the next request of that class; blocks past the largest class
// go back to free(3).
func TestAllocReuse(t *testing.T) {
	onThread(t, func() {
		for _, n := range []int{0, 1, 100, 300, 1500, 17000, 64 << 10} {
			p := cryptoMalloc(n)
			if p == nil {
				t.Fatalf("malloc(%d) = nil", n)
			}
			base := allocCached(allocNClass)
			if u := usableSize(p); u < n || allocUsable(p) != u {
				t.Fatalf("malloc(%d): usable size %d, read as %d", n, u, allocUsable(p))
			}
			fill(p, n, 1)
			cryptoFree(p)
			cached := allocCached(allocNClass)
			if want := base + allocClassSize(allocClass(n)); cached != want {
				t.Errorf("after free of %d bytes: %d cached, want %d", n, cached, want)
			}
			q := cryptoMalloc(n)
			if q != p {
				t.Errorf("malloc(%d) after free: %p, want the freed %p", n, q, p)
			}
			if cached := allocCached(allocNClass); cached != base {
				t.Errorf("after reuse of %d bytes: %d cached, want %d", n, cached, base)
			}
			cryptoFree(q)
		}
		base := allocCached(allocNClass)
		p := cryptoMalloc(100 << 10)
		if u := allocUsable(p); u != usableSize(p) {
			t.Errorf("100 KiB block: usable size %d, read as %d", usableSize(p), u)
		}
		fill(p, 100<<10, 3)
		cryptoFree(p)
		if cached := allocCached(allocNClass); cached != base {
			t.Errorf("a 100 KiB block was cached: %d bytes, want %d", cached, base)
		}
		// Above glibc's largest mmap threshold (32 MiB; it rises to the
		// size of an mmapped block freed, up to that).
		p = cryptoMalloc(64 << 20)
		if u := allocUsable(p); u != 0 {
			t.Errorf("64 MiB block, mmapped: read as %d bytes, want 0", u)
		}
		cryptoFree(p)
		if cached := allocCached(allocNClass); cached != base {
			t.Errorf("a 64 MiB block was cached: %d bytes, want %d", cached, base)
		}
	})
}

// TestAllocRealloc: growing keeps the contents; shrinking a little keeps
// the block; realloc to 0 frees.
func TestAllocRealloc(t *testing.T) {
	onThread(t, func() {
		p := cryptoMalloc(100)
		want := append([]byte(nil), fill(p, 100, 7)...)
		q := cryptoRealloc(p, 5000)
		if q == nil {
			t.Fatal("realloc to 5000 = nil")
		}
		if got := unsafe.Slice((*byte)(q), 100); string(got) != string(want) {
			t.Fatal("realloc to 5000 lost the contents")
		}
		if r := cryptoRealloc(q, 4000); r != q {
			t.Errorf("realloc from 5000 to 4000 moved the block")
		}
		base := allocCached(allocNClass)
		if r := cryptoRealloc(q, 0); r != nil {
			t.Errorf("realloc to 0 = %p, want nil", r)
		}
		if cached := allocCached(allocNClass); cached <= base {
			t.Errorf("realloc to 0 did not free: %d cached, was %d", cached, base)
		}
	})
}

// TestAllocCap: a thread keeps at most 1 MiB and 4096 blocks of one class;
// the rest goes back to free(3).
func TestAllocCap(t *testing.T) {
	onThread(t, func() {
		const n, count = 17000, 200 // 200 blocks of the 20 KiB class: 4 MiB
		cls := allocClass(n)
		sz := allocClassSize(cls)
		ps := make([]unsafe.Pointer, count)
		for i := range ps {
			ps[i] = cryptoMalloc(n)
		}
		for _, p := range ps {
			cryptoFree(p)
		}
		if got, want := allocCached(cls), (1<<20)/sz*sz; got != want {
			t.Errorf("after freeing %d blocks of %d bytes the class keeps %d bytes, want %d", count, n, got, want)
		}
		// And at most 4096 blocks of a small class (16-byte blocks are
		// 32-byte chunks: 128 KiB, not 2 MiB).
		small := make([]unsafe.Pointer, 5000)
		for i := range small {
			small[i] = cryptoMalloc(16)
		}
		for _, p := range small {
			cryptoFree(p)
		}
		if got, want := allocCached(allocClass(16)), 4096*16; got != want {
			t.Errorf("after freeing 5000 blocks of 16 bytes the class keeps %d bytes, want %d", got, want)
		}
	})
}

// TestAllocThreadExit: a thread keeps the blocks it frees, its own and
// those other threads allocated, and they go back to malloc(3) when it
// exits.
func TestAllocThreadExit(t *testing.T) {
	onThread(t, func() {
		const own, ownN, foreign, foreignN = 4000, 100, 3000, 100
		want := ownN*allocClassSize(allocClass(own)) + foreignN*allocClassSize(allocClass(foreign))
		before := allocInUse()
		if before < 0 {
			t.Skip("no mallinfo2 (glibc before 2.33): what malloc has handed out is unknown")
		}
		ps := make([]unsafe.Pointer, foreignN)
		for i := range ps {
			ps[i] = cryptoMalloc(foreign)
			fill(ps[i], foreign, 5)
		}
		kept, err := allocThreadRun(own, ownN, ps)
		if err != nil {
			t.Fatal(err)
		}
		if kept < want {
			t.Errorf("the thread kept %d bytes before it exited, want at least %d (its blocks and the ones freed there)", kept, want)
		}
		// What malloc has handed out is back where it was, give or take
		// a little (the thread's own bookkeeping), not up by the
		// thread's lists.
		if grew := allocInUse() - before; grew > want/4 {
			t.Errorf("after the thread exited malloc has %d more bytes handed out (its lists held %d): they were not freed", grew, kept)
		}
	})
}

// TestGetpid: libcrypto's getpid (its random generator's fork check) is the
// cached one; it is the process's pid, and a fork(3)'s child gets its own.
func TestGetpid(t *testing.T) {
	if !getpidBound() {
		t.Fatal("getpid is not bound to csrc/mlk_libc.c's: every OpenSSL random draw makes a system call")
	}
	if got, want := cGetpid(), os.Getpid(); got != want {
		t.Fatalf("getpid() = %d, want %d", got, want)
	}
	if st := getpidForkTest(); st != 0 {
		t.Fatalf("fork: the child's getpid was not its own (status %d)", st)
	}
	if got, want := cGetpid(), os.Getpid(); got != want {
		t.Fatalf("getpid() after a fork = %d, want %d", got, want)
	}
}
