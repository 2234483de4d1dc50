//go:build openssl && cgo

package openssl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/openssl/internal/fastcall"
)

// TestCallPaths runs a handshake, records both ways, close_notify and the
// frees once through package fastcall and once through cgo
// (MONOLAKE_OPENSSL_FASTCALL=off), on loopback TCP.
func TestCallPaths(t *testing.T) {
	for _, fast := range []bool{true, false} {
		name := "cgo"
		if fast {
			name = "fastcall"
		}
		t.Run(name, func(t *testing.T) {
			if fast && !fastcall.Supported {
				t.Skip("package fastcall is not implemented here")
			}
			defer useFastCall.Store(useFastCall.Load())
			useFastCall.Store(fast)
			sc, cc := testConfigs(t)
			snc, nc := tcpPair(t)
			srvErr := make(chan error, 1)
			go func() {
				c := sc.Server(snc)
				_, err := io.Copy(c, c) // echo until the client's close_notify
				c.Close()
				srvErr <- err
			}()
			c := cc.Client(nc, "")
			defer c.Close()
			if err := c.Handshake(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := c.ConnectionState(); st.Version != tlsbackend.VersionTLS13 || len(st.PeerCertificates) == 0 {
				t.Fatalf("state: version %#x, %d peer certificates", st.Version, len(st.PeerCertificates))
			}
			msg := bytes.Repeat([]byte("0123456789abcdef"), 10000) // several records and write chunks
			// The count is the process's: no collection in the window,
			// so no cleanup of an earlier test's config or conn starts
			// in it (those queued before make fast calls too).
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			cgoCalls := runtime.NumCgoCall()
			werr := make(chan error, 1)
			go func() { _, err := c.Write(msg); werr <- err }()
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("echo differs")
			}
			// The records both ways (the client's and the server's reads
			// and writes) made cgo calls only on the cgo path.
			if n := runtime.NumCgoCall() - cgoCalls; fast != (n == 0) {
				t.Errorf("%d cgo calls for the records with fast calls %v", n, fast)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Read(got); n != 0 || err != io.EOF {
				t.Fatalf("after close_notify both ways: Read = %d, %v; want 0, EOF", n, err)
			}
			if err := <-srvErr; err != nil {
				t.Fatalf("server: %v", err)
			}
		})
	}
}

// TestWriteAfterClose: a Write that starts after Close fails with
// net.ErrClosed at once (it must not take the write lock Close's
// close_notify may be waiting for).
func TestWriteAfterClose(t *testing.T) {
	sc, cc := testConfigs(t)
	snc, nc := tcpPair(t)
	go func() {
		c := sc.Server(snc)
		io.Copy(io.Discard, c)
		c.Close()
	}()
	c := cc.Client(nc, "")
	if err := c.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}
