package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProbeChecksCaseBody probes a case through a loopback server: the
// probe asks for the case's own body and wants all of it, so a server that
// answers the 1 KiB body right and the 16 KiB one short fails on the
// latter.
func TestProbeChecksCaseBody(t *testing.T) {
	serve := func(short string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			name := strings.TrimPrefix(req.URL.Path, "/")
			size, ok := Bodies[name]
			if !ok {
				http.NotFound(w, req)
				return
			}
			if name == short {
				size = Bodies["1k"]
			}
			w.Write([]byte(strings.Repeat("a", size)))
		}))
	}
	honest, cutting := serve(""), serve("16k")
	defer honest.Close()
	defer cutting.Close()

	tests := []struct {
		srv  *httptest.Server
		body string
		ok   bool
	}{
		{honest, "0", true},
		{honest, "1k", true},
		{honest, "16k", true},
		{cutting, "1k", true},
		{cutting, "16k", false},
	}
	var r Runner
	for _, tt := range tests {
		c := Case{Proto: ProtoHTTP1, Conns: 50, Body: tt.body}
		name := "honest"
		if tt.srv == cutting {
			name = "cutting 16k"
		}
		t.Run(name+"/"+tt.body, func(t *testing.T) {
			target := &live{name: name, plain: strings.TrimPrefix(tt.srv.URL, "http://"), probed: map[probeKey]string{}}
			why := r.probe(context.Background(), target, c)
			if (why == "") != tt.ok {
				t.Errorf("probe of body %s: %q, want ok %v", tt.body, why, tt.ok)
			}
		})
	}
}
