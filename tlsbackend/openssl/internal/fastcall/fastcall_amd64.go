//go:build linux

package fastcall

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const supported = true

//go:noescape
func callC(fn, arg unsafe.Pointer, stack uintptr)

// stack is one C stack; busy is held by the goroutine calling on it.
type stack struct {
	busy atomic.Bool
	top  uintptr // 0 until mapped
}

// stacks: one serves a P; more serve goroutines of other Ps, or one
// preempted between taking a stack and the call.
var stacks [16]stack

func call(fn, arg unsafe.Pointer) bool {
	for i := range stacks {
		s := &stacks[i]
		if !s.busy.CompareAndSwap(false, true) {
			continue
		}
		if s.top == 0 && !s.mmap() {
			s.busy.Store(false)
			return false
		}
		callC(fn, arg, s.top)
		s.busy.Store(false)
		return true
	}
	return false
}

// guard is the inaccessible region below each stack: an overflow faults
// instead of writing over other memory. It is larger than any one C frame
// should be (code built without -fstack-clash-protection can move the
// stack pointer by a whole frame at once); it costs address space only.
const guard = 1 << 20

// mmap maps s; its caller holds s.busy.
func (s *stack) mmap() bool {
	m, err := unix.Mmap(-1, 0, guard+StackSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE|unix.MAP_STACK)
	if err != nil {
		return false
	}
	if err := unix.Mprotect(m[:guard], unix.PROT_NONE); err != nil {
		unix.Munmap(m)
		return false
	}
	s.top = uintptr(unsafe.Pointer(unsafe.SliceData(m))) + uintptr(len(m))
	return true
}
