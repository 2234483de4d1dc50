package bench

import (
	"regexp"
	"slices"
	"testing"
)

func TestMatrixCases(t *testing.T) {
	m := Matrix{
		Protos:   []Proto{ProtoHTTP1, ProtoL4, ProtoClose},
		Conns:    []int{50, 200},
		Bodies:   []string{"16k", "0"},
		L4Bodies: []string{"0", "64k"},
	}
	var got []string
	for _, c := range m.Cases() {
		got = append(got, c.Name())
	}
	want := []string{
		"http1/c=50/body=16k", "http1/c=50/body=0", "http1/c=200/body=16k", "http1/c=200/body=0",
		"l4/c=50/body=0", "l4/c=50/body=64k", "l4/c=200/body=0", "l4/c=200/body=64k",
		"close/c=50/body=0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Cases() = %v\nwant %v", got, want)
	}
	m.Filter = regexp.MustCompile(`^l4/.*64k`)
	got = got[:0]
	for _, c := range m.Cases() {
		got = append(got, c.Name())
	}
	if want := []string{"l4/c=50/body=64k", "l4/c=200/body=64k"}; !slices.Equal(got, want) {
		t.Errorf("filtered Cases() = %v, want %v", got, want)
	}
}

func TestParseBody(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"}, {"0B", "0"}, {"1k", "1k"}, {"1KiB", "1k"}, {"1024", "1k"},
		{"16k", "16k"}, {"16384", "16k"}, {"64KiB", "64k"},
	}
	for _, tt := range tests {
		got, err := ParseBody(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBody(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"2k", "", "abc"} {
		if _, err := ParseBody(in); err == nil {
			t.Errorf("ParseBody(%q) succeeded", in)
		}
	}
}

func TestCaseProperties(t *testing.T) {
	tests := []struct {
		p                  Proto
		mode               Mode
		tls, h2, connClose bool
	}{
		{ProtoHTTP1, ModeHTTP, false, false, false},
		{ProtoHTTPS, ModeHTTPS, true, false, false},
		{ProtoH2, ModeHTTPS, true, true, false},
		{ProtoL4, ModeTCP, false, false, false},
		{ProtoClose, ModeHTTP, false, false, true},
		{ProtoCloseTLS, ModeHTTPS, true, false, true},
	}
	for _, tt := range tests {
		c := Case{Proto: tt.p, Conns: 1, Body: "1k"}
		if c.Mode() != tt.mode || c.TLS() != tt.tls || c.H2() != tt.h2 || c.Close() != tt.connClose {
			t.Errorf("%s: mode %s tls %v h2 %v close %v", tt.p, c.Mode(), c.TLS(), c.H2(), c.Close())
		}
	}
	if c := (Case{Body: "16k"}); c.Path() != "/16k" {
		t.Errorf("Path() = %q", c.Path())
	}
}
