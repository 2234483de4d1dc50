//go:build openssl && cgo

package openssl

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inQueue is what c's socket received and nobody read yet.
func inQueue(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n
}

// waitQueued waits until c's socket holds at least n unread bytes.
func waitQueued(t *testing.T, c net.Conn, n int) {
	t.Helper()
	for i := 0; inQueue(t, c) < n; i++ {
		if i == 2000 {
			t.Fatalf("%d bytes queued, want %d", inQueue(t, c), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReadWholeRecords: a Read returns the plaintext of every whole record
// at hand, not one record's, and Buffered says whether more is. What
// ends its run of records comes with the next Read: close_notify as io.EOF,
// a record that fails to decrypt as OpenSSL's error, not as a wait for more.
func TestReadWholeRecords(t *testing.T) {
	sc, cc := testConfigs(t)
	for _, end := range []string{"close_notify", "bad record"} {
		t.Run(strings.ReplaceAll(end, " ", "-"), func(t *testing.T) {
			sRaw, cRaw := tcpPair(t)
			srv, cli := sc.Server(sRaw), cc.Client(cRaw, "a.test")
			defer srv.Close()
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hs := make(chan error, 1)
			go func() { hs <- srv.Handshake(ctx) }()
			if err := cli.Handshake(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-hs; err != nil {
				t.Fatal(err)
			}
			// Drain what the handshake left (session tickets) first.
			cli.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, err := cli.Read(make([]byte, 64)); n != 0 || !isTimeout(err) {
				t.Fatalf("after the handshake Read = %d, %v; want a timeout", n, err)
			}
			cli.SetReadDeadline(time.Time{})

			before := inQueue(t, cRaw)
			for _, s := range []string{"ab", "cd", "ef"} {
				if _, err := srv.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			switch end {
			case "close_notify":
				if err := srv.Close(); err != nil {
					t.Fatal(err)
				}
			case "bad record": // application data that does not decrypt
				rec := append([]byte{23, 3, 3, 0, 40}, bytes.Repeat([]byte{0x5a}, 40)...)
				if _, err := sRaw.Write(rec); err != nil {
					t.Fatal(err)
				}
			}
			waitQueued(t, cRaw, before+3*(5+2+1+16)+5)
			time.Sleep(10 * time.Millisecond) // the rest of the last record
			buffered := cli.(interface{ Buffered() int }).Buffered
			p := make([]byte, 64)
			n, err := cli.Read(p[:2])
			if err != nil || string(p[:n]) != "ab" {
				t.Fatalf("Read of 2 = %q, %v; want \"ab\"", p[:n], err)
			}
			if b := buffered(); b == 0 {
				t.Error("Buffered = 0 with two records at hand")
			}
			n, err = cli.Read(p)
			if err != nil || string(p[:n]) != "cdef" {
				t.Fatalf("Read = %q, %v; want the two records' \"cdef\"", p[:n], err)
			}
			if b := buffered(); b != 0 {
				t.Errorf("Buffered = %d with only the %s at hand, want 0: no more data", b, end)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				n, err = cli.Read(p)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cli.Close()
				<-done
				t.Fatalf("the next Read waited for the socket; the %s was at hand", end)
			}
			switch {
			case end == "close_notify" && (n != 0 || err != io.EOF):
				t.Errorf("next Read = %d, %v; want io.EOF", n, err)
			case end == "bad record" && (n != 0 || err == nil || err == io.EOF || !strings.Contains(err.Error(), "openssl")):
				t.Errorf("next Read = %d, %v; want OpenSSL's error", n, err)
			}
			if end == "bad record" {
				t.Logf("error: %v", err)
			}
		})
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
