//go:build cgo

#include "textflag.h"

// func threadPointer() uintptr
//
// AArch64 keeps the thread pointer in TPIDR_EL0, readable from user mode.
TEXT ·threadPointer(SB),NOSPLIT,$0-8
	MRS TPIDR_EL0, R0
	MOVD R0, ret+0(FP)
	RET
