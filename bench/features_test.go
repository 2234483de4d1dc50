package bench

import (
	"slices"
	"testing"
)

func TestParseFeatures(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		runtimes []string
		backends []string
		ok       bool
	}{
		{
			name:     "pure Go",
			in:       "monolake 44317d3-dirty (go1.26.8, linux/amd64)\nruntimes: epoll (Go netpoller)\ntls backends: gotls (crypto/tls)\n",
			runtimes: []string{"epoll"}, backends: []string{"gotls"}, ok: true,
		},
		{
			name:     "cgo",
			in:       "monolake v1 (go1.26.8, linux/amd64)\nruntimes: io_uring (liburing 2.3), epoll (Go netpoller)\ntls backends: gotls (crypto/tls), openssl (OpenSSL 3.0.19)\n",
			runtimes: []string{"uring", "epoll"}, backends: []string{"gotls", "openssl"}, ok: true,
		},
		{
			name: "old binary",
			in:   "monolake version dev\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := ParseFeatures(tt.in)
			if ok != tt.ok || !slices.Equal(f.Runtimes, tt.runtimes) || !slices.Equal(f.TLSBackends, tt.backends) {
				t.Errorf("ParseFeatures = %+v, %v; want runtimes %v backends %v ok %v", f, ok, tt.runtimes, tt.backends, tt.ok)
			}
		})
	}
}
