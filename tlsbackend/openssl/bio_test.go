//go:build openssl && cgo

package openssl

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// TestBIOsShrink: the SSL's memory BIOs keep the buffers of large records
// while the conn is busy (64 KiB each way leaves tens of KiB), and a conn
// going idle (NotifyReadable, called on every runtime) frees them; the conn
// still works after.
func TestBIOsShrink(t *testing.T) {
	sc, cc := testConfigs(t)
	snc, nc := tcpPair(t)
	cl := cc.Client(nc, "")
	defer cl.Close()
	srv := sc.Server(snc).(*conn)
	defer srv.Close()
	caps := func() (r, w int) {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return cBIOCaps(srv.b.h)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB: one write chunk
	echo := func(what string) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			got := make([]byte, len(big))
			if _, err := io.ReadFull(srv, got); err != nil {
				done <- err
				return
			}
			_, err := srv.Write(got)
			done <- err
		}()
		if _, err := cl.Write(big); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(big))
		if _, err := io.ReadFull(cl, got); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: server: %v", what, err)
		}
		if !bytes.Equal(got, big) {
			t.Fatalf("%s: echo differs", what)
		}
	}
	hs := make(chan error, 1)
	go func() { hs <- cl.Handshake(context.Background()) }()
	if err := srv.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-hs; err != nil {
		t.Fatal(err)
	}
	// The server's flight went through the write BIO, which keeps its
	// buffer.
	if _, w := caps(); w == 0 {
		t.Fatal("after the handshake the write BIO holds no buffer")
	}
	echo("first echo")
	if r, w := caps(); r < 16<<10 || w < 64<<10 {
		t.Fatalf("after 64 KiB each way the BIOs hold %d and %d bytes, want their large buffers", r, w)
	}
	if srv.NotifyReadable(func() {}) {
		t.Fatal("NotifyReadable arranged a notification on a plain TCP conn")
	}
	if r, w := caps(); r != 0 || w != 0 {
		t.Fatalf("idle, the BIOs hold %d and %d bytes, want none", r, w)
	}
	echo("echo after trimming")
}
