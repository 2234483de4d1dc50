//go:build cgo

#include "textflag.h"

// func threadPointer() uintptr
//
// The x86-64 TLS ABI keeps the thread control block's own address in its
// first word, at %fs:0. Go's assembler has no segment-override syntax, so
// the instruction is spelled out: MOVQ %fs:0, AX (64 48 8b 04 25 + disp32).
TEXT ·threadPointer(SB),NOSPLIT,$0-8
	BYTE $0x64; BYTE $0x48; BYTE $0x8b; BYTE $0x04; BYTE $0x25; LONG $0
	MOVQ AX, ret+0(FP)
	RET
