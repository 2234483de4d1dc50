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
	addr, stop := serveExample(guard)
	defer stop()
	for _, path := range []string{"/hello", "/admin/users"} {
		resp, err := http.Get("http://" + addr + path)
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

// meter is a user Layer that learns, once each response went out, its
// status and the body bytes the client was sent.
type meter struct{ done chan httpproxy.Done }

func (m *meter) layer(inner httpproxy.Service) httpproxy.Service {
	return proxy.ServiceFunc[*httpproxy.Request, *httpproxy.Response](
		func(ctx context.Context, req *httpproxy.Request) (*httpproxy.Response, error) {
			req.OnDone(meterDone, m) // a top-level function and a pointer: no allocation
			return inner.Call(ctx, req)
		})
}

func meterDone(arg any, req *httpproxy.Request, d httpproxy.Done) {
	arg.(*meter).done <- d
}

// ExampleRequest_OnDone records what each response sent, after its body.
func ExampleRequest_OnDone() {
	m := &meter{done: make(chan httpproxy.Done, 1)}
	addr, stop := serveExample(m.layer)
	defer stop()
	resp, err := http.Get("http://" + addr + "/hello")
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := <-m.done
	fmt.Printf("status %d, %d body bytes sent, whole: %v\n", d.Status, d.BodySent, d.Complete)
	// Output:
	// status 200, 17 body bytes sent, whole: true
}

// serveExample serves a configured proxy, with layer in its stack, in
// front of an origin that answers "origin saw PATH"; it returns the
// proxy's address and what stops it all.
func serveExample(layer httpproxy.Middleware) (addr string, stop func()) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin saw %s", r.URL.Path)
	}))
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
		Layers: []httpproxy.Middleware{layer},
	})
	if err != nil {
		panic(err)
	}
	srv := server.New(h, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the example's own port
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	return ln.Addr().String(), func() {
		srv.Close()
		h.Close()
		origin.Close()
	}
}
