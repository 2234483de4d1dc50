package config

import (
	"errors"
	"strings"
	"testing"
)

// httpsBase is base with an https upstream; line 10 is the upstreams line.
var httpsBase = strings.Replace(base, "http://127.0.0.1:9000", "https://api.example:8443", 1)

const sniBase = `[servers.t]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:8443" }
sni_routes = [
  { server_names = ["a.example", "*.B.example"], upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9001" } }] },
  { server_names = ["c.example"], load_balancer = "round_robin", upstreams = [{ endpoint = { type = "unix", value = "/run/c.sock" } }] },
]
route = { upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }] }
`

func TestUpstreamTLS(t *testing.T) {
	tests := []struct {
		name, toml string
		want       UpstreamTLS
	}{
		{"defaults", httpsBase, UpstreamTLS{Stack: TLSGo}},
		{"server stack", strings.Replace(httpsBase, `name = "a"`, "name = \"a\"\ntls = { chain = \"c\", key = \"k\", stack = \"native_tls\" }", 1), UpstreamTLS{Stack: TLSOpenSSL}},
		{"all keys", httpsBase + `upstream_tls = { ca = "ca.pem", cert = "c.pem", key = "k.pem", stack = "openssl", server_name = "api.internal" }`,
			UpstreamTLS{CA: "ca.pem", Cert: "c.pem", Key: "k.pem", Stack: TLSOpenSSL, ServerName: "api.internal"}},
		{"skip verify", httpsBase + `upstream_tls = { insecure_skip_verify = true, stack = "rustls" }`, UpstreamTLS{InsecureSkipVerify: true, Stack: TLSGo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Servers["a"].Routes[0].UpstreamTLS
			if got == nil || *got != tt.want {
				t.Fatalf("upstream tls %+v, want %+v", got, tt.want)
			}
		})
	}
	c, err := Parse("t.toml", []byte(base))
	if err != nil || c.Servers["a"].Routes[0].UpstreamTLS != nil {
		t.Fatalf("a plain route has upstream TLS: %v", err)
	}
}

// TestServerTLSSessionTickets: tickets are on unless session_tickets = false.
func TestServerTLSSessionTickets(t *testing.T) {
	for _, tt := range []struct {
		line string
		want bool
	}{
		{`tls = { chain = "c", key = "k" }`, true},
		{`tls = { chain = "c", key = "k", session_tickets = true }`, true},
		{`tls = { chain = "c", key = "k", session_tickets = false }`, false},
	} {
		c, err := Parse("t.toml", []byte(strings.Replace(base, `name = "a"`, "name = \"a\"\n"+tt.line, 1)))
		if err != nil {
			t.Fatalf("%s: %v", tt.line, err)
		}
		if got := c.Servers["a"].TLS.SessionTickets; got != tt.want {
			t.Errorf("%s: session tickets %v, want %v", tt.line, got, tt.want)
		}
	}
}

func TestSNIRoutes(t *testing.T) {
	c, err := Parse("t.toml", []byte(sniBase))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Servers["t"]
	if len(s.SNIRoutes) != 2 || s.Route == nil {
		t.Fatalf("%+v", s)
	}
	r0, r1 := s.SNIRoutes[0], s.SNIRoutes[1]
	if strings.Join(r0.ServerNames, ",") != "a.example,*.b.example" || r0.LoadBalancer != LBRandom || r0.Line != 5 {
		t.Errorf("sni route 0: %+v", r0)
	}
	if r1.LoadBalancer != LBRoundRobin || r1.Upstreams[0].Endpoint.Network() != "unix" {
		t.Errorf("sni route 1: %+v", r1)
	}
	if !strings.Contains(c.Summary(), "sni=a.example,*.b.example -> random") {
		t.Errorf("summary:\n%s", c.Summary())
	}
	// The default route may be left out.
	noDefault := strings.Replace(sniBase, "route = {", "# route = {", 1)
	c, err = Parse("t.toml", []byte(noDefault))
	if err != nil || c.Servers["t"].Route != nil {
		t.Fatalf("sni_routes without a default: %v", err)
	}
	_ = c.Summary()
}

func TestTLSKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		line int
		want string
	}{
		{"session_tickets not a bool", strings.Replace(base, `name = "a"`, "name = \"a\"\ntls = { chain = \"c\", key = \"k\", session_tickets = \"no\" }", 1), 6, "into session_tickets (want true or false)"},
		{"upstream_tls unknown key", httpsBase + `upstream_tls = { verify = false }`, 11, "verify: unknown key"},
		{"upstream_tls cert without key", httpsBase + `upstream_tls = { cert = "c.pem" }`, 11, "cert and key go together"},
		{"upstream_tls key without cert", httpsBase + `upstream_tls = { key = "k.pem" }`, 11, "cert and key go together"},
		{"upstream_tls bad stack", httpsBase + `upstream_tls = { stack = "boringssl" }`, 11, `unknown TLS stack "boringssl"`},
		{"upstream_tls empty ca", httpsBase + `upstream_tls = { ca = "" }`, 11, "empty ca"},
		{"upstream_tls skip and ca", httpsBase + `upstream_tls = { ca = "ca.pem", insecure_skip_verify = true }`, 11, "makes ca useless"},
		{"upstream_tls without https", base + `upstream_tls = { ca = "ca.pem" }`, 11, "no upstream of this route is an https URI"},
		{"sni on http server", strings.Replace(base, `name = "a"`, "name = \"a\"\nsni_routes = [{ server_names = [\"a.example\"], upstreams = [] }]", 1), 6, "sni_routes are for tcp servers"},
		{"sni unknown key", strings.Replace(sniBase, `server_names = ["c.example"]`, `server_names = ["c.example"], names = ["x"]`, 1), 6, "names: unknown key"},
		{"sni bad name", strings.Replace(sniBase, `"c.example"`, `"c.example:443"`, 1), 6, `server name "c.example:443"`},
		{"sni inner wildcard", strings.Replace(sniBase, `"c.example"`, `"c.*.example"`, 1), 6, "wildcard only as a leading"},
		{"sni ip", strings.Replace(sniBase, `"c.example"`, `"10.0.0.1"`, 1), 6, "want a DNS name"},
		{"sni duplicate name", strings.Replace(sniBase, `"c.example"`, `"A.example"`, 1), 6, `"a.example" is already routed by sni_routes[0]`},
		{"sni no names", strings.Replace(sniBase, `server_names = ["c.example"], `, "", 1), 6, "missing key server_names"},
		{"sni no upstreams", strings.Replace(sniBase, `upstreams = [{ endpoint = { type = "unix", value = "/run/c.sock" } }]`, "upstreams = []", 1), 6, "no upstreams"},
		{"sni uri upstream", strings.Replace(sniBase, `type = "unix", value = "/run/c.sock"`, `type = "uri", value = "https://x"`, 1), 6, `not "uri"`},
		{"sni empty", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nsni_routes = []\n", 4, "empty sni_routes"},
		{"sni with tls", strings.Replace(sniBase, `proxy_type = "tcp"`, "proxy_type = \"tcp\"\ntls = { chain = \"c\", key = \"k\" }", 1), 5, "cannot be combined with tls"},
		{"tcp with neither", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\n", 0, "a tcp server needs route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tt.toml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.toml)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *config.Error: %T", err)
			}
			if tt.line > 0 && ce.Line != tt.line {
				t.Errorf("error %q at line %d, want line %d", msg, ce.Line, tt.line)
			}
		})
	}
}
