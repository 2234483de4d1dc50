package l4

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
)

// TestRelaySparesSlowReader: a client that reads steadily but slower than
// a splice's pipe (1 MiB) drains in two idle timeouts keeps its relay: the
// direction writing to it reports nothing until its call returns, but the
// client's TCP acknowledgements show the bytes moving. It was closed as
// idle (about 4 of 8 MiB delivered).
//
// A unix socket client that half-closed its side first, so that the
// direction from it ended and watches the other (guardStuck), is spared
// too: its unread bytes keep changing.
func TestRelaySparesSlowReader(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) { testRelaySparesSlowReader(t, network) })
	}
}

func testRelaySparesSlowReader(t *testing.T, network string) {
	const idle = 100 * time.Millisecond
	const total = 8 << 20
	d, err := netio.DriverForTests()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "p.sock")
	}
	lnP, err := d.Listen(network, addr) // the proxy's side
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
	client, err := net.Dial(network, lnP.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if tc, ok := client.(*net.TCPConn); ok {
		tc.SetReadBuffer(64 << 10)
	} else {
		client.(*net.UnixConn).CloseWrite()
	}
	a, err := lnP.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Dial(context.Background(), "tcp", lnU.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var moved [2]int64
	go func() {
		var err error
		moved, err = relay(context.Background(), a, b, idle)
		a.Close()
		b.Close()
		done <- err
	}()
	client.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64<<10)
	var got int64
	var end error
	for { // about 3 MB/s: a pipe's worth takes over 3 idle timeouts
		n, err := client.Read(buf)
		got += int64(n)
		if err != nil {
			end = err
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
	if got != total {
		// moved says whether the relay counted the missing bytes as
		// written (lost after its write returned) or never had them.
		t.Fatalf("the client got %d of %d bytes, then %v: the relay was closed mid-transfer (it counted %d moved to the client)", got, total, end, moved[1])
	}
}

// TestResumeInGrace: traffic that resumes just after the idle timeout
// fired, in the prober's grace, is not cut. When the idle direction probed,
// the other direction's return from the poke (0 bytes) read as "nothing
// moved", although it had gone back to a splice that was moving the new
// bytes: 4 of 6 relays were cut mid-stream, bytes the client had written
// lost. Which direction probes is a race, so several relays run at once.
// A client on a unix socket, which keeps no received count for the prober
// to read, too.
func TestResumeInGrace(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) { testResumeInGrace(t, network) })
	}
}

func testResumeInGrace(t *testing.T, network string) {
	const idle = time.Second
	const resume = idle + idle/4 // in the grace (idle/2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for i := range 6 {
		wg.Go(func() {
			up, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Error(err)
				return
			}
			defer up.Close()
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "front.sock")
			}
			front, err := net.Listen(network, addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer front.Close()
			got := make(chan int64, 1)
			go func() {
				c, err := up.Accept()
				if err != nil {
					got <- -1
					return
				}
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				got <- n
			}()
			client, err := net.Dial(network, front.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer client.Close()
			a, _ := front.Accept()
			b, _ := net.Dial("tcp", up.Addr().String())
			start := time.Now()
			ended := make(chan time.Duration, 1)
			go func() {
				relay(context.Background(), a, b, idle)
				a.Close()
				b.Close()
				ended <- time.Since(start)
			}()
			time.Sleep(resume - time.Since(start))
			buf := make([]byte, 1024)
			var sent int64
			var werr error
			for end := time.Now().Add(time.Second); time.Now().Before(end); {
				n, err := client.Write(buf)
				sent += int64(n)
				if err != nil {
					werr = err
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			client.(interface{ CloseWrite() error }).CloseWrite()
			at, n := <-ended, <-got
			if werr == nil && n == sent {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if at < resume {
				// Closed as idle before the client resumed (a machine too
				// slow to resume in the grace): right, and no test.
				t.Logf("relay %d closed at %v, before the resume", i, at)
				return
			}
			failures = append(failures, fmt.Sprintf("relay %d cut at %v: client sent %d (write error %v), upstream got %d", i, at, sent, werr, n))
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("relays cut as idle while the client was sending again:\n%s", strings.Join(failures, "\n"))
	}
}
