//go:build linux && cgo && (amd64 || arm64)

package thread

import (
	// Every thread of the program is then created by the C library
	// (pthread_create), so every thread has a control block and a
	// thread pointer to it; without it Go makes its own threads, whose
	// thread pointer on amd64 points at the runtime's storage instead.
	_ "runtime/cgo"
)

// threadPointer is in id_linux_amd64.s and id_linux_arm64.s.
func threadPointer() uintptr

func id() uintptr { return threadPointer() }
