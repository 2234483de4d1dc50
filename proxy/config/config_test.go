package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatalf("embedded default config: %v", err)
	}
	if c.Demo == nil || c.Demo.Listener.Value != "127.0.0.1:8081" {
		t.Fatalf("default config has no demo upstream: %+v", c.Demo)
	}
	s := c.Servers["demo"]
	if s == nil || s.Listener.Value != "127.0.0.1:8080" {
		t.Fatalf("default server: %+v", s)
	}
	if c.Runtime.Workers != DefaultWorkers() || !c.Runtime.CPUAffinity || c.Runtime.GCMinHeap != DefaultGCMinHeap {
		t.Fatalf("default runtime: %+v", c.Runtime)
	}
}

func TestMonolakeExample(t *testing.T) {
	c, err := Load("testdata/monolake-example.toml")
	if err != nil {
		t.Fatalf("Monolake's example config rejected: %v", err)
	}
	if c.Runtime.Workers != 2 || c.Runtime.Entries != 1024 || c.Runtime.Type != RuntimeIOUring {
		t.Errorf("runtime: %+v", c.Runtime)
	}
	if got := len(c.Servers); got != 8 {
		t.Errorf("%d servers, want 8", got)
	}
	basic := c.Servers["server_basic"]
	if basic.ProxyType != ProxyHTTP || len(basic.Routes) != 2 || basic.Routes[1].Path != "/{*p}" {
		t.Errorf("server_basic: %+v", basic)
	}
	if got := c.Servers["server_uds"]; got.Listener.Network() != "unix" || got.Routes[0].Path != "/{id}" {
		t.Errorf("server_uds: %+v", got)
	}
	if c.Servers["server_tls"].TLS.Stack != TLSGo || c.Servers["server3"].TLS.Stack != TLSGo || c.Servers["server4"].TLS.Stack != TLSOpenSSL {
		t.Errorf("tls stacks not mapped: rustls->gotls, native_tls->openssl")
	}
	s4 := c.Servers["server4"]
	if !s4.ContentHandler || s4.UpstreamHTTPVersion != "http2" || s4.Timeout.UpstreamConnect != 2*time.Second || s4.Timeout.ServerKeepalive != time.Minute {
		t.Errorf("server4: %+v", s4)
	}
	if r := s4.Routes[0]; r.LoadBalancer != LBRoundRobin || r.Upstreams[0].Weight != 3 || r.Upstreams[0].Endpoint.Address() != "www.example.org:443" {
		t.Errorf("server4 route: %+v", r)
	}
	if got := c.Servers["server5"].Timeout.ServerKeepalive; got != 2*time.Second+200 {
		t.Errorf("http_timeout_sec/nano: %v", got)
	}
	if got := c.Servers["server6"].Timeout.ServerReadHeader; got != 3*time.Second {
		t.Errorf("http_timeout table: %v", got)
	}
	l4 := c.Servers["thrift_like"]
	if l4.ProxyType != ProxyTCP || l4.Route.LoadBalancer != LBWeightedRandom || len(l4.Route.Upstreams) != 2 || l4.Route.Upstreams[1].Endpoint.Network() != "unix" {
		t.Errorf("tcp server: %+v", l4.Route)
	}
	if !strings.Contains(c.Summary(), "server thrift_like (l4): tcp on tcp://0.0.0.0:8086") {
		t.Errorf("summary:\n%s", c.Summary())
	}
}

func TestOlderWorkersKey(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[runtime]
workers = 0
runtime_type = "legacy"
[servers.a]
name = "a"
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:1" }
route = { upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:2" } }] }
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Runtime.Workers != 0 || c.Runtime.Type != RuntimeLegacy || c.Servers["a"].Route.LoadBalancer != LBRandom {
		t.Fatalf("%+v %+v", c.Runtime, c.Servers["a"].Route)
	}
}

const base = `[runtime]
worker_threads = 1

[servers.a]
name = "a"
listener = { type = "socket", value = "127.0.0.1:8080" }

[[servers.a.routes]]
path = "/"
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:9000" } }]
`

// TestParkTimeout: server_keepalive_park_ms in milliseconds, -1 for never.
func TestParkTimeout(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  time.Duration
	}{{"250", 250 * time.Millisecond}, {"-1", -1}} {
		text := "[servers.a]\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\n" +
			"timeout = { server_keepalive_park_ms = " + tt.value + " }\n" +
			"[[servers.a.routes]]\npath = \"/\"\nupstreams = [{ endpoint = { type = \"socket\", value = \"127.0.0.1:2\" } }]\n"
		c, err := Parse("t.toml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Servers["a"].Timeout.ServerPark; got != tt.want {
			t.Errorf("server_keepalive_park_ms = %s: %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		line int
		want string
	}{
		{"syntax", "[runtime\n", 1, "expected ']'"},
		{"unknown top key", base + "\n[bogus]\nx = 1\n", 12, "bogus"},
		{"unknown server key", strings.Replace(base, `name = "a"`, "name = \"a\"\nlisten = 3", 1), 6, "servers.a.listen: unknown key"},
		{"unknown inline key", strings.Replace(base, `value = "127.0.0.1:8080" }`, `value = "127.0.0.1:8080", port = 1 }`, 1), 6, "unknown key"},
		{"wrong type", strings.Replace(base, "worker_threads = 1", `worker_threads = "two"`, 1), 2, "into worker_threads (want an integer)"},
		{"negative workers", strings.Replace(base, "worker_threads = 1", "worker_threads = -3", 1), 2, "-3 workers is impossible"},
		{"bad listener type", strings.Replace(base, `type = "socket", value = "127.0.0.1:8080"`, `type = "tcp", value = "127.0.0.1:8080"`, 1), 6, `unknown listener type "tcp"`},
		{"bad listen addr", strings.Replace(base, `127.0.0.1:8080`, `localhost:99999`, 1), 6, "port"},
		{"bad scheme", strings.Replace(base, `http://127.0.0.1:9000`, `ftp://x`, 1), 10, "scheme must be http or https"},
		{"bad lb", strings.Replace(base, `path = "/"`, "path = \"/\"\nload_balancer = \"fastest\"", 1), 10, `unknown load balancer "fastest"`},
		{"bad path", strings.Replace(base, `path = "/"`, `path = "/{*a}/b"`, 1), 9, "catch-all"},
		{"path never matches: escape decoded", strings.Replace(base, `path = "/"`, `path = "/%7euser/{*r}"`, 1), 9, `never matches: requests are matched normalized, and %7e is decoded (write "~")`},
		{"path never matches: lower-case escape", strings.Replace(base, `path = "/"`, `path = "/caf%c3%a9"`, 1), 9, "escapes are in upper case (write %C3)"},
		{"path never matches: double slash", strings.Replace(base, `path = "/"`, `path = "/a//b"`, 1), 9, "runs of slashes are merged"},
		{"path never matches: dot segment", strings.Replace(base, `path = "/"`, `path = "/x/./y"`, 1), 9, "dot segments are resolved"},
		{"path never matches: encoded slash", strings.Replace(base, `path = "/"`, `path = "/a%2Fb"`, 1), 9, "encoded slash"},
		{"path never matches: backslash", strings.Replace(base, `path = "/"`, `path = '/a\b'`, 1), 9, "never matches: requests are matched normalized, and a path with a backslash is refused (400)"},
		{"no routes", "[servers.a]\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\n", 1, "at least one"},
		{"no servers", "[runtime]\nworker_threads = 1\n", 0, "no servers"},
		{"tcp with routes", strings.Replace(base, `name = "a"`, "name = \"a\"\nproxy_type = \"tcp\"", 1), 0, "a tcp server needs route"},
		{"tcp uri upstream", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { upstreams = [{ endpoint = { type = \"uri\", value = \"http://x\" } }] }\n", 4, "not \"uri\""},
		{"bad tls stack", strings.Replace(base, `name = "a"`, "name = \"a\"\ntls = { chain = \"c\", key = \"k\", stack = \"boringssl\" }", 1), 6, `unknown TLS stack "boringssl"`},
		{"weights under random", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { upstreams = [\n  { endpoint = { type = \"socket\", value = \"127.0.0.1:2\" }, weight = 3 },\n  { endpoint = { type = \"socket\", value = \"127.0.0.1:3\" } },\n] }\n", 6, `load_balancer "random" ignores weights`},
		{"weights under first", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { load_balancer = \"first\", upstreams = [\n  { endpoint = { type = \"socket\", value = \"127.0.0.1:2\" }, weight = 0 },\n  { endpoint = { type = \"socket\", value = \"127.0.0.1:3\" }, weight = 2 },\n  { endpoint = { type = \"socket\", value = \"127.0.0.1:4\" } },\n] }\n", 7, `load_balancer "first" ignores weights`},
		{"zero weights", strings.Replace(base, `value = "http://127.0.0.1:9000" } }`, `value = "http://127.0.0.1:9000" }, weight = 0 }`, 1), 10, "weight 0"},
		{"duplicate listener", base + "\n[servers.b]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:8080\" }\nroute = { upstreams = [{ endpoint = { type = \"socket\", value = \"127.0.0.1:2\" } }] }\n", 14, "already used"},
		{"wildcard listener overlaps", strings.Replace(base, "127.0.0.1:8080", "0.0.0.0:8080", 1) + "\n[servers.b]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \":8080\" }\nroute = { upstreams = [{ endpoint = { type = \"socket\", value = \"127.0.0.1:2\" } }] }\n", 14, "already used"},
		{"ipv6 wildcard overlaps", strings.Replace(base, "127.0.0.1:8080", "0.0.0.0:8080", 1) + "\n[servers.b]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"[::]:08080\" }\nroute = { upstreams = [{ endpoint = { type = \"socket\", value = \"127.0.0.1:2\" } }] }\n", 14, "already used"},
		{"port zero", strings.Replace(base, `127.0.0.1:8080`, `127.0.0.1:0`, 1), 6, "port"},
		{"huge drain timeout", strings.Replace(base, "worker_threads = 1", "worker_threads = 1\ndrain_timeout_sec = 10000000000", 1), 3, "want 0 to 86400"},
		{"tcp with an http timeout", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { upstreams = [{ endpoint = { type = \"socket\", value = \"127.0.0.1:2\" } }] }\ntimeout = { server_keepalive_timeout_sec = 9, server_message_timeout_sec = 5 }\n", 5, "server_message_timeout_sec is for http servers"},
		{"tcp with a body limit", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { upstreams = [{ endpoint = { type = \"socket\", value = \"127.0.0.1:2\" } }] }\nclient_max_body_size = 5\n", 5, "client_max_body_size is for http servers"},
		{"negative body limit", strings.Replace(base, `name = "a"`, "name = \"a\"\nclient_max_body_size = -1", 1), 6, "want 0 (no limit) or more"},
		{"negative max connections", strings.Replace(base, "worker_threads = 1", "worker_threads = 1\nmax_connections = -1", 1), 3, "want 0 (no cap)"},
		{"route host with port", strings.Replace(base, `path = "/"`, "path = \"/\"\nhost = [\"a.example:8080\"]", 1), 10, "no port"},
		{"route host with brackets", strings.Replace(base, `path = "/"`, "path = \"/\"\nhost = [\"[::1]\"]", 1), 10, "want a name"},
		{"route host leading dot", strings.Replace(base, `path = "/"`, "path = \"/\"\nhost = [\".example.com\"]", 1), 10, "want a name"},
		{"rewrite with a query", strings.Replace(base, `path = "/"`, "path = \"/\"\nrewrite_path = \"/x?a=1\"", 1), 10, "a path only"},
		{"rewrite unknown param", strings.Replace(base, `path = "/"`, "path = \"/{id}\"\nrewrite_path = \"/x/{name}\"", 1), 10, "not a parameter"},
		// Arrays of tables inside arrays of tables: the error names the
		// line of the second route's second upstream.
		{"nested array tables", "[servers.a]\nlistener = { type = \"socket\", value = \"127.0.0.1:8080\" }\n" +
			"[[servers.a.routes]]\npath = \"/a\"\n[[servers.a.routes.upstreams]]\nendpoint = { type = \"uri\", value = \"http://127.0.0.1:1\" }\n" +
			"[[servers.a.routes]]\npath = \"/b\"\n[[servers.a.routes.upstreams]]\nendpoint = { type = \"uri\", value = \"http://127.0.0.1:2\" }\n" +
			"[[servers.a.routes.upstreams]]\nendpoint = { type = \"uri\", value = \"ftp://x\" }\n", 12, "scheme must be http or https"},
		{"rewrite stray brace", strings.Replace(base, `path = "/"`, "path = \"/{*rest}\"\nrewrite_path = \"/x}/{rest}\"", 1), 10, "without its {"},
		{"huge sqpoll idle", strings.Replace(base, "worker_threads = 1", "worker_threads = 1\nsqpoll_idle = 4294967296", 1), 3, "want 0 to 3600000"},
		{"timeout zero", strings.Replace(base, `name = "a"`, "name = \"a\"\ntimeout = { upstream_connect_timeout_sec = 0 }", 1), 6, "0 seconds"},
		{"negative max_fails", strings.Replace(base, `path = "/"`, "path = \"/\"\nmax_fails = -1", 1), 10, "want 0 (no health check) to 1000"},
		{"zero fail_timeout", strings.Replace(base, `path = "/"`, "path = \"/\"\nfail_timeout_sec = 0", 1), 10, "0 seconds: want 1 to 86400"},
		{"tcp route max_fails", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { max_fails = 5000, upstreams = [{ endpoint = { type = \"socket\", value = \"127.0.0.1:2\" } }] }\n", 4, "5000: want 0"},
		{"uri with a path", strings.Replace(base, `http://127.0.0.1:9000`, `http://127.0.0.1:9000/base`, 1), 10, "use the route's rewrite_path"},
		{"uri with a query", strings.Replace(base, `http://127.0.0.1:9000`, `http://127.0.0.1:9000/?x=1`, 1), 10, "has a query"},
		{"uri with user info", strings.Replace(base, `http://127.0.0.1:9000`, `http://u:p@127.0.0.1:9000`, 1), 10, "user info"},
		{"uri port zero", strings.Replace(base, `http://127.0.0.1:9000`, `http://127.0.0.1:0`, 1), 10, "want 1 to 65535"},
		{"uri port too big", strings.Replace(base, `http://127.0.0.1:9000`, `http://127.0.0.1:99999`, 1), 10, "want 1 to 65535"},
		{"http_timeout_sec beside timeout", strings.Replace(base, `name = "a"`, "name = \"a\"\nhttp_timeout_sec = 5\ntimeout = { server_keepalive_timeout_sec = 10 }", 1), 6, "keep one"},
		{"rewrite with dot-dot", strings.Replace(base, `path = "/"`, "path = \"/{*r}\"\nrewrite_path = \"/../{r}\"", 1), 10, `a ".." segment`},
		{"rewrite with a backslash", strings.Replace(base, `path = "/"`, "path = \"/{*r}\"\nrewrite_path = '/x\\{r}'", 1), 10, `"/x\\{r}": a backslash, which URIs do not have (write %5C)`},
		{"rewrite with a stray %", strings.Replace(base, `path = "/"`, "path = \"/{*r}\"\nrewrite_path = \"/%zz/{r}\"", 1), 10, "no escape"},
		{"path with a query", strings.Replace(base, `path = "/"`, `path = "/index.php?page=home"`, 1), 9, "the query is not matched"},
		{"path with a space", strings.Replace(base, `path = "/"`, `path = "/a b"`, 1), 9, "cannot be in a request's path"},
		{"path with non-ASCII", strings.Replace(base, `path = "/"`, `path = "/café"`, 1), 9, "cannot be in a request's path"},
		{"route host not ASCII", strings.Replace(base, `path = "/"`, "path = \"/\"\nhost = [\"bücher.de\"]", 1), 10, "punycode"},
		{"route hosts in one string", strings.Replace(base, `path = "/"`, "path = \"/\"\nhost = [\"a.com,b.com\"]", 1), 10, "one name per entry"},
		{"route host empty label", strings.Replace(base, `path = "/"`, "path = \"/\"\nhost = [\"a..b\"]", 1), 10, "an empty label"},
		{"listener as a string", strings.Replace(base, `listener = { type = "socket", value = "127.0.0.1:8080" }`, `listener = "127.0.0.1:8080"`, 1), 6, "into listener (want a table, as { … })"},
		{"host as a string", strings.Replace(base, `path = "/"`, "path = \"/\"\nhost = \"a.com\"", 1), 10, "into host (want an array)"},
		// A typo in an array header makes a server of its own; its
		// missing listener is named at the header's line.
		{"server only in a sub-table", base + "\n[[servers.b.routes]]\npath = \"/\"\n", 12, "servers.b: missing key listener"},
		{"uri without a host", strings.Replace(base, `http://127.0.0.1:9000`, `http://:9000`, 1), 10, "has no host"},
		{"socket upstream without a host", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { upstreams = [{ endpoint = { type = \"socket\", value = \":5432\" } }] }\n", 4, "has no host"},
		{"socket upstream bad name", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { upstreams = [{ endpoint = { type = \"socket\", value = \"my host:80\" } }] }\n", 4, "cannot be in a host name"},
		{"unix upstream too long", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { upstreams = [{ endpoint = { type = \"unix\", value = \"/" + strings.Repeat("x", 120) + "\" } }] }\n", 4, "longer than 107"},
		{"name with a line break", strings.Replace(base, `name = "a"`, `name = "a\r\nX-Internal: 1"`, 1), 5, "without control characters"},
		{"empty name", strings.Replace(base, `name = "a"`, `name = ""`, 1), 5, "want a name"},
		{"via with a name not a token", strings.Replace(base, `name = "a"`, "name = \"edge proxy\"\nvia = true", 1), 5, "takes a token"},
		{"via with a key not a token", "[servers.\"my site\"]\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nvia = true\n" +
			"[[servers.\"my site\".routes]]\npath = \"/\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"http://127.0.0.1:2\" } }]\n", 1, "takes a token"},
		{"plain tcp with a header timeout", "[servers.t]\nproxy_type = \"tcp\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\nroute = { upstreams = [{ endpoint = { type = \"socket\", value = \"127.0.0.1:2\" } }] }\ntimeout = { server_read_header_timeout_sec = 5 }\n", 5, "a plain tcp server reads no header"},
		{"park zero", strings.Replace(base, `name = "a"`, "name = \"a\"\ntimeout = { server_keepalive_park_ms = 0 }", 1), 6, "want -1 (never park)"},
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
			if !strings.HasPrefix(msg, "config: t.toml") {
				t.Errorf("error %q does not name the file", msg)
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

// TestGCMinHeap: gc_min_heap_mib in MiB, 0 for Go's own pacing.
func TestGCMinHeap(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  uint64
	}{{"24", 24 << 20}, {"0", 0}} {
		c, err := Parse("t.toml", []byte(strings.Replace(base, "worker_threads = 1", "worker_threads = 1\ngc_min_heap_mib = "+tt.value, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if c.Runtime.GCMinHeap != tt.want {
			t.Errorf("gc_min_heap_mib = %s: %d bytes, want %d", tt.value, c.Runtime.GCMinHeap, tt.want)
		}
	}
	_, err := Parse("t.toml", []byte(strings.Replace(base, "worker_threads = 1", "worker_threads = 1\ngc_min_heap_mib = -1", 1)))
	if err == nil || !strings.Contains(err.Error(), "t.toml:3: runtime.gc_min_heap_mib: -1 MiB") {
		t.Fatalf("gc_min_heap_mib = -1: got %v", err)
	}
}

func TestRecvBuffers(t *testing.T) {
	cfg, err := Parse("t.toml", []byte(base))
	if err != nil || cfg.Runtime.RecvBuffers != 1024 {
		t.Fatalf("default: %d, %v", cfg.Runtime.RecvBuffers, err)
	}
	cfg, err = Parse("t.toml", []byte(strings.Replace(base, "worker_threads = 1", "recv_buffers = 512", 1)))
	if err != nil || cfg.Runtime.RecvBuffers != 512 {
		t.Fatalf("recv_buffers = 512: %d, %v", cfg.Runtime.RecvBuffers, err)
	}
	for _, bad := range []string{"500", "8", "65536"} {
		_, err := Parse("t.toml", []byte(strings.Replace(base, "worker_threads = 1", "recv_buffers = "+bad, 1)))
		if err == nil || !strings.Contains(err.Error(), "t.toml:2: runtime.recv_buffers: "+bad+" buffers: want a power of two") {
			t.Errorf("recv_buffers = %s: got %v", bad, err)
		}
	}
}

func TestRecvBufferKiB(t *testing.T) {
	for _, tc := range []struct {
		set   string
		count int
		size  int
	}{
		{"worker_threads = 1", 1024, 16 << 10}, // the defaults
		{"recv_buffer_kib = 64", 1024, 64 << 10},
		{"recv_buffers = 8192\nrecv_buffer_kib = 128", 8192, 128 << 10}, // 1 GiB, the most
	} {
		cfg, err := Parse("t.toml", []byte(strings.Replace(base, "worker_threads = 1", tc.set, 1)))
		if err != nil {
			t.Fatalf("%q: %v", tc.set, err)
		}
		if cfg.Runtime.RecvBuffers != tc.count || cfg.Runtime.RecvBufferSize != tc.size {
			t.Errorf("%q: %d buffers of %d bytes, want %d of %d", tc.set, cfg.Runtime.RecvBuffers, cfg.Runtime.RecvBufferSize, tc.count, tc.size)
		}
	}
	for _, bad := range []string{"0", "3", "512", "-4"} {
		_, err := Parse("t.toml", []byte(strings.Replace(base, "worker_threads = 1", "recv_buffer_kib = "+bad, 1)))
		if err == nil || !strings.Contains(err.Error(), "t.toml:2: runtime.recv_buffer_kib: "+bad+" KiB: want a power of two from 1 to 256") {
			t.Errorf("recv_buffer_kib = %s: got %v", bad, err)
		}
	}
	// Each value alone is allowed; together they would map 2 GiB a worker.
	_, err := Parse("t.toml", []byte(strings.Replace(base, "worker_threads = 1", "recv_buffers = 16384\nrecv_buffer_kib = 128", 1)))
	if err == nil || !strings.Contains(err.Error(), "t.toml:3: runtime.recv_buffer_kib: 16384 buffers of 128 KiB map 2048 MiB per worker: want at most 1024 MiB") {
		t.Errorf("16384 buffers of 128 KiB: got %v", err)
	}
}

func TestEntries(t *testing.T) {
	_, err := Parse("t.toml", []byte(strings.Replace(base, "worker_threads = 1", "entries = 1000", 1)))
	if err == nil || !strings.Contains(err.Error(), "t.toml:2: runtime.entries: 1000 entries") {
		t.Fatalf("got %v", err)
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"/":             "/",
		"/*p":           "/{*p}",
		"/:id":          "/{id}",
		"/a/:id/b/*r":   "/a/{id}/b/{*r}",
		"/a/{id}/{*r}":  "/a/{id}/{*r}",
		"/static/x.css": "/static/x.css",
	} {
		got, err := NormalizePath(in)
		if err != nil || got != want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "/{}", "/*a/b", "/:a/:a", "/a{b}"} {
		if _, err := NormalizePath(bad); err == nil {
			t.Errorf("NormalizePath(%q) accepted", bad)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/monolake.toml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

// TestListenersApart: listeners on other addresses or ports do not
// overlap, nor a specific address beside the wildcard; every spelling of
// the wildcard is one address.
func TestListenersApart(t *testing.T) {
	l := func(v string) Listener { return Listener{Type: TypeSocket, Value: v} }
	for _, tc := range []struct {
		a, b    string
		overlap bool
	}{
		{"127.0.0.1:80", "127.0.0.2:80", false},
		{"127.0.0.1:80", "127.0.0.1:81", false},
		{"[::1]:80", "127.0.0.1:80", false},
		{"127.0.0.1:80", "127.0.0.1:080", true},
		{":80", "127.0.0.1:80", false}, // the specific one wins its address
		{":80", "0.0.0.0:80", true},
		{"[::]:80", "0.0.0.0:80", true},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1:80", true},
	} {
		if got := listenersOverlap(l(tc.a), l(tc.b)); got != tc.overlap {
			t.Errorf("%s and %s: overlap %v, want %v", tc.a, tc.b, got, tc.overlap)
		}
	}
	u := func(v string) Listener { return Listener{Type: TypeUnix, Value: v} }
	if !listenersOverlap(u("/run/a.sock"), u("/run/./a.sock")) || listenersOverlap(u("/run/a.sock"), l("127.0.0.1:80")) {
		t.Error("unix listeners compared wrongly")
	}
}

// TestSetTLSStack: --tls-backend moves every TLS server and every route's
// upstream TLS.
func TestSetTLSStack(t *testing.T) {
	c, err := Parse("t.toml", []byte(`[servers.a]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "c", key = "k", stack = "gotls" }
[[servers.a.routes]]
path = "/"
upstreams = [{ endpoint = { type = "uri", value = "https://127.0.0.1:9443" } }]
upstream_tls = { stack = "gotls" }
`))
	if err != nil {
		t.Fatal(err)
	}
	c.SetTLSStack(TLSOpenSSL)
	s := c.Servers["a"]
	if s.TLS.Stack != TLSOpenSSL || s.Routes[0].UpstreamTLS.Stack != TLSOpenSSL || c.TLSStack != TLSOpenSSL {
		t.Errorf("server %q, upstream %q, config %q", s.TLS.Stack, s.Routes[0].UpstreamTLS.Stack, c.TLSStack)
	}
}

// TestHealth: max_fails and fail_timeout_sec per route, nginx's defaults
// (1, 10 s) where unset, for http routes, tcp routes and sni_routes.
func TestHealth(t *testing.T) {
	c, err := Parse("t.toml", []byte(base+`
[[servers.a.routes]]
path = "/x"
max_fails = 3
fail_timeout_sec = 30
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:9000" } }]

[servers.t]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:1" }
route = { max_fails = 0, upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:2" } }] }
sni_routes = [{ server_names = ["a.example"], fail_timeout_sec = 5, upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:3" } }] }]
`))
	if err != nil {
		t.Fatal(err)
	}
	a, tcp := c.Servers["a"], c.Servers["t"]
	for _, tt := range []struct {
		name      string
		got, want Health
	}{
		{"default", a.Routes[0].Health, Health{1, 10 * time.Second}},
		{"set", a.Routes[1].Health, Health{3, 30 * time.Second}},
		{"tcp off", tcp.Route.Health, Health{0, 10 * time.Second}},
		{"sni", tcp.SNIRoutes[0].Health, Health{1, 5 * time.Second}},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
}

// TestKeysCaseSensitive: a key that matches a known one only ignoring case
// is an error with its line (go-toml filled the field from it, so "Path"
// after "path" replaced it silently).
func TestKeysCaseSensitive(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		line       int
		key        string
	}{
		{"route key", strings.Replace(base, `path = "/"`, "path = \"/admin/{*p}\"\nPath = \"/{*p}\"", 1), 10, "servers.a.routes.0.Path"},
		{"table", base + "\n[RUNTIME]\nworker_threads = 64\n", 12, "RUNTIME"},
		{"inline table", strings.Replace(base, `type = "socket"`, `Type = "socket"`, 1), 6, "servers.a.listener.Type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tt.text))
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("accepted: %v", err)
			}
			e := es[0]
			if e.Key != tt.key || e.Line != tt.line || !strings.Contains(e.Reason, "case-sensitive") {
				t.Fatalf("error %v (key %q line %d), want key %q line %d, case-sensitive", e, e.Key, e.Line, tt.key, tt.line)
			}
		})
	}
}
