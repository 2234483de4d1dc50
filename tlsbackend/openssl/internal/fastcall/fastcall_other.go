//go:build !(linux && amd64)

package fastcall

import "unsafe"

const supported = false

func call(fn, arg unsafe.Pointer) bool { return false }
