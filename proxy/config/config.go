// Package config reads Monolake's TOML configuration into the types the proxy
// runs on.
//
// The schema is Monolake's own (so a Monolake config file works unchanged),
// extended with keys of ours that Monolake does not have (host matching,
// access logs, the demo upstream, drain timeout). Unknown keys, wrong types
// and impossible values are errors that name the file, the line and the
// reason; nothing is silently ignored.
package config

import (
	_ "embed"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// DefaultTOML is the embedded default configuration: a plain HTTP proxy on
// 127.0.0.1:8080 in front of the demo upstream the binary starts itself.
//
//go:embed default.toml
var DefaultTOML []byte

// DefaultName is the file name errors use for the embedded default config.
const DefaultName = "<embedded default>"

// Runtime types, as Monolake spells them.
const (
	RuntimeIOUring = "io_uring"
	RuntimeLegacy  = "legacy" // Go's netpoller (epoll)
)

// DefaultGCMinHeap is runtime.gc_min_heap_mib's default, in bytes.
const DefaultGCMinHeap = 16 << 20

// Proxy types.
const (
	ProxyHTTP = "http"
	ProxyTCP  = "tcp"
)

// Listener and endpoint types.
const (
	TypeSocket = "socket"
	TypeUnix   = "unix"
	TypeURI    = "uri"
)

// TLS backends, by our names. Monolake's names are accepted as aliases:
// "rustls" maps to gotls and "native_tls" to openssl.
const (
	TLSGo      = "gotls"
	TLSOpenSSL = "openssl"
)

// Load balancer names.
const (
	LBRoundRobin     = "round_robin"
	LBRandom         = "random"
	LBWeightedRandom = "weighted_random"
	LBFirst          = "first"
	LBLeastConn      = "least_conn"
)

// Config is a whole, validated configuration.
type Config struct {
	// Source names where the config came from (a path or DefaultName).
	Source string
	// Raw is the TOML text it was read from, passed to workers verbatim.
	Raw []byte

	Runtime Runtime
	// Servers by their table key, in the order of ServerNames.
	Servers     map[string]*Server
	ServerNames []string
	// Demo, when set, is the small HTTP origin the binary runs itself.
	Demo *Demo
	// TLSStack, when set (SetTLSStack, the --tls-backend flag), is the
	// one TLS backend of every server and upstream; workers, which parse
	// Raw again, are told it.
	TLSStack string
}

// SetTLSStack makes stack the TLS backend of every TLS server and of every
// route's upstream TLS: a flaw in one library is answered by moving all
// TLS off it.
func (c *Config) SetTLSStack(stack string) {
	c.TLSStack = stack
	for _, s := range c.Servers {
		if s.TLS != nil {
			s.TLS.Stack = stack
		}
		for i := range s.Routes {
			if t := s.Routes[i].UpstreamTLS; t != nil {
				t.Stack = stack
			}
		}
	}
}

// Runtime is the [runtime] table.
type Runtime struct {
	// Type is RuntimeIOUring or RuntimeLegacy.
	Type string
	// Workers is the number of worker processes; 0 runs everything in one
	// process. Defaults to the number of CPUs.
	Workers int
	// CPUAffinity pins worker i to the i-th (modulo their number) of the
	// CPUs the process may run on (its affinity: taskset, cgroups).
	// Defaults to true.
	CPUAffinity bool
	// Entries is the io_uring size per worker.
	Entries int
	// SQPollIdle turns SQPOLL on with this idle time; 0 leaves it off.
	SQPollIdle time.Duration
	// RecvBuffers is the number of receive buffers (RecvBufferSize each)
	// each io_uring worker shares among its connections (ours; default
	// 1024): fewer stay in the CPU's caches (large bodies), more let more
	// connections hold received data at once before reads fall back to
	// one-shot receives.
	RecvBuffers int
	// RecvBufferSize is the size in bytes of each of those buffers (ours:
	// recv_buffer_kib, a power of two from 1 to 256 KiB, default 16): one
	// receive completion carries at most this much, so larger buffers
	// take large bodies in fewer completions, and smaller ones hold less
	// memory per connection with data waiting. RecvBuffers × RecvBufferSize
	// is at most 1 GiB.
	RecvBufferSize int
	// DrainTimeout bounds how long a stopping worker waits for connections
	// in flight (ours; default 30s).
	DrainTimeout time.Duration
	// MaxConns caps the client connections each worker holds at once,
	// over all its servers (ours: max_connections, as nginx's
	// worker_connections but counting clients only); 0 means no cap.
	MaxConns int
	// GCMinHeap is the heap size, in bytes, below which a worker's garbage
	// collector does not start a cycle (ours: gc_min_heap_mib, default
	// 16 MiB); above it the collector paces as Go's default does. 0 leaves
	// the collector to GOGC, as does GOGC set in the environment.
	GCMinHeap uint64
}

// Listener is where a server accepts connections.
type Listener struct {
	Type  string // TypeSocket or TypeUnix
	Value string // host:port or a path
}

// Network returns "tcp" or "unix".
func (l Listener) Network() string {
	if l.Type == TypeUnix {
		return "unix"
	}
	return "tcp"
}

func (l Listener) String() string { return l.Network() + "://" + l.Value }

// Endpoint is where an upstream is.
type Endpoint struct {
	Type  string // TypeURI, TypeSocket or TypeUnix
	Value string
	// URL is the parsed value when Type is TypeURI.
	URL *url.URL
}

// Network returns "tcp" or "unix", the network to dial.
func (e Endpoint) Network() string {
	if e.Type == TypeUnix {
		return "unix"
	}
	return "tcp"
}

// Address returns the address to dial: host:port (with the scheme's default
// port for a URI without one) or a path.
func (e Endpoint) Address() string {
	if e.Type == TypeURI && e.URL != nil {
		host := e.URL.Host
		if e.URL.Port() == "" {
			port := "80"
			if e.URL.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(e.URL.Hostname(), port)
		}
		return host
	}
	return e.Value
}

func (e Endpoint) String() string {
	if e.Type == TypeURI {
		return e.Value
	}
	return e.Network() + "://" + e.Value
}

// Upstream is one endpoint with its weight (default 1).
type Upstream struct {
	Endpoint Endpoint
	Weight   int
}

// Route is one HTTP route ([[servers.NAME.routes]]).
type Route struct {
	// Path in matchit syntax, normalised to the new form: "/{id}",
	// "/{*rest}". The older "/:id" and "/*rest" are accepted.
	Path string
	// Hosts this route answers for (ours); empty means any host. A leading
	// "*." matches any subdomain.
	Hosts        []string
	LoadBalancer string
	Upstreams    []Upstream
	// RewritePath, when set, replaces the request path (ours).
	RewritePath string
	// Health takes failing upstreams out of the choice for a while.
	Health Health
	// UpstreamTLS says how the route's https upstreams are dialled (ours:
	// upstream_tls). It is set, with defaults filled in, exactly when the
	// route has an https upstream.
	UpstreamTLS *UpstreamTLS
	// Line is where the route is defined, for messages.
	Line int
}

// UpstreamTLS is a route's upstream_tls table (ours): the client side of
// TLS to its https upstreams. The name sent as SNI and verified is the
// URI's host unless ServerName is set.
type UpstreamTLS struct {
	// CA is a PEM file of the roots to verify upstreams against; ""
	// means the system roots.
	CA string
	// InsecureSkipVerify accepts any upstream certificate (logged as a
	// warning when the server is built).
	InsecureSkipVerify bool
	// Cert and Key are the client certificate chain and key (PEM files)
	// presented to upstreams that ask for one (mTLS); both or neither.
	Cert, Key string
	// Stack is the TLS backend (TLSGo or TLSOpenSSL): the key's value, else
	// the server's tls.stack when it terminates TLS, else TLSGo.
	Stack string
	// ServerName overrides the URI host as SNI and verified name.
	ServerName string
}

// SNIRoute is one entry of a tcp server's sni_routes (ours): TLS
// connections whose ClientHello names one of ServerNames are passed
// through, not terminated, to these upstreams.
type SNIRoute struct {
	// ServerNames are lower-case names; a leading "*." matches any name
	// ending in the rest (a.b.example and x.a.b.example for *.b.example).
	ServerNames []string
	L4Route
	// Line is where the entry is defined, for messages.
	Line int
}

// L4Route is the upstream set of a tcp server (route = { … }).
type L4Route struct {
	LoadBalancer string
	Upstreams    []Upstream
	Health       Health
}

// Health is a route's passive health check, nginx's max_fails and
// fail_timeout: MaxFails failures to connect or to get a response head,
// none further than FailTimeout from the one before, take an upstream out
// of the balancer's choice for FailTimeout (while the route has others up).
// MaxFails 0 turns it off.
type Health struct {
	MaxFails    int
	FailTimeout time.Duration
}

// Defaults of Health, nginx's.
const (
	DefaultMaxFails    = 1
	DefaultFailTimeout = 10 * time.Second
)

// TLS is a server's tls = { chain, key, stack }.
type TLS struct {
	Chain string
	Key   string
	// Stack is TLSGo or TLSOpenSSL (aliases already mapped).
	Stack string
	// SessionTickets lets clients resume sessions by tickets (ours:
	// session_tickets, default true; false is nginx's
	// ssl_session_tickets off).
	SessionTickets bool
	// Line is where the tls key is, for messages.
	Line int
}

// Timeout holds a server's timeouts; zero means the default of its user.
type Timeout struct {
	ServerKeepalive  time.Duration // idle time between requests (HTTP) or idle relay (tcp)
	ServerReadHeader time.Duration
	ServerReadBody   time.Duration
	ServerMessage    time.Duration
	UpstreamConnect  time.Duration
	UpstreamRead     time.Duration
	// UpstreamKeepalive is how long a pooled upstream connection may stay
	// idle (HTTP; ours: upstream_keepalive_timeout_sec, nginx's
	// keepalive_timeout in an upstream block).
	UpstreamKeepalive time.Duration
	// ServerPark is how long an idle HTTP keep-alive connection waits
	// before it is parked (httpproxy.ServerConfig.ParkAfter); negative:
	// never.
	ServerPark time.Duration
}

// Server is one [servers.NAME] table.
type Server struct {
	// Key is the table key (servers.KEY).
	Key string
	// Name is the server's name key (Monolake uses it for logs and Via).
	Name string
	// Line is where the server's table is defined (the first line that
	// names it), for messages.
	Line      int
	ProxyType string
	Listener  Listener
	TLS       *TLS

	// HTTP
	Routes              []Route
	UpstreamHTTPVersion string // "http11" (default), "http2" or "auto"
	ContentHandler      bool   // http_opt_handlers.content_handler
	AccessLog           string // ours: "" off, "-" stderr, or a path (http and tcp servers)
	// ClientMaxBodySize caps a request body in bytes (ours:
	// client_max_body_size, as nginx's but in bytes; 0: no cap).
	ClientMaxBodySize int64
	// UpstreamKeepalive caps the idle connections kept per upstream in
	// each worker's pool (ours: upstream_keepalive, as nginx's keepalive;
	// the config file takes 1 or more, default 256; 0, in a Server built
	// in Go, means the pool's default).
	UpstreamKeepalive int
	// UnderscoresInHeaders keeps request fields whose names hold an
	// underscore (nginx's underscores_in_headers; default false: dropped).
	UnderscoresInHeaders bool
	// PreserveHost keeps the client's Host header upstream (ours; default true).
	PreserveHost bool
	// Via adds a Via field naming this proxy (ours; default false).
	Via bool
	// Forwarded adds an RFC 7239 Forwarded field (ours; default false).
	Forwarded bool

	// TCP
	// Route is the tcp server's upstream set; with SNIRoutes it is the
	// default for connections no SNI route matches, and may be nil.
	Route *L4Route
	// SNIRoutes route TLS connections by the SNI name of their ClientHello
	// without terminating TLS (ours: sni_routes).
	SNIRoutes []SNIRoute

	Timeout Timeout
}

// Where names the server, and line (of its config file) when known, for
// messages: `server "a" (line 12)`. Servers built in Go have no lines.
func (s *Server) Where(line int) string {
	if line > 0 {
		return fmt.Sprintf("server %q (line %d)", s.Key, line)
	}
	return fmt.Sprintf("server %q", s.Key)
}

// Demo is our [demo] table: an HTTP origin the binary runs itself.
type Demo struct {
	Listener Listener
}

// Load reads and validates the config file at path. An empty path loads the
// embedded default.
func Load(path string) (*Config, error) {
	if path == "" {
		return Parse(DefaultName, DefaultTOML)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: reading %w", err)
	}
	return Parse(path, data)
}

// Parse reads and validates config text; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	f, err := decode(name, data)
	if err != nil {
		return nil, err
	}
	c, err := build(name, data, f)
	if err != nil {
		return nil, err
	}
	c.Source = name
	c.Raw = data
	return c, nil
}

// DefaultWorkers is the worker count when the config names none.
func DefaultWorkers() int { return runtime.NumCPU() }

// Summary describes, one line per item, what the config would serve.
func (c *Config) Summary() string {
	var b strings.Builder
	workers := fmt.Sprint(c.Runtime.Workers)
	if c.Runtime.Workers == 0 {
		workers = "0 (single process)"
	}
	fmt.Fprintf(&b, "config %s: runtime %s, workers %s, cpu affinity %v, drain timeout %s\n",
		c.Source, c.Runtime.Type, workers, c.Runtime.CPUAffinity, c.Runtime.DrainTimeout)
	if c.Demo != nil {
		fmt.Fprintf(&b, "demo upstream on %s\n", c.Demo.Listener)
	}
	for _, k := range c.ServerNames {
		s := c.Servers[k]
		scheme := s.ProxyType
		if s.TLS != nil {
			scheme += "+tls(" + s.TLS.Stack + ")"
		}
		fmt.Fprintf(&b, "server %s (%s): %s on %s\n", k, s.Name, scheme, s.Listener)
		switch s.ProxyType {
		case ProxyTCP:
			for _, r := range s.SNIRoutes {
				fmt.Fprintf(&b, "  sni=%s -> %s over %s (tls passthrough)\n", strings.Join(r.ServerNames, ","), r.LoadBalancer, upstreamList(r.Upstreams))
			}
			if s.Route != nil {
				dflt := ""
				if len(s.SNIRoutes) > 0 {
					dflt = " default"
				}
				fmt.Fprintf(&b, " %s -> %s over %s\n", dflt, s.Route.LoadBalancer, upstreamList(s.Route.Upstreams))
			}
		default:
			for _, r := range s.Routes {
				hosts := "*"
				if len(r.Hosts) > 0 {
					hosts = strings.Join(r.Hosts, ",")
				}
				fmt.Fprintf(&b, "  route host=%s path=%s -> %s over %s\n", hosts, r.Path, r.LoadBalancer, upstreamList(r.Upstreams))
				if t := r.UpstreamTLS; t != nil {
					fmt.Fprintf(&b, "    upstream tls(%s) ca=%q insecure_skip_verify=%v client_cert=%v\n", t.Stack, t.CA, t.InsecureSkipVerify, t.Cert != "")
				}
			}
		}
	}
	return b.String()
}

func upstreamList(us []Upstream) string {
	parts := make([]string, len(us))
	for i, u := range us {
		parts[i] = fmt.Sprintf("%s (weight %d)", u.Endpoint, u.Weight)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
