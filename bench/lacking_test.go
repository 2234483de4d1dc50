package bench

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLacking checks which requested Monolake variants a build is said to
// lack: none for a full build, the io_uring and OpenSSL ones for a pure-Go
// build (what scripts/bench.sh falls back to), every one without a binary.
func TestLacking(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "monolake")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	full := Features{Runtimes: []string{RuntimeURing, RuntimeEpoll}, TLSBackends: []string{"gotls", "openssl"}}
	pureGo := Features{Runtimes: []string{RuntimeEpoll}, TLSBackends: []string{"gotls"}}
	opt := func(protos []Proto, idle []Mode) Options {
		return Options{Monolake: bin, Matrix: Matrix{Protos: protos, Conns: []int{50}, Bodies: []string{"1k"}},
			Runtimes: []string{RuntimeEpoll, RuntimeURing}, TLSBackends: []string{"gotls", "openssl"},
			IdleConns: len(idle) * 100, IdleModes: idle}
	}
	tests := []struct {
		name     string
		opt      Options
		features Features
		want     []string // variant names
	}{
		{"full build", opt([]Proto{ProtoHTTP1, ProtoHTTPS}, nil), full, nil},
		{"pure Go, http1 only", opt([]Proto{ProtoHTTP1}, nil), pureGo, []string{"monolake/uring"}},
		{"pure Go, http1 and https", opt([]Proto{ProtoHTTP1, ProtoHTTPS}, nil), pureGo,
			[]string{"monolake/epoll/openssl", "monolake/uring", "monolake/uring/gotls", "monolake/uring/openssl"}},
		{"pure Go, idle-tls only", opt(nil, []Mode{ModeHTTPS}), pureGo,
			[]string{"monolake/epoll/openssl", "monolake/uring/gotls", "monolake/uring/openssl"}},
		{"no binary, l4 only", func() Options { o := opt([]Proto{ProtoL4}, nil); o.Monolake = ""; return o }(), full,
			[]string{"monolake/epoll", "monolake/uring"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{opt: tt.opt, features: tt.features, haveFeatures: true}
			var got []string
			for _, l := range r.Lacking() {
				name, why, _ := strings.Cut(l, ":")
				if why == "" {
					t.Errorf("%q says no reason", l)
				}
				got = append(got, name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Lacking() = %q, want %q", r.Lacking(), tt.want)
			}
		})
	}
}
