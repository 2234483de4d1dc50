package worker

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"

	"github.com/monolake-go/monolake/proxy/porttest"
)

// TestSmallRecvBuffersProxyHTTP: with recv_buffer_kib = 1 every request
// and response head (6 KiB of fields) and body (80 KiB) spans many
// received buffers, and the io_uring worker still proxies them whole, on
// one keep-alive connection, with 16 buffers shared by both sides.
func TestSmallRecvBuffersProxyHTTP(t *testing.T) {
	needUring(t)

	long := strings.Repeat("x", 6<<10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-Long") != long {
			http.Error(w, "X-Long arrived cut", http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("X-Long-Back", long)
		w.Header().Set("X-Sum", fmt.Sprintf("%x", sum))
		w.Write(bytes.Repeat(body, 2)) // 160 KiB back
	})}
	go up.Serve(ln)
	defer up.Close()

	addr := porttest.Free(t)
	inst := startInProcess(t, fmt.Sprintf(`[runtime]
worker_threads = 0
recv_buffers = 16
recv_buffer_kib = 1
[servers.p]
name = "p"
listener = { type = "socket", value = %q }
[[servers.p.routes]]
path = "/{*p}"
upstreams = [{ endpoint = { type = "uri", value = "http://%s" } }]
`, addr, ln.Addr()))
	defer inst.close()
	if u, ok := inst.drv.(interface{ RecvBufferSize() int }); !ok || u.RecvBufferSize() != 1<<10 {
		t.Fatalf("driver %s: want io_uring with 1 KiB receive buffers", inst.drv.Name())
	}

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i := range 5 {
		body := bytes.Repeat([]byte{byte('a' + i)}, 80<<10)
		req, err := http.NewRequest("POST", "http://"+addr+"/echo", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Long", long)
		reused := false
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: reading the body: %v", i, err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, got)
		}
		if want := fmt.Sprintf("%x", sha256.Sum256(body)); resp.Header.Get("X-Sum") != want {
			t.Fatalf("request %d: the origin saw a body of sum %s, want %s", i, resp.Header.Get("X-Sum"), want)
		}
		if resp.Header.Get("X-Long-Back") != long {
			t.Fatalf("request %d: X-Long-Back arrived cut (%d bytes)", i, len(resp.Header.Get("X-Long-Back")))
		}
		if !bytes.Equal(got, bytes.Repeat(body, 2)) {
			t.Fatalf("request %d: %d bytes back, want %d", i, len(got), 2*len(body))
		}
		if i > 0 && !reused {
			t.Fatalf("request %d: on a new connection; the proxy closed the last one", i)
		}
	}
}
