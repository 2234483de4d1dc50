//go:build cgo

// Package fastcalltest holds the C functions package fastcall's tests call
// (a test file cannot use cgo).
package fastcalltest

/*
#include <stdint.h>
#include <string.h>
#include <time.h>

struct args {
	uint64_t a, b, sum;
	uint64_t spin_ns;
	int64_t depth;
	uint64_t out;
	unsigned char *buf;
	size_t len;
	volatile int32_t *flag;
};

void mlkt_add(void *p)
{
	struct args *x = p;
	x->sum = x->a + x->b;
}

static uint64_t mlkt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void mlkt_spin(void *p)
{
	struct args *x = p;
	uint64_t end, n = 0;

	if (x->flag)
		*x->flag = 1;
	end = mlkt_now() + x->spin_ns;
	while (mlkt_now() < end)
		n++;
	x->out = n;
	if (x->flag)
		*x->flag = 0;
}

// 4 KiB of stack filled with a pattern of the caller's, checked after
// spin_ns: a stack shared with a concurrent call shows as mismatches.
void mlkt_stackpat(void *p)
{
	struct args *x = p;
	volatile uint64_t pat[512];
	uint64_t end, bad = 0;
	int i;

	for (i = 0; i < 512; i++)
		pat[i] = x->a ^ (uint64_t)i;
	end = mlkt_now() + x->spin_ns;
	while (mlkt_now() < end) {
	}
	for (i = 0; i < 512; i++)
		if (pat[i] != (x->a ^ (uint64_t)i))
			bad++;
	x->out = bad;
}

// 4 KiB of stack per level.
static uint64_t mlkt_deep(int64_t d)
{
	volatile unsigned char pad[4096];
	pad[0] = (unsigned char)d;
	pad[4095] = 1;
	if (d == 0)
		return pad[4095];
	return mlkt_deep(d - 1) + pad[4095];
}

void mlkt_recurse(void *p)
{
	struct args *x = p;
	x->out = mlkt_deep(x->depth);
}

void mlkt_fill(void *p)
{
	struct args *x = p;
	memset(x->buf, (int)(x->a & 0xff), x->len);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Args is struct args, laid out alike.
type Args struct {
	A, B, Sum uint64
	SpinNS    uint64
	Depth     int64
	Out       uint64
	Buf       unsafe.Pointer
	Len       uintptr
	Flag      *int32
}

func init() {
	if unsafe.Sizeof(Args{}) != C.sizeof_struct_args {
		panic(fmt.Sprintf("fastcalltest: Args is %d bytes, struct args %d", unsafe.Sizeof(Args{}), C.sizeof_struct_args))
	}
}

// The C functions, each void f(struct args *).
var (
	Add          = unsafe.Pointer(C.mlkt_add)      // Sum = A + B
	Spin         = unsafe.Pointer(C.mlkt_spin)     // busy for SpinNS ns, *Flag = 1 meanwhile; Out = loop count
	StackPattern = unsafe.Pointer(C.mlkt_stackpat) // 4 KiB pattern from A on the stack, held SpinNS ns; Out = mismatches
	Recurse      = unsafe.Pointer(C.mlkt_recurse)  // Depth levels of 4 KiB stack each; Out = Depth+1
	Fill         = unsafe.Pointer(C.mlkt_fill)     // Buf[0:Len] = byte(A)
)
