// Package uring is the thin cgo binding to liburing that the io_uring
// runtime is built on (DESIGN.md, "Two I/O drivers"). It gives a Ring with
// the operations a proxy needs — multishot accept, multishot recv into a
// provided buffer ring, recv, send, SEND_ZC (plain and from registered
// buffers), connect, splice, poll, close, shutdown, cancel, timeouts, nop — and
// nothing else: no goroutines, no locks, no net.Conn. The net.Listener /
// net.Conn driver lives in proxy/netio and is built on this.
//
// # The batch
//
// Queueing an operation (Nop, Send, RecvMultishot, ...) writes a 64-byte
// descriptor into C memory the Ring owns: no cgo call, no syscall. Each
// operation carries a 64-bit user_data the caller chooses and gets back in
// every CQE the operation produces; uring never interprets it (the value
// ^uint64(0) is reserved by liburing). Enter then makes one round: the C
// helper (csrc/mlk_uring.c) turns every queued descriptor into an SQE,
// submits them with at most one io_uring_enter(2) (more only if the batch is
// larger than the SQ ring), optionally waits for completions with a timeout,
// and copies the ready CQEs into a C array that Enter returns as []CQE. A
// waiting Enter is one cgo call. One that does not wait makes none: Go
// writes the SQEs and reads the CQEs on the rings liburing mapped, as the
// C helper would (gosubmit_cgo.go; connects, splices, timeouts and SQPOLL
// rings still take the short cgo call), around an io_uring_enter(2) made
// as a raw system call (see Enter). With one P per worker, a cgo call after
// the P was idle wakes Go's sysmon thread, which then polls every 20 us for
// a millisecond; a loop that makes no cgo call leaves it asleep. A driver
// therefore lets its goroutines queue operations and park, and its loop
// calls Enter once per round for all of them.
//
// # Memory the kernel holds
//
// A buffer given to Recv, Send, SendZC or Splice is read or written by the
// kernel after Enter returns, until the operation's last CQE (for SEND_ZC,
// the notification CQE). It must not move or be freed until then: take it
// from Alloc (mmap, outside the Go heap), from a BufRing, or pin it with a
// runtime.Pinner and unpin after the last CQE. Socket addresses (Connect) and
// timeouts are copied by the ring and need no care.
//
// # Threads and goroutines
//
// A Ring is not safe for concurrent use: one goroutine (the driver's loop, or
// callers holding the driver's lock) queues and enters. With
// Params.SingleIssuer the ring is created with SINGLE_ISSUER|DEFER_TASKRUN,
// and every call must then come from the OS thread that called New: the
// owning goroutine must call runtime.LockOSThread before New and keep it
// locked until Close.
//
// # Builds
//
// The real binding is built with cgo and the "uring" tag (make uring), and
// links -luring. Every other build gets a stub with the same API whose calls
// return an error wrapping errors.ErrUnsupported; the constant Available says
// which side was built.
//
// It imports nothing of package proxy.
package uring
