package httpproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/http1"
	"github.com/monolake-go/monolake/proxy/httpproxy"
	"github.com/monolake-go/monolake/proxy/server"
)

// guard is a user Layer: it rejects requests under /admin/ with 403 and
// adds a header to every other response.
func guard(inner httpproxy.Service) httpproxy.Service {
	return proxy.ServiceFunc[*httpproxy.Request, *httpproxy.Response](
		func(ctx context.Context, req *httpproxy.Request) (*httpproxy.Response, error) {
			if bytes.HasPrefix(req.Path, []byte("/admin/")) {
				resp := req.Response()
				resp.SetText(403, "403 Forbidden\n")
				return resp, nil
			}
			resp, err := inner.Call(ctx, req)
			if err != nil {
				return nil, err
			}
			resp.Headers = append(resp.Headers, http1.Header{Name: []byte("X-Guarded"), Value: []byte("yes")})
			return resp, nil
		})
}

// Example_layer runs a configured proxy with a user Layer in its stack.
func Example_layer() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin saw %s", r.URL.Path)
	}))
	defer origin.Close()

	cfg, err := config.Parse("example.toml", []byte(`
[servers.web]
name = "example"
listener = { type = "socket", value = "127.0.0.1:8080" }

[[servers.web.routes]]
path = "/{*path}"
upstreams = [{ endpoint = { type = "uri", value = "`+origin.URL+`" } }]
`))
	if err != nil {
		panic(err)
	}
	h, err := httpproxy.New(cfg.Servers["web"], httpproxy.Options{
		Layers: []httpproxy.Middleware{guard},
	})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	srv := server.New(h, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the example's own port
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	for _, path := range []string{"/hello", "/admin/users"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %d X-Guarded=%q %q\n", path, resp.StatusCode, resp.Header.Get("X-Guarded"), body)
	}
	// Output:
	// /hello: 200 X-Guarded="yes" "origin saw /hello"
	// /admin/users: 403 X-Guarded="" "403 Forbidden\n"
}
