package l4

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
)

// TestRelaySparesSlowReader: a client that reads steadily but slower than
// a splice's pipe (1 MiB) drains in two idle timeouts keeps its relay: the
// direction writing to it reports nothing until its call returns, but the
// client's TCP acknowledgements show the bytes moving. It was closed as
// idle (about 4 of 8 MiB delivered).
func TestRelaySparesSlowReader(t *testing.T) {
	const idle = 100 * time.Millisecond
	const total = 8 << 20
	d, err := netio.DriverForTests()
	if err != nil {
		t.Fatal(err)
	}
	lnP, err := d.Listen("tcp", "127.0.0.1:0") // the proxy's side
	if err != nil {
		t.Fatal(err)
	}
	defer lnP.Close()
	lnU, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lnU.Close()
	go func() { // the upstream: total bytes at full speed, then EOF
		c, err := lnU.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(make([]byte, total))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	}()
	client, err := net.Dial("tcp", lnP.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.(*net.TCPConn).SetReadBuffer(64 << 10)
	a, err := lnP.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Dial(context.Background(), "tcp", lnU.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := relay(context.Background(), a, b, idle)
		a.Close()
		b.Close()
		done <- err
	}()
	client.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64<<10)
	var got int64
	for { // about 3 MB/s: a pipe's worth takes over 3 idle timeouts
		n, err := client.Read(buf)
		got += int64(n)
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
	if got != total {
		t.Fatalf("the client got %d of %d bytes: the relay was closed mid-transfer", got, total)
	}
}
