// Package fastcall calls short C functions without cgo's transition, on
// stacks of its own.
//
// A cgo call puts the goroutine's P in a system call. With one P (a
// Monolake worker) that has two costs beyond the call: the first cgo call
// after the P was idle wakes Go's sysmon thread, which then polls every
// 20 us for a millisecond, each poll a context switch on the worker's own
// CPU; and a call that outlasts a sysmon tick (an OpenSSL handshake step,
// 50-300 us) has its P handed to another thread, which the caller must
// win back afterwards. Measured on the OpenSSL backend with one P: 0.23
// sysmon wake-ups per proxied request at 1 KiB keep-alive, and 1.4 per
// connection plus 2.4 futex calls in handshake-heavy runs.
//
// Call runs a C function the way Go code runs: the P stays with the
// goroutine and nothing else runs on it until the function returns. So it
// is only for C code that
//   - never blocks for long and never calls back into Go,
//   - reads and writes only C memory and the Go memory it is handed
//     (pointer-free byte slices the caller keeps alive),
//   - needs at most StackSize bytes of stack.
//
// Signals that arrive meanwhile are handled on the thread's signal stack,
// as during a cgo call: a preemption request finds no safe point in C and
// is dropped (the P is preempted after the call returns; with more than
// one P a collection waiting for it resends the request every few
// microseconds), and a profiling sample counts as external code, without
// the Go frames that led to the call. The garbage collector's
// stop-the-world waits for the call to return.
//
// What it costs in debugging: the runtime does not know the thread is in
// C, so a fault inside the C code is taken for a fault in Go. The process
// dies either way, but without cgo's "signal arrived during cgo execution"
// report: a fault in C ends in a garbled or missing traceback, and a stack
// overflow into the guard region kills the process with SIGSEGV and no
// output. Callers keep a switch back to cgo for that (the OpenSSL backend:
// MONOLAKE_OPENSSL_FASTCALL=off).
//
// Call is implemented on linux/amd64; elsewhere it reports false and the
// caller makes its cgo call instead.
package fastcall

import "unsafe"

// StackSize is the size of each C stack. The deepest user, an OpenSSL
// handshake step through its providers, needs a few tens of KiB; pages
// never touched cost no memory.
const StackSize = 512 << 10

// Supported reports whether Call is implemented on this platform.
const Supported = supported

// Call runs fn(arg), fn a C function `void fn(void *)`, on a C stack, and
// reports true; false, without calling, when it cannot (no free stack,
// mmap failed, or not implemented here).
func Call(fn, arg unsafe.Pointer) bool { return call(fn, arg) }
