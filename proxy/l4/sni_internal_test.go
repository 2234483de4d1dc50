package l4

import (
	"testing"

	"github.com/monolake-go/monolake/proxy/config"
)

func TestSNITableMatch(t *testing.T) {
	up := []config.Upstream{{Endpoint: config.Endpoint{Type: config.TypeSocket, Value: "127.0.0.1:1"}, Weight: 1}}
	tbl, err := newSNITable("t", []config.SNIRoute{
		{ServerNames: []string{"a.example", "*.a.example"}, L4Route: config.L4Route{Upstreams: up}},
		{ServerNames: []string{"*.example"}, L4Route: config.L4Route{Upstreams: up}},
		{ServerNames: []string{"x.a.example"}, L4Route: config.L4Route{Upstreams: up}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"a.example":     "a.example",
		"b.a.example":   "a.example", // *.a.example beats *.example
		"c.b.a.example": "a.example",
		"x.a.example":   "x.a.example", // exact beats wildcard
		"b.example":     "*.example",
		"example":       "",
		"a.example.com": "",
		"":              "",
	} {
		got := ""
		if r := tbl.match(name); r != nil {
			got = r.name
		}
		if got != want {
			t.Errorf("match(%q) = route %q, want %q", name, got, want)
		}
	}
}
