//go:build openssl && cgo

package openssl

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// lender is a net.Conn that lends its receive buffers, as the io_uring
// runtime's conns do (netio.Borrower). Buffers are small, so a record
// spans several, and poisoned on release, so a conn that used one after
// giving it back would see garbage.
type lender struct {
	net.Conn
	lent, double atomic.Int32
	borrows      atomic.Int32
}

func (l *lender) ReadBorrow() ([]byte, func(), error) {
	b := make([]byte, 700)
	n, err := l.Conn.Read(b)
	l.borrows.Add(1)
	l.lent.Add(1)
	var once atomic.Bool
	return b[:n], func() {
		if !once.CompareAndSwap(false, true) {
			l.double.Add(1)
			return
		}
		for i := range b {
			b[i] = 0xAA
		}
		l.lent.Add(-1)
	}, err
}

func (l *lender) Read([]byte) (int, error) {
	panic("openssl: Read on a conn that lends its buffers")
}

// TestBorrowedReads: on a conn that lends its buffers the server reads
// ciphertext in place (no Read of its own), gives every buffer back once,
// and none is held between calls: through the handshake, records larger
// than a buffer, and the peer's close_notify.
func TestBorrowedReads(t *testing.T) {
	sc, cc := testConfigs(t)
	snc, nc := tcpPair(t)
	type report struct {
		echoed           int64
		err              error
		lentAfterHS      int32
		lent, double, nb int32
	}
	done := make(chan report, 1)
	go func() {
		l := &lender{Conn: snc}
		c := sc.Server(l)
		var r report
		if r.err = c.Handshake(context.Background()); r.err == nil {
			r.lentAfterHS = l.lent.Load()
			r.echoed, r.err = io.Copy(c, c) // until the client's close_notify
		}
		c.Close()
		r.lent, r.double, r.nb = l.lent.Load(), l.double.Load(), l.borrows.Load()
		done <- r
	}()
	c := cc.Client(nc, "")
	defer c.Close()
	var sent []byte
	for _, size := range []int{1, 1000, 16 << 10, 100 << 10} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		for i := range msg {
			msg[i] += byte(i / 7)
		}
		werr := make(chan error, 1)
		go func() { _, err := c.Write(msg); werr <- err }()
		got := make([]byte, size)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: echo differs", size)
		}
		sent = append(sent, msg...)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	switch {
	case r.err != nil:
		t.Fatalf("server: %v", r.err)
	case r.echoed != int64(len(sent)):
		t.Fatalf("server echoed %d bytes, want %d", r.echoed, len(sent))
	case r.lentAfterHS != 0 || r.lent != 0:
		t.Fatalf("buffers still lent: %d after the handshake, %d at the end", r.lentAfterHS, r.lent)
	case r.double != 0:
		t.Fatalf("%d buffers given back twice", r.double)
	case r.nb < int32(len(sent)/700):
		t.Fatalf("%d borrows for %d bytes: the server did not read in place", r.nb, len(sent))
	}
}
