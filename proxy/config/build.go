package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// builder turns the raw decoded file into a Config, collecting every error
// with its line.
type builder struct {
	file  string
	lines keyLines
	errs  Errors
}

func (b *builder) errorf(key, format string, args ...any) {
	b.errs = append(b.errs, &Error{File: b.file, Line: b.lines.line(key), Key: key, Reason: fmt.Sprintf(format, args...)})
}

func build(name string, data []byte, f *rawFile) (*Config, error) {
	b := &builder{file: name, lines: indexLines(data)}
	c := &Config{Servers: map[string]*Server{}}
	c.Runtime = b.runtime(f.Runtime)
	if f.Demo != nil {
		if f.Demo.Listener == nil {
			b.errorf("demo", "missing key listener")
		} else {
			c.Demo = &Demo{Listener: b.listener("demo.listener", f.Demo.Listener)}
		}
	}
	if len(f.Servers) == 0 {
		b.errorf("servers", "no servers defined: add a [servers.NAME] table")
	}
	var seen []*Server
	overlap := func(key string, l Listener) {
		for _, o := range seen {
			if listenersOverlap(l, o.Listener) {
				b.errorf(key, "listener %s is already used by server %q (%s)", l, o.Key, o.Listener)
				return
			}
		}
	}
	for _, key := range sortedKeys(f.Servers) {
		s := b.server("servers."+key, key, f.Servers[key])
		if s == nil {
			continue
		}
		overlap("servers."+key+".listener", s.Listener)
		seen = append(seen, s)
		c.Servers[key] = s
		c.ServerNames = append(c.ServerNames, key)
	}
	if c.Demo != nil {
		overlap("demo.listener", c.Demo.Listener)
	}
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	return c, nil
}

// maxRecvRing bounds a worker's receive buffer ring (recv_buffers ×
// recv_buffer_kib): the kernel may fill every buffer, so that much memory
// can become resident in each worker.
const maxRecvRing = 1 << 30

func (b *builder) runtime(r *rawRuntime) Runtime {
	rt := Runtime{
		Type:           RuntimeIOUring,
		Workers:        DefaultWorkers(),
		CPUAffinity:    true,
		Entries:        1024,
		RecvBuffers:    1024,
		RecvBufferSize: 16 << 10,
		DrainTimeout:   30 * time.Second,
		GCMinHeap:      DefaultGCMinHeap,
	}
	if r == nil {
		return rt
	}
	if r.RuntimeType != nil {
		switch *r.RuntimeType {
		case RuntimeIOUring, RuntimeLegacy:
			rt.Type = *r.RuntimeType
		case "uring", "iouring":
			rt.Type = RuntimeIOUring
		case "epoll":
			rt.Type = RuntimeLegacy
		default:
			b.errorf("runtime.runtime_type", "unknown runtime %q: want %q or %q", *r.RuntimeType, RuntimeIOUring, RuntimeLegacy)
		}
	}
	if r.WorkerThreads != nil && r.Workers != nil {
		b.errorf("runtime.workers", "worker_threads and workers both set; workers is the older spelling, keep one")
	}
	w := r.WorkerThreads
	key := "runtime.worker_threads"
	if w == nil {
		w, key = r.Workers, "runtime.workers"
	}
	if w != nil {
		if *w < 0 || *w > 1024 {
			b.errorf(key, "%d workers is impossible: want 0 (single process) to 1024", *w)
		} else {
			rt.Workers = int(*w)
		}
	}
	if r.CPUAffinity != nil {
		rt.CPUAffinity = *r.CPUAffinity
	}
	if r.Entries != nil {
		e := *r.Entries
		if e < 1 || e > 32768 || e&(e-1) != 0 {
			b.errorf("runtime.entries", "%d entries: want a power of two from 1 to 32768", e)
		} else {
			rt.Entries = int(e)
		}
	}
	if r.RecvBuffers != nil {
		if n := *r.RecvBuffers; n < 16 || n > 32768 || n&(n-1) != 0 {
			b.errorf("runtime.recv_buffers", "%d buffers: want a power of two from 16 to 32768", n)
		} else {
			rt.RecvBuffers = int(n)
		}
	}
	if r.RecvBufferKiB != nil {
		if k := *r.RecvBufferKiB; k < 1 || k > 256 || k&(k-1) != 0 {
			b.errorf("runtime.recv_buffer_kib", "%d KiB: want a power of two from 1 to 256", k)
		} else {
			rt.RecvBufferSize = int(k) << 10
		}
	}
	if total := int64(rt.RecvBuffers) * int64(rt.RecvBufferSize); total > maxRecvRing {
		b.errorf("runtime.recv_buffer_kib", "%d buffers of %d KiB map %d MiB per worker: want at most %d MiB (fewer or smaller buffers)",
			rt.RecvBuffers, rt.RecvBufferSize>>10, total>>20, maxRecvRing>>20)
	}
	if r.SQPollIdle != nil {
		if *r.SQPollIdle < 0 || *r.SQPollIdle > 3_600_000 {
			b.errorf("runtime.sqpoll_idle", "idle time %d ms: want 0 to 3600000 (an hour)", *r.SQPollIdle)
		} else {
			rt.SQPollIdle = time.Duration(*r.SQPollIdle) * time.Millisecond
		}
	}
	if r.DrainTimeout != nil {
		if *r.DrainTimeout < 0 || *r.DrainTimeout > 86400 {
			b.errorf("runtime.drain_timeout_sec", "drain timeout %d s: want 0 to 86400 (a day)", *r.DrainTimeout)
		} else {
			rt.DrainTimeout = time.Duration(*r.DrainTimeout) * time.Second
		}
	}
	if r.MaxConns != nil {
		if *r.MaxConns < 0 || *r.MaxConns > 1<<30 {
			b.errorf("runtime.max_connections", "%d connections: want 0 (no cap) to 1073741824", *r.MaxConns)
		} else {
			rt.MaxConns = int(*r.MaxConns)
		}
	}
	if r.GCMinHeap != nil {
		if *r.GCMinHeap < 0 || *r.GCMinHeap > 1<<20 {
			b.errorf("runtime.gc_min_heap_mib", "%d MiB: want 0 (Go's default pacing) to 1048576 (1 TiB)", *r.GCMinHeap)
		} else {
			rt.GCMinHeap = uint64(*r.GCMinHeap) << 20
		}
	}
	return rt
}

func (b *builder) listener(key string, r *rawEndpoint) Listener {
	var l Listener
	if r.Type == nil {
		b.errorf(key, "missing key type (%q or %q)", TypeSocket, TypeUnix)
		return l
	}
	if r.Value == nil {
		b.errorf(key, "missing key value")
		return l
	}
	l.Type, l.Value = *r.Type, *r.Value
	switch l.Type {
	case TypeSocket:
		if err := checkHostPort(l.Value, false); err != nil {
			b.errorf(key+".value", "%v", err)
		}
	case TypeUnix:
		if l.Value == "" {
			b.errorf(key+".value", "empty unix socket path")
		} else if len(l.Value) > 107 {
			b.errorf(key+".value", "unix socket path longer than 107 bytes")
		}
	default:
		b.errorf(key+".type", "unknown listener type %q: want %q or %q", l.Type, TypeSocket, TypeUnix)
	}
	return l
}

// listenersOverlap reports whether two listeners would bind the same
// socket address: the same Unix path, or TCP ones on the same port with
// equal addresses, every wildcard being one (":80", "0.0.0.0:80" and
// "[::]:80" all bind the dual-stack wildcard; "080" is 80). With
// SO_REUSEPORT such binds succeed and the kernel splits the connections
// between the servers. A specific address beside the wildcard on one port
// is fine: the kernel prefers the specific listener for its address.
func listenersOverlap(a, b Listener) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Type == TypeUnix {
		return filepath.Clean(a.Value) == filepath.Clean(b.Value)
	}
	ah, ap, err1 := net.SplitHostPort(a.Value)
	bh, bp, err2 := net.SplitHostPort(b.Value)
	if err1 != nil || err2 != nil {
		return a.Value == b.Value
	}
	if pa := mustAtoi(ap); pa < 0 || pa != mustAtoi(bp) {
		return false
	}
	aa, aok := listenIP(ah)
	ba, bok := listenIP(bh)
	if !aok || !bok {
		return ah == bh
	}
	return aa == ba
}

// listenIP parses a listener's host: the zero Addr for a wildcard ("",
// 0.0.0.0, ::), IPv4-mapped addresses as IPv4.
func listenIP(h string) (netip.Addr, bool) {
	if h == "" {
		return netip.Addr{}, true
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, false
	}
	if a = a.Unmap(); a.IsUnspecified() {
		return netip.Addr{}, true
	}
	return a.WithZone(""), true
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// isToken tells whether s is an HTTP token (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if c >= 0x7f || !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validPort tells whether p is a port number from 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// checkHostPort accepts "ip:port" (and "host:port" when names are allowed).
func checkHostPort(v string, names bool) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", v, err)
	}
	if !validPort(port) {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535 (0 would give each worker a port of its own)", v, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" && !names {
		return fmt.Errorf("%q: %q is not an IP address", v, host)
	}
	return nil
}

// checkUpstreamAddr accepts "ip:port" and "name:port" for an upstream to
// dial: a host is required (an empty one would dial this machine) and a
// name must be one DNS can hold.
func checkUpstreamAddr(v string) error {
	if err := checkHostPort(v, true); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(v)
	if host == "" {
		return fmt.Errorf("%q has no host (write 127.0.0.1%s for this machine)", v, v)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, c := range host {
		if !hostNameRune(c) {
			return fmt.Errorf("%q: %q cannot be in a host name", v, c)
		}
	}
	if strings.HasPrefix(host, ".") || strings.Contains(host, "..") {
		return fmt.Errorf("%q: host name %q has an empty label", v, host)
	}
	return nil
}

func (b *builder) endpoint(key string, r *rawEndpoint, allowURI bool) Endpoint {
	var e Endpoint
	if r == nil {
		b.errorf(key, "missing key endpoint")
		return e
	}
	if r.Type == nil || r.Value == nil {
		b.errorf(key, "endpoint needs both type and value")
		return e
	}
	e.Type, e.Value = *r.Type, *r.Value
	switch e.Type {
	case TypeURI:
		if !allowURI {
			b.errorf(key+".type", "a tcp server's upstream is %q or %q, not %q", TypeSocket, TypeUnix, TypeURI)
			return e
		}
		u, err := url.Parse(e.Value)
		if err != nil {
			b.errorf(key+".value", "bad URI: %v", err)
			return e
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			b.errorf(key+".value", "URI %q: scheme must be http or https", e.Value)
		}
		if u.Hostname() == "" {
			b.errorf(key+".value", "URI %q has no host", e.Value)
		}
		// What the proxy would drop, refused rather than ignored.
		switch {
		case u.Path != "" && u.Path != "/" || u.RawPath != "":
			b.errorf(key+".value", "URI %q has a path: the request's path goes upstream; to change it, use the route's rewrite_path", e.Value)
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			b.errorf(key+".value", "URI %q has a query or a fragment: the request's go upstream", e.Value)
		case u.User != nil:
			b.errorf(key+".value", "URI %q has user info, which is not sent upstream", e.Value)
		}
		if p := u.Port(); p != "" && !validPort(p) {
			b.errorf(key+".value", "URI %q: port %s, want 1 to 65535", e.Value, p)
		}
		e.URL = u
	case TypeSocket:
		if err := checkUpstreamAddr(e.Value); err != nil {
			b.errorf(key+".value", "%v", err)
		}
	case TypeUnix:
		if e.Value == "" {
			b.errorf(key+".value", "empty unix socket path")
		} else if len(e.Value) > 107 {
			b.errorf(key+".value", "unix socket path longer than 107 bytes")
		}
	default:
		b.errorf(key+".type", "unknown endpoint type %q: want %q, %q or %q", e.Type, TypeURI, TypeSocket, TypeUnix)
	}
	return e
}

// upstreams builds a route's upstreams. lb is its load balancer: random
// and first treat every upstream of weight above 0 alike, so different
// weights under them are an error, not ignored.
func (b *builder) upstreams(key string, rs []rawUpstream, allowURI bool, lb string) []Upstream {
	if len(rs) == 0 {
		b.errorf(key, "no upstreams: give at least one")
		return nil
	}
	out := make([]Upstream, len(rs))
	for i, r := range rs {
		k := fmt.Sprintf("%s.%d", key, i)
		out[i] = Upstream{Endpoint: b.endpoint(k+".endpoint", r.Endpoint, allowURI), Weight: 1}
		if r.Weight != nil {
			if *r.Weight < 0 || *r.Weight > 1_000_000 {
				b.errorf(k+".weight", "weight %d: want 0 to 1000000", *r.Weight)
			} else {
				out[i].Weight = int(*r.Weight)
			}
		}
	}
	total := 0
	for _, u := range out {
		total += u.Weight
	}
	if total == 0 {
		b.errorf(key, "every upstream has weight 0: nothing could be chosen")
	}
	if lb == LBRandom || lb == LBFirst {
		w := 0
		for i, u := range out {
			switch {
			case u.Weight == 0:
			case w == 0:
				w = u.Weight
			case u.Weight != w:
				b.errorf(fmt.Sprintf("%s.%d.weight", key, i), "weight %d: load_balancer %q ignores weights (0 only leaves an upstream out); use %q, %q or %q",
					u.Weight, lb, LBWeightedRandom, LBRoundRobin, LBLeastConn)
				return out
			}
		}
	}
	return out
}

func (b *builder) loadBalancer(key string, v *string) string {
	if v == nil {
		return LBRandom // Monolake's default
	}
	switch *v {
	case LBRoundRobin, LBRandom, LBWeightedRandom, LBFirst, LBLeastConn:
		return *v
	case "weighted":
		return LBWeightedRandom
	case "roundrobin", "rr":
		return LBRoundRobin
	case "least_connections", "leastconn":
		return LBLeastConn
	}
	b.errorf(key, "unknown load balancer %q: want one of %s, %s, %s, %s, %s", *v, LBRandom, LBWeightedRandom, LBRoundRobin, LBFirst, LBLeastConn)
	return ""
}

// health reads a route's max_fails and fail_timeout_sec.
func (b *builder) health(key string, maxFails, failTimeout *int64) Health {
	h := Health{MaxFails: DefaultMaxFails, FailTimeout: DefaultFailTimeout}
	if maxFails != nil {
		if *maxFails < 0 || *maxFails > 1000 {
			b.errorf(key+".max_fails", "%d: want 0 (no health check) to 1000", *maxFails)
		} else {
			h.MaxFails = int(*maxFails)
		}
	}
	if failTimeout != nil {
		if *failTimeout < 1 || *failTimeout > 86400 {
			b.errorf(key+".fail_timeout_sec", "%d seconds: want 1 to 86400", *failTimeout)
		} else {
			h.FailTimeout = time.Duration(*failTimeout) * time.Second
		}
	}
	return h
}

func (b *builder) server(key, name string, r *rawServer) *Server {
	s := &Server{Key: name, Line: b.lines.line(key), ProxyType: ProxyHTTP, UpstreamHTTPVersion: "http11", PreserveHost: true}
	if r.Name != nil {
		s.Name = *r.Name
		if strings.TrimSpace(s.Name) == "" || strings.ContainsFunc(s.Name, unicode.IsControl) {
			b.errorf(key+".name", "name %q: want a name to show in logs, without control characters", s.Name)
		}
	} else {
		s.Name = name
	}
	if r.ProxyType != nil {
		switch *r.ProxyType {
		case ProxyHTTP, ProxyTCP:
			s.ProxyType = *r.ProxyType
		case "thrift":
			b.errorf(key+".proxy_type", "proxy_type \"thrift\" is not supported; use \"tcp\" to relay it at layer 4")
		default:
			b.errorf(key+".proxy_type", "unknown proxy_type %q: want %q or %q", *r.ProxyType, ProxyHTTP, ProxyTCP)
		}
	}
	if r.Listener == nil {
		b.errorf(key, "missing key listener")
	} else {
		s.Listener = b.listener(key+".listener", r.Listener)
	}
	if r.TLS != nil {
		s.TLS = b.tls(key+".tls", r.TLS)
	}
	s.Timeout = b.timeouts(key, r, s.ProxyType == ProxyTCP)
	if r.AccessLog != nil {
		s.AccessLog = *r.AccessLog
	}
	switch s.ProxyType {
	case ProxyTCP:
		b.refuseSet(key, "a tcp server takes route = { load_balancer, upstreams, max_fails, fail_timeout_sec }",
			setKey{"routes", r.Routes != nil}, setKey{"upstream_http_version", r.UpstreamHTTPVersion != nil},
			setKey{"http_opt_handlers", r.HTTPOptHandlers != nil}, setKey{"preserve_host", r.PreserveHost != nil},
			setKey{"via", r.Via != nil}, setKey{"forwarded", r.Forwarded != nil}, setKey{"client_max_body_size", r.ClientMaxBodySize != nil},
			setKey{"upstream_keepalive", r.UpstreamKeepalive != nil}, setKey{"underscores_in_headers", r.UnderscoresInHeader != nil})
		if r.Route == nil && r.SNIRoutes == nil {
			b.errorf(key, "a tcp server needs route = { load_balancer, upstreams = [...] }")
		} else if r.Route != nil {
			lb := b.loadBalancer(key+".route.load_balancer", r.Route.LoadBalancer)
			s.Route = &L4Route{LoadBalancer: lb, Upstreams: b.upstreams(key+".route.upstreams", r.Route.Upstreams, false, lb),
				Health: b.health(key+".route", r.Route.MaxFails, r.Route.FailTimeout)}
		}
		if r.SNIRoutes != nil {
			s.SNIRoutes = b.sniRoutes(key, r)
		}
		if s.Timeout.ServerReadHeader > 0 && s.TLS == nil && r.SNIRoutes == nil {
			tkey := key + ".timeout"
			if r.HTTPTimeout != nil {
				tkey = key + ".http_timeout"
			}
			b.errorf(tkey+".server_read_header_timeout_sec", "a plain tcp server reads no header: "+
				"this timeout bounds a TLS handshake (with tls) or the wait for a ClientHello (with sni_routes)")
		}
	default:
		if r.Route != nil {
			b.errorf(key+".route", "route is for tcp servers; an http server takes [[%s.routes]]", key)
		}
		if r.SNIRoutes != nil {
			b.errorf(key+".sni_routes", "sni_routes are for tcp servers (proxy_type = \"tcp\")")
		}
		if len(r.Routes) == 0 {
			b.errorf(key, "an http server needs at least one [[%s.routes]]", key)
		}
		// Upstream TLS follows the server's own stack unless a route names one.
		stack := TLSGo
		if s.TLS != nil && s.TLS.Stack != "" {
			stack = s.TLS.Stack
		}
		for i := range r.Routes {
			s.Routes = append(s.Routes, b.route(fmt.Sprintf("%s.routes.%d", key, i), &r.Routes[i], stack))
		}
		if r.UpstreamHTTPVersion != nil {
			switch v := *r.UpstreamHTTPVersion; v {
			case "http11", "http2", "auto":
				s.UpstreamHTTPVersion = v
			default:
				b.errorf(key+".upstream_http_version", "unknown HTTP version %q: want \"http11\", \"http2\" or \"auto\"", v)
			}
		}
		if r.HTTPOptHandlers != nil && r.HTTPOptHandlers.ContentHandler != nil {
			s.ContentHandler = *r.HTTPOptHandlers.ContentHandler
		}
		if r.PreserveHost != nil {
			s.PreserveHost = *r.PreserveHost
		}
		if r.Via != nil {
			s.Via = *r.Via
		}
		if s.Via && !isToken(s.Name) {
			k := key + ".name"
			if r.Name == nil {
				k = key // the name is the table's key
			}
			b.errorf(k, "name %q goes in the Via field (via = true), which takes a token: "+
				"letters, digits and !#$%%&'*+-.^_`|~", s.Name)
		}
		if r.Forwarded != nil {
			s.Forwarded = *r.Forwarded
		}
		if r.UnderscoresInHeader != nil {
			s.UnderscoresInHeaders = *r.UnderscoresInHeader
		}
		if v := r.ClientMaxBodySize; v != nil {
			if *v < 0 {
				b.errorf(key+".client_max_body_size", "%d bytes: want 0 (no limit) or more", *v)
			} else {
				s.ClientMaxBodySize = *v
			}
		}
		if v := r.UpstreamKeepalive; v != nil {
			if *v < 1 || *v > 65536 {
				b.errorf(key+".upstream_keepalive", "%d: want 1 to 65536 idle connections per upstream and worker", *v)
			} else {
				s.UpstreamKeepalive = int(*v)
			}
		}
	}
	return s
}

// sniRoutes checks a tcp server's sni_routes: each needs server_names and
// upstreams; a name may appear in one route only; TLS passthrough cannot be
// combined with terminating TLS on the same listener.
func (b *builder) sniRoutes(key string, r *rawServer) []SNIRoute {
	if len(r.SNIRoutes) == 0 {
		b.errorf(key+".sni_routes", "empty sni_routes: give at least one { server_names, upstreams } or drop the key")
		return nil
	}
	if r.TLS != nil {
		b.errorf(key+".sni_routes", "sni_routes pass TLS through untouched; they cannot be combined with tls (termination) on the same server")
	}
	seen := map[string]int{}
	out := make([]SNIRoute, len(r.SNIRoutes))
	for i, rr := range r.SNIRoutes {
		k := fmt.Sprintf("%s.sni_routes.%d", key, i)
		sr := SNIRoute{Line: b.lines.line(k)}
		if len(rr.ServerNames) == 0 {
			b.errorf(k, "missing key server_names (at least one name, e.g. [\"a.example\", \"*.b.example\"])")
		}
		for j, n := range rr.ServerNames {
			nk := fmt.Sprintf("%s.server_names.%d", k, j)
			n = strings.ToLower(n)
			if err := checkServerName(n); err != nil {
				b.errorf(nk, "%v", err)
				continue
			}
			if prev, dup := seen[n]; dup {
				b.errorf(nk, "server name %q is already routed by sni_routes[%d]", n, prev)
				continue
			}
			seen[n] = i
			sr.ServerNames = append(sr.ServerNames, n)
		}
		sr.LoadBalancer = b.loadBalancer(k+".load_balancer", rr.LoadBalancer)
		sr.Upstreams = b.upstreams(k+".upstreams", rr.Upstreams, false, sr.LoadBalancer)
		sr.Health = b.health(k, rr.MaxFails, rr.FailTimeout)
		out[i] = sr
	}
	return out
}

// checkServerName accepts a DNS name, optionally with a leading "*.", as
// sent in SNI: letters, digits, hyphens and dots, no empty label, no
// trailing dot, not an IP address (SNI never carries one).
func checkServerName(n string) error {
	name := strings.TrimPrefix(n, "*.")
	bad := name == "" || len(name) > 253 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..")
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			bad = true
		}
	}
	if _, err := netip.ParseAddr(name); err == nil {
		bad = true
	}
	if bad {
		return fmt.Errorf("server name %q: want a DNS name like a.example or *.b.example (a wildcard only as a leading \"*.\")", n)
	}
	return nil
}

// upstreamTLS builds a route's upstream_tls; r may be nil (all defaults).
func (b *builder) upstreamTLS(key string, r *rawUpstreamTLS, stack string) *UpstreamTLS {
	t := &UpstreamTLS{Stack: stack}
	if r == nil {
		return t
	}
	str := func(field string, v *string) string {
		if v == nil {
			return ""
		}
		if *v == "" {
			b.errorf(key+"."+field, "empty %s: give a value or drop the key", field)
		}
		return *v
	}
	t.CA = str("ca", r.CA)
	t.Cert = str("cert", r.Cert)
	t.Key = str("key", r.Key)
	t.ServerName = str("server_name", r.ServerName)
	if r.InsecureSkipVerify != nil {
		t.InsecureSkipVerify = *r.InsecureSkipVerify
	}
	if (t.Cert == "") != (t.Key == "") {
		b.errorf(key, "cert and key go together: the client certificate needs its key and the key its certificate")
	}
	if t.InsecureSkipVerify && t.CA != "" {
		b.errorf(key+".insecure_skip_verify", "insecure_skip_verify = true makes ca useless; keep one")
	}
	if r.Stack != nil {
		t.Stack = b.tlsStack(key+".stack", *r.Stack)
	}
	return t
}

func (b *builder) tlsStack(key, v string) string {
	switch v {
	case TLSGo, "rustls":
		return TLSGo
	case TLSOpenSSL, "native_tls":
		return TLSOpenSSL
	}
	b.errorf(key, "unknown TLS stack %q: want %q (alias rustls) or %q (alias native_tls)", v, TLSGo, TLSOpenSSL)
	return ""
}

func (b *builder) tls(key string, r *rawTLS) *TLS {
	t := &TLS{Stack: TLSGo, SessionTickets: true, Line: b.lines.line(key)}
	if r.SessionTickets != nil {
		t.SessionTickets = *r.SessionTickets
	}
	if r.Chain == nil || *r.Chain == "" {
		b.errorf(key, "missing key chain (PEM certificate chain file)")
	} else {
		t.Chain = *r.Chain
	}
	if r.Key == nil || *r.Key == "" {
		b.errorf(key, "missing key key (PEM private key file)")
	} else {
		t.Key = *r.Key
	}
	if r.Stack != nil {
		t.Stack = b.tlsStack(key+".stack", *r.Stack)
	}
	return t
}

// setKey is a key of a table and whether the file set it.
type setKey struct {
	name string
	set  bool
}

// refuseSet reports each key of table that was set, in order, as one that
// only http servers take; instead says what a tcp server takes.
func (b *builder) refuseSet(table, instead string, keys ...setKey) {
	for _, k := range keys {
		if k.set {
			b.errorf(table+"."+k.name, "%s is for http servers; %s", k.name, instead)
		}
	}
}

// timeouts reads a server's timeout table. A tcp server refuses the
// timeouts only HTTP has rather than ignore them.
func (b *builder) timeouts(key string, r *rawServer, tcp bool) Timeout {
	var t Timeout
	raw, tkey := r.Timeout, key+".timeout"
	if r.HTTPTimeout != nil {
		if raw != nil {
			b.errorf(key+".http_timeout", "timeout and http_timeout both set; http_timeout is the older spelling, keep one")
		}
		raw, tkey = r.HTTPTimeout, key+".http_timeout"
	}
	sec := func(field string, v *int64) time.Duration {
		if v == nil {
			return 0
		}
		if *v <= 0 || *v > 86400*365 {
			b.errorf(tkey+"."+field, "%d seconds: want 1 to 31536000", *v)
			return 0
		}
		return time.Duration(*v) * time.Second
	}
	if raw != nil {
		t.ServerKeepalive = sec("server_keepalive_timeout_sec", raw.ServerKeepalive)
		t.ServerReadHeader = sec("server_read_header_timeout_sec", raw.ServerReadHeader)
		t.ServerReadBody = sec("server_read_body_timeout_sec", raw.ServerReadBody)
		t.ServerMessage = sec("server_message_timeout_sec", raw.ServerMessage)
		if v := raw.ServerPark; v != nil {
			switch {
			case *v == -1:
				t.ServerPark = -1
			case *v < 1 || *v > 86400000:
				b.errorf(tkey+".server_keepalive_park_ms", "%d: want -1 (never park) or 1 to 86400000 milliseconds", *v)
			default:
				t.ServerPark = time.Duration(*v) * time.Millisecond
			}
		}
		t.UpstreamConnect = sec("upstream_connect_timeout_sec", raw.UpstreamConnect)
		t.UpstreamRead = sec("upstream_read_timeout_sec", raw.UpstreamRead)
		t.UpstreamKeepalive = sec("upstream_keepalive_timeout_sec", raw.UpstreamKeepalive)
		if tcp {
			b.refuseSet(tkey, "a tcp server takes server_keepalive_timeout_sec (idle relay), "+
				"server_read_header_timeout_sec (TLS handshake or ClientHello) and upstream_connect_timeout_sec",
				setKey{"server_read_body_timeout_sec", raw.ServerReadBody != nil},
				setKey{"server_message_timeout_sec", raw.ServerMessage != nil},
				setKey{"upstream_read_timeout_sec", raw.UpstreamRead != nil},
				setKey{"upstream_keepalive_timeout_sec", raw.UpstreamKeepalive != nil},
				setKey{"server_keepalive_park_ms", raw.ServerPark != nil})
		}
	}
	if r.HTTPTimeoutSec != nil || r.HTTPTimeoutNano != nil {
		if raw != nil && raw.ServerKeepalive != nil {
			k := "http_timeout_sec"
			if r.HTTPTimeoutSec == nil {
				k = "http_timeout_nano"
			}
			b.errorf(key+"."+k, "%s and %s.server_keepalive_timeout_sec both set; %s is the oldest spelling of the keep-alive timeout, keep one", k, tkey, k)
		}
		var d time.Duration
		if r.HTTPTimeoutSec != nil {
			if *r.HTTPTimeoutSec < 0 || *r.HTTPTimeoutSec > 86400*365 {
				b.errorf(key+".http_timeout_sec", "%d seconds: want 0 to a year", *r.HTTPTimeoutSec)
			} else {
				d += time.Duration(*r.HTTPTimeoutSec) * time.Second
			}
		}
		if r.HTTPTimeoutNano != nil {
			if *r.HTTPTimeoutNano < 0 || *r.HTTPTimeoutNano >= 1e9 {
				b.errorf(key+".http_timeout_nano", "%d nanoseconds: want 0 to 999999999", *r.HTTPTimeoutNano)
			}
			d += time.Duration(*r.HTTPTimeoutNano)
		}
		if t.ServerKeepalive == 0 {
			t.ServerKeepalive = d
		}
	}
	return t
}

func (b *builder) route(key string, r *rawRoute, tlsStack string) Route {
	rt := Route{Line: b.lines.line(key)}
	if r.Path == nil {
		b.errorf(key, "missing key path")
	} else {
		p, err := NormalizePath(*r.Path)
		if err != nil {
			b.errorf(key+".path", "%v", err)
		}
		rt.Path = p
	}
	for i, h := range r.Host {
		if err := checkHostPattern(h); err != nil {
			b.errorf(fmt.Sprintf("%s.host.%d", key, i), "%v", err)
		}
		rt.Hosts = append(rt.Hosts, strings.TrimSuffix(strings.ToLower(h), "."))
	}
	rt.LoadBalancer = b.loadBalancer(key+".load_balancer", r.LoadBalancer)
	rt.Upstreams = b.upstreams(key+".upstreams", r.Upstreams, true, rt.LoadBalancer)
	rt.Health = b.health(key, r.MaxFails, r.FailTimeout)
	if r.RewritePath != nil {
		if err := checkRewrite(*r.RewritePath, rt.Path); err != nil {
			b.errorf(key+".rewrite_path", "%v", err)
		}
		rt.RewritePath = *r.RewritePath
	}
	https := false
	for _, u := range rt.Upstreams {
		if u.Endpoint.URL != nil && u.Endpoint.URL.Scheme == "https" {
			https = true
		}
	}
	switch {
	case https:
		rt.UpstreamTLS = b.upstreamTLS(key+".upstream_tls", r.UpstreamTLS, tlsStack)
	case r.UpstreamTLS != nil:
		b.errorf(key+".upstream_tls", "upstream_tls is set but no upstream of this route is an https URI")
	}
	return rt
}

// checkRewrite checks a rewrite_path against its route's path: a path
// (no query or fragment, nothing a request line cannot carry) whose
// "{name}" parts name parameters of the route.
func checkRewrite(rw, path string) error {
	if !strings.HasPrefix(rw, "/") {
		return fmt.Errorf("%q must start with /", rw)
	}
	for i, c := range []byte(rw) {
		if c <= ' ' || c >= 0x7f || c == '?' || c == '#' {
			return fmt.Errorf("%q: a path only, without spaces, control characters, '?' or '#'", rw)
		}
		if c == '%' && (i+2 >= len(rw) || !isHexDigit(rw[i+1]) || !isHexDigit(rw[i+2])) {
			return fmt.Errorf("%q: a %% that is no escape (write %%25)", rw)
		}
		if c == '\\' {
			return fmt.Errorf("%q: a backslash, which URIs do not have (write %%5C)", rw)
		}
	}
	// The proxy refuses such paths from clients; the upstream must not
	// get them from the config either.
	for _, seg := range strings.Split(rw, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%q: a %q segment (the upstream would resolve it)", rw, seg)
		}
	}
	params := map[string]bool{}
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			params[strings.TrimPrefix(seg[1:len(seg)-1], "*")] = true
		}
	}
	for rest := rw; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return fmt.Errorf("%q: a } without its {", rw)
			}
			break
		}
		if strings.IndexByte(rest[:i], '}') >= 0 {
			return fmt.Errorf("%q: a } without its {", rw)
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("%q: unclosed {", rw)
		}
		if name := rest[i+1 : i+j]; !params[name] {
			return fmt.Errorf("%q: {%s} is not a parameter of the route's path %q", rw, name, path)
		}
		rest = rest[i+j+1:]
	}
	return nil
}

// hostNameRune tells whether c can be in a host name as clients send it
// and DNS holds it (ASCII letters, digits, "-", "." and "_").
func hostNameRune(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

func checkHostPattern(h string) error {
	name := strings.TrimSuffix(strings.TrimPrefix(h, "*."), ".")
	if name == "" || strings.ContainsAny(name, "*/ {}[]") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("host %q: want a name like example.com or *.example.com (a wildcard only as a leading \"*.\")", h)
	}
	if strings.Contains(name, ":") && net.ParseIP(name) == nil {
		return fmt.Errorf("host %q: no port: a route's host matches the Host field without its port", h)
	}
	if net.ParseIP(name) != nil {
		return nil
	}
	// What a Host field can hold: a pattern with anything else never
	// matches.
	for _, c := range name {
		switch {
		case c >= utf8.RuneSelf:
			return fmt.Errorf("host %q: clients send a name that is not ASCII in its punycode form (xn--...): write that", h)
		case !hostNameRune(c):
			return fmt.Errorf("host %q: %q cannot be in a host name (one name per entry)", h, c)
		}
	}
	if strings.Contains(name, "..") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("host %q: an empty label", h)
	}
	return nil
}

// unmatchedSegment says why a static segment of a route path can never
// equal a segment of a normalized request path (see route.NormalizePath and
// route.CheckPath), or "". last: the path's last segment, which may be
// empty (a trailing slash).
func unmatchedSegment(s string, last bool) string {
	switch {
	case s == "" && !last:
		return "runs of slashes are merged"
	case s == "." || s == "..":
		return "dot segments are resolved"
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '?' || c == '#':
			return fmt.Sprintf("a request's path ends before %q (the query is not matched)", c)
		case c <= ' ' || c >= 0x7f:
			return fmt.Sprintf("byte %q cannot be in a request's path (write it escaped, as %%%02X)", c, c)
		case c == '\\':
			return "a path with a backslash is refused (400)"
		}
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2]) {
			return fmt.Sprintf("%q is no escape (such requests are refused)", s[i:min(i+3, len(s))])
		}
		esc := s[i : i+3]
		b, _ := strconv.ParseUint(esc[1:], 16, 8)
		switch c := byte(b); {
		case c == '/' || c == '\\':
			return fmt.Sprintf("%s is an encoded slash (such requests are refused)", esc)
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0:
			return fmt.Sprintf("%s is decoded (write %q)", esc, string(c))
		case esc != strings.ToUpper(esc):
			return fmt.Sprintf("escapes are in upper case (write %s)", strings.ToUpper(esc))
		}
		i += 2
	}
	return ""
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// NormalizePath checks a route path in either matchit syntax and returns it
// in the newer one: "/:id" becomes "/{id}", "/*rest" becomes "/{*rest}".
// A catch-all must be the last segment; parameter names must be unique.
func NormalizePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return p, fmt.Errorf("route path %q must start with /", p)
	}
	segs := strings.Split(p[1:], "/")
	names := map[string]bool{}
	for i, s := range segs {
		var name string
		catchAll := false
		switch {
		case strings.HasPrefix(s, ":"):
			name = s[1:]
		case strings.HasPrefix(s, "*"):
			name, catchAll = s[1:], true
		case strings.HasPrefix(s, "{*") && strings.HasSuffix(s, "}"):
			name, catchAll = s[2:len(s)-1], true
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name = s[1 : len(s)-1]
		case strings.ContainsAny(s, "{}"):
			return p, fmt.Errorf("route path %q: segment %q mixes text and a {parameter}", p, s)
		default:
			if why := unmatchedSegment(s, i == len(segs)-1); why != "" {
				return p, fmt.Errorf("route path %q never matches: requests are matched normalized, and %s", p, why)
			}
			continue
		}
		if name == "" || strings.ContainsAny(name, "{}*:") {
			return p, fmt.Errorf("route path %q: bad parameter name in %q", p, s)
		}
		if names[name] {
			return p, fmt.Errorf("route path %q: parameter %q used twice", p, name)
		}
		names[name] = true
		if catchAll {
			if i != len(segs)-1 {
				return p, fmt.Errorf("route path %q: catch-all %q must be the last segment", p, s)
			}
			segs[i] = "{*" + name + "}"
		} else {
			segs[i] = "{" + name + "}"
		}
	}
	return "/" + strings.Join(segs, "/"), nil
}
