//go:build linux

#include "textflag.h"

// func callC(fn, arg unsafe.Pointer, stack uintptr)
//
// Calls the C function fn(arg) on the stack whose top is stack. SysV: the
// argument in DI, the stack 16-byte aligned at the CALL. R12 (callee-saved
// in C) keeps the goroutine's SP; R14, Go's g, is callee-saved too. C may
// leave X15 non-zero, which Go code assumes zero.
TEXT ·callC(SB), NOSPLIT, $0-24
	MOVQ	fn+0(FP), AX
	MOVQ	arg+8(FP), DI
	MOVQ	stack+16(FP), CX
	ANDQ	$~15, CX
	MOVQ	SP, R12
	MOVQ	CX, SP
	CALL	AX
	MOVQ	R12, SP
	XORPS	X15, X15
	RET
