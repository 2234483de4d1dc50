package httpproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/server"
)

// TestDrainClosesIdleKeepAlive: a graceful stop closes idle keep-alive
// connections at once and ends a busy one after its response with
// Connection: close, so Shutdown does not wait for the keep-alive timeout.
func TestDrainClosesIdleKeepAlive(t *testing.T) {
	slow := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-slow
		}
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	up := origin.Listener.Addr().String()
	cfg, err := config.Parse("d.toml", []byte(fmt.Sprintf(`[servers.d]
listener = { type = "socket", value = "127.0.0.1:1" }
[[servers.d.routes]]
path = "/{*p}"
upstreams = [{ endpoint = { type = "uri", value = "http://%s" } }]
`, up)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg.Servers["d"], Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(h, nil)
	go srv.Serve(ln)

	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader, path string) *http.Response {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp
	}
	idle, idleR := dial()
	get(idle, idleR, "/warm")
	busy, busyR := dial()
	fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // let /slow reach the upstream

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	// The idle connection is closed by the proxy without a request.
	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: want EOF at drain, got %v", err)
	}
	close(slow)
	resp, err := http.ReadResponse(busyR, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if !resp.Close {
		t.Error("response during drain lacks Connection: close")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waiting after every connection was answered")
	}
}
