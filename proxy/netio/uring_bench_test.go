package netio

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/monolake-go/monolake/uring"
)

// newDriver starts an io_uring driver for a test, closed at cleanup; it
// skips with the reason when io_uring cannot be used (or is not built in).
func newDriver(t testing.TB, p UringParams) *Uring {
	t.Helper()
	if err := UringAvailable(); err != nil {
		t.Skipf("io_uring unusable: %v", err)
	}
	d, err := NewUring(p)
	if err != nil {
		t.Fatalf("NewUring: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	lastDriver = d
	return d
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMetric reports the process CPU time per iteration since before: the
// figure the proxy is judged on (requests per CPU-second), where wall time
// per iteration is a latency.
func cpuMetric(b *testing.B, before time.Duration) {
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// lastDriver is the driver newDriver made last, for ringMetrics.
var lastDriver *Uring

// ringMetrics reports the ring's work per iteration since before.
func ringMetrics(b *testing.B, d *Uring, before uring.Stats) {
	st := d.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(st.Syscalls-before.Syscalls)/n, "enters/op")
	b.ReportMetric(float64(st.SQEs-before.SQEs)/n, "sqes/op")
	b.ReportMetric(float64(st.CQEs-before.CQEs)/n, "cqes/op")
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// driver is a network driver under test: setup gives a loopback TCP
// listener and a dial function of that driver.
type driver struct {
	name  string
	setup func(tb testing.TB) (net.Listener, dialFunc)
}

var testDrivers = []driver{
	{"uring", func(tb testing.TB) (net.Listener, dialFunc) {
		d := newDriver(tb, UringParams{})
		ln, err := d.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ln.Close() })
		return ln, d.Dial
	}},
	{"epoll", func(tb testing.TB) (net.Listener, dialFunc) {
		ln, err := ListenTCP(context.Background(), "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ln.Close() })
		var nd net.Dialer
		return ln, nd.DialContext
	}},
}

// echoConn writes back what it reads from c, through a buffer of size
// bytes, until a read or a write fails.
func echoConn(c net.Conn, size int) {
	buf := make([]byte, size)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serveEcho echoes every connection ln accepts until ln is closed.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			echoConn(c, 32<<10)
		}()
	}
}

// relayCopy copies one direction of a relay.
type relayCopy func(dst, src net.Conn) (int64, error)

var relayCopies = map[string]relayCopy{
	// io.Copy: an io_uring source writes its received buffers in place
	// (or splices, with UringParams.SpliceCopy).
	"copy": func(dst, src net.Conn) (int64, error) { return io.Copy(dst, src) },
	// SpliceTo: socket → pipe → socket between io_uring connections.
	"splice": func(dst, src net.Conn) (int64, error) {
		if s, ok := src.(SpliceToer); ok {
			return s.SpliceTo(dst, -1)
		}
		return io.Copy(dst, src)
	},
}

// serveRelay proxies every connection ln accepts to upstream, both ways,
// with cp.
func serveRelay(ln net.Listener, dial dialFunc, upstream string, cp relayCopy) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := dial(context.Background(), "tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{})
			go func() {
				cp(u, c)
				if cw, ok := u.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
				close(done)
			}()
			cp(c, u)
			<-done
		}()
	}
}

// pingPong sends msg on every conn at once and reads the echo back.
func pingPong(conns []net.Conn, msg []byte, bufs [][]byte) error {
	if len(conns) == 1 {
		return roundTrip(conns[0], msg, bufs[0])
	}
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = roundTrip(c, msg, bufs[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func roundTrip(c net.Conn, msg, buf []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_, err := io.ReadFull(c, buf[:len(msg)])
	return err
}

func dialN(tb testing.TB, dial dialFunc, addr string, n int) ([]net.Conn, [][]byte) {
	conns := make([]net.Conn, n)
	bufs := make([][]byte, n)
	for i := range conns {
		c, err := dial(context.Background(), "tcp", addr)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		conns[i] = c
		bufs[i] = make([]byte, 64<<10)
	}
	return conns, bufs
}

// loopPingPong runs pingPong over cs for b.Loop and reports the CPU time
// and, when ring is set, the io_uring driver d's ring statistics per
// iteration.
func loopPingPong(b *testing.B, ring bool, d *Uring, cs []net.Conn, msg []byte, bufs [][]byte) {
	var before uring.Stats
	if ring {
		before = d.Stats()
	}
	cpu := cpuTime()
	for b.Loop() {
		if err := pingPong(cs, msg, bufs); err != nil {
			b.Fatal(err)
		}
	}
	cpuMetric(b, cpu)
	if ring {
		ringMetrics(b, d, before)
	}
}

// BenchmarkEcho compares the drivers on request/response echo: each
// iteration sends one message on every connection and reads it back; the
// server and the clients use the same driver, in the same process.
func BenchmarkEcho(b *testing.B) {
	for _, dr := range testDrivers {
		for _, conns := range []int{1, 32} {
			b.Run(fmt.Sprintf("driver=%s/conns=%d", dr.name, conns), func(b *testing.B) {
				ln, dial := dr.setup(b)
				go serveEcho(ln)
				d := lastDriver
				cs, bufs := dialN(b, dial, ln.Addr().String(), conns)
				msg := make([]byte, 1<<10)
				b.SetBytes(int64(2 * len(msg) * conns))
				b.ReportAllocs()
				loopPingPong(b, dr.name == "uring", d, cs, msg, bufs)
			})
		}
	}
}

// BenchmarkProxy is the two-hop workload: client → relay → echo server.
// The relay (the proxy) runs on the driver under test, the client and the
// echo upstream on package net, as they would be outside a worker. The
// relay copies both ways with io.Copy
// (relay=copy; for io_uring: received buffers written in place) or
// SpliceTo (relay=splice). Each iteration is one message there and back.
func BenchmarkProxy(b *testing.B) {
	for _, dr := range testDrivers {
		for _, relay := range []string{"copy", "splice"} {
			if dr.name != "uring" && relay != "copy" {
				continue
			}
			for _, size := range []int{1 << 10, 64 << 10} {
				name := fmt.Sprintf("driver=%s/size=%dKiB", dr.name, size>>10)
				if dr.name == "uring" {
					name = fmt.Sprintf("driver=%s/relay=%s/size=%dKiB", dr.name, relay, size>>10)
				}
				b.Run(name, func(b *testing.B) {
					ln, dial := testDrivers[1].setup(b) // epoll
					go serveEcho(ln)
					rl, rdial := dr.setup(b)
					d := lastDriver
					go serveRelay(rl, rdial, ln.Addr().String(), relayCopies[relay])
					cs, bufs := dialN(b, dial, rl.Addr().String(), 1)
					msg := make([]byte, size)
					b.SetBytes(int64(2 * size))
					b.ReportAllocs()
					if err := pingPong(cs, msg, bufs); err != nil { // the relay's upstream conn
						b.Fatal(err)
					}
					loopPingPong(b, dr.name == "uring", d, cs, msg, bufs)
				})
			}
		}
	}
}

// BenchmarkRelayStream streams one way through a relay (client → relay →
// sink) in 1 MiB writes: the L4 bulk case. As in BenchmarkProxy only the
// relay runs on the driver under test.
func BenchmarkRelayStream(b *testing.B) {
	for _, dr := range testDrivers {
		for _, relay := range []string{"copy", "splice"} {
			if dr.name != "uring" && relay != "copy" {
				continue
			}
			name := "driver=" + dr.name
			if dr.name == "uring" {
				name += "/relay=" + relay
			}
			b.Run(name, func(b *testing.B) {
				sink, dial := testDrivers[1].setup(b) // epoll
				var received atomic.Int64
				go func() {
					for {
						c, err := sink.Accept()
						if err != nil {
							return
						}
						go func() {
							defer c.Close()
							buf := make([]byte, 256<<10)
							for {
								n, err := c.Read(buf)
								received.Add(int64(n))
								if err != nil {
									return
								}
							}
						}()
					}
				}()
				rl, rdial := dr.setup(b)
				go serveRelay(rl, rdial, sink.Addr().String(), relayCopies[relay])
				cs, _ := dialN(b, dial, rl.Addr().String(), 1)
				msg := make([]byte, 1<<20)
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				var sent int64
				for b.Loop() {
					if _, err := cs[0].Write(msg); err != nil {
						b.Fatal(err)
					}
					sent += int64(len(msg))
				}
				for received.Load() < sent {
					time.Sleep(100 * time.Microsecond)
				}
			})
		}
	}
}
