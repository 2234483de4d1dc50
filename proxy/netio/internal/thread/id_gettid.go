//go:build !(linux && cgo && (amd64 || arm64))

package thread

import "syscall"

// Without cgo, Go's own threads do not keep the C library's thread
// control block (on amd64 the runtime points FS at its own per-thread
// storage), so the thread pointer is not an identity there.
func id() uintptr { return uintptr(syscall.Gettid()) }
