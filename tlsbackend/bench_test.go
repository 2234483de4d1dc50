package tlsbackend_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/monolake-go/monolake/tlsbackend"
)

// benchBackends runs f under "backend=NAME" for each backend built in; the
// client and the server are the same backend, in this process.
func benchBackends(b *testing.B, f func(b *testing.B, be tlsbackend.Backend)) {
	for _, name := range backendNames {
		b.Run("backend="+name, func(b *testing.B) {
			be, err := tlsbackend.Get(name)
			if err != nil {
				b.Skip(err)
			}
			f(b, be)
		})
	}
}

// BenchmarkHandshake: full TLS 1.3 handshakes (ECDSA P-256 certificate,
// X25519, no resumption) over loopback TCP, client and server of the same
// backend; the time and allocations are both sides' together, plus the TCP
// connect.
func BenchmarkHandshake(b *testing.B) {
	p := testPKI(b)
	benchBackends(b, func(b *testing.B, be tlsbackend.Backend) {
		scfg := &tlsbackend.Config{Certificates: []tlsbackend.Certificate{p.a.Certificate()}, MinVersion: tlsbackend.VersionTLS13, SessionTicketsDisabled: true}
		srv := startServer(b, be, scfg, nil)
		go func() { // the results are not needed
			for range srv.results {
			}
		}()
		ccfg := p.clientConfig()
		ccfg.SessionTicketsDisabled = true
		cc := newClient(b, be, ccfg)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			nc, err := net.Dial("tcp", srv.addr)
			if err != nil {
				b.Fatal(err)
			}
			c := cc.Client(nc, "")
			if err := c.Handshake(ctx); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

// BenchmarkThroughput: one connection, the client writing size-byte
// buffers (16 KiB: one full record each) that the server reads and
// discards; bytes/s is plaintext, and the time covers encryption,
// decryption and both sockets.
func BenchmarkThroughput(b *testing.B) {
	p := testPKI(b)
	benchBackends(b, func(b *testing.B, be tlsbackend.Backend) {
		for _, size := range []int{1 << 10, 16 << 10} {
			b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
				read := make(chan int64, 1)
				srv := startServer(b, be, p.serverConfig(), func(c tlsbackend.Conn) {
					c.SetDeadline(noDeadline)
					n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 16<<10))
					read <- n
				})
				c, err := dial(b, newClient(b, be, p.clientConfig()), srv.addr, "")
				if err != nil {
					b.Fatal(err)
				}
				c.SetDeadline(noDeadline)
				buf := make([]byte, size)
				var sent int64
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
					sent += int64(size)
				}
				// Half-close and wait: closing with the server's session
				// ticket unread in the socket would reset the connection
				// under the data.
				c.CloseWrite()
				if n := <-read; n != sent {
					b.Fatalf("server read %d bytes, client sent %d", n, sent)
				}
			})
		}
	})
}
