// Package thread identifies the OS thread a goroutine runs on, cheaply.
//
// The io_uring driver needs to know which thread entered the ring last
// (the kernel runs a waiting receive's completion as task work of the
// thread that submitted it), and asks once per ring round. gettid(2) is a
// system call: 1.2 us on a virtual machine that traps them (this project's
// benchmark machine, BenchmarkGettid) against 1.5 ns for ID, which reads
// the thread pointer instead: the address of the thread's control block,
// which the x86-64 and AArch64 TLS ABIs keep in a register for every
// thread created by the C library, as all of Go's threads are in a cgo
// program.
package thread

// ID returns an identifier of the calling OS thread: two threads alive at
// the same time never share one, and a thread's never changes. (A thread
// that exits may leave its identifier to a later one.) The caller must be
// pinned to its thread for the answer to stay true, which no goroutine is
// unless locked; like gettid(2), it says where the caller was.
//
// In a program linked with cgo on linux/amd64 or linux/arm64 it is the
// thread pointer (what pthread_self returns); elsewhere it is the thread's
// ID from gettid(2).
func ID() uintptr { return id() }
