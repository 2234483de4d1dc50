//go:build uring && cgo

package uring

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkNop compares one cgo call and one io_uring_enter per operation
// (batch=1) with one per 64 operations; ns/nop is the cost per operation.
// With sqpoll the kernel's poller thread submits: Enter only polls the CQ
// ring (wait=0) and makes no syscall while the poller is awake, at the cost
// of a core spinning.
func BenchmarkNop(b *testing.B) {
	tests := []struct {
		name  string
		p     Params
		batch int
		wait  bool
	}{
		{"batch=1", Params{Entries: 256}, 1, true},
		{"batch=64", Params{Entries: 256}, 64, true},
		{"batch=1/sqpoll", Params{Entries: 256, SQPollIdle: 100 * time.Millisecond}, 1, false},
		{"batch=64/sqpoll", Params{Entries: 256, SQPollIdle: 100 * time.Millisecond}, 64, false},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			r := newRing(b, tt.p)
			batch := tt.batch
			b.ReportAllocs()
			ops := 0
			for b.Loop() {
				for i := range batch {
					r.Nop(uint64(i))
				}
				got := 0
				for got < batch {
					wait := 0
					if tt.wait {
						wait = batch - got
					}
					cqes, err := r.Enter(wait, 0)
					if err != nil {
						b.Fatal(err)
					}
					got += len(cqes)
				}
				ops += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ops), "ns/nop")
			s := r.Stats()
			b.ReportMetric(float64(s.Syscalls)/float64(ops), "syscalls/nop")
		})
	}
}

// BenchmarkEcho sends a message over a socketpair and echoes it back, each
// leg one Enter carrying a send and the matching recv.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			r := newRing(b, Params{Entries: 64})
			x, y := socketpair(b)
			msg := alloc(b, size)
			bx, by := alloc(b, size), alloc(b, size)
			leg := func(from, to int, out, in []byte) {
				r.Send(1, from, out, 0)
				got := 0
				r.Recv(2, to, in, 0)
				done := 0
				for done < 2 {
					cqes, err := r.Enter(1, 0)
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range cqes {
						if c.Res < 0 {
							b.Fatalf("CQE %+v: %v", c, c.Err())
						}
						if c.UserData == 2 {
							got += int(c.Res)
							if got < size {
								r.Recv(2, to, in[got:], 0)
								continue
							}
						}
						done++
					}
				}
			}
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			for b.Loop() {
				leg(x, y, msg, by)
				leg(y, x, by, bx)
			}
			s := r.Stats()
			b.ReportMetric(float64(s.Syscalls)/float64(b.N), "syscalls/echo")
		})
	}
	// Multishot recvs armed once on both ends, buffers from a BufRing: each
	// leg is one Enter carrying only the send.
	b.Run("size=64/mode=multishot", func(b *testing.B) {
		const size = 64
		r := newRing(b, Params{Entries: 64})
		br, err := r.NewBufRing(1, 64, 4096)
		if err != nil {
			b.Fatal(err)
		}
		x, y := socketpair(b)
		r.RecvMultishot(10, x, br, 0)
		r.RecvMultishot(11, y, br, 0)
		msg, out := alloc(b, size), alloc(b, size)
		leg := func(from int, ud uint64, data []byte) {
			r.Send(1, from, data, 0)
			sent, got := false, 0
			for !sent || got < size {
				cqes, err := r.Enter(1, 0)
				if err != nil {
					b.Fatal(err)
				}
				for _, c := range cqes {
					switch {
					case c.Res < 0 || (c.UserData != 1 && !c.More()):
						b.Fatalf("CQE %+v: %v", c, c.Err())
					case c.UserData == 1:
						sent = true
					case c.UserData == ud:
						br.Claim(c)
						d, id, _ := br.Get(c)
						got += copy(out[got:], d)
						br.Release(id)
					}
				}
			}
		}
		b.SetBytes(2 * size)
		b.ReportAllocs()
		for b.Loop() {
			leg(x, 11, msg)
			leg(y, 10, out)
		}
		s := r.Stats()
		b.ReportMetric(float64(s.Syscalls)/float64(b.N), "syscalls/echo")
	})
	// The same exchange with blocking write(2)/read(2), for reference.
	b.Run("size=64/mode=syscall", func(b *testing.B) {
		x, y := socketpair(b)
		msg, buf := make([]byte, 64), make([]byte, 64)
		b.SetBytes(128)
		b.ReportAllocs()
		for b.Loop() {
			writeAll(x, msg)
			readInto(y, buf)
			writeAll(y, buf)
			readInto(x, buf)
		}
	})
}
