package bench

import (
	"fmt"
	"strings"
	"text/template"
)

// Mode is what a proxy under test does with a connection.
type Mode string

// Proxy modes.
const (
	ModeHTTP  Mode = "http"  // HTTP/1.1 reverse proxy, plain listener
	ModeHTTPS Mode = "https" // reverse proxy terminating TLS (HTTP/1.1 and h2)
	ModeTCP   Mode = "tcp"   // L4 relay
)

// The TLS parameters every TLS listener of the suite is held to, so nginx,
// the origin and Monolake do the same work per handshake and per byte.
// Go's crypto/tls does not let the suite choose TLS 1.3 suites; it picks
// AES-128-GCM on hardware with AES instructions, as pinned here.
const (
	TLSSuite = "TLS_AES_128_GCM_SHA256"
	TLSCurve = "X25519"
)

// OriginConfig is the nginx that serves the fixed bodies.
type OriginConfig struct {
	Dir     string // prefix: pid file, temp paths
	Log     string // error log (default Dir/error.log)
	NoFile  int    // worker_rlimit_nofile; 0 leaves nginx's default
	WWW     string // directory holding the body files
	Workers int
	HTTP    string // listen address, plain HTTP/1.1
	HTTPS   string // listen address, TLS HTTP/1.1 (direct https runs)
	H2      string // listen address, TLS with h2 (direct h2 runs)
	Cert    string
	Key     string
	// Sendfile names the bodies served with sendfile(2) and TCP_CORK
	// (tcp_nopush) on the plain HTTP listener; the others are read into
	// nginx's buffers (from descriptors its open file cache keeps) and
	// written. TLS listeners never use sendfile (nginx does not without
	// kernel TLS). For small bodies sendfile and the cork toggles cost the
	// origin more than the copy (26k against 36k req/s in direct 1 KiB
	// runs side by side on the suite's 2-core VM), and the origin shares
	// its CPU with the client: it held both proxies under test half idle.
	Sendfile []string
}

// NginxProxyConfig is nginx as the proxy under test.
type NginxProxyConfig struct {
	Dir      string
	Log      string // error log (default Dir/error.log)
	NoFile   int    // worker_rlimit_nofile; 0 leaves nginx's default
	Workers  int
	Mode     Mode
	Listen   string
	ListenH2 string // ModeHTTPS: a second listener with h2 on
	Upstream string // host:port of the origin
	// Keepalive is the idle upstream connections each worker keeps; at
	// least the client connection count, so nginx never reconnects.
	Keepalive int
	Cert, Key string
}

// MonolakeConfig is Monolake as the proxy under test.
type MonolakeConfig struct {
	Workers  int
	Runtime  string // RuntimeURing or RuntimeEpoll
	Mode     Mode
	Listen   string
	Upstream string // host:port of the origin
	Cert     string
	Key      string
	TLSStack string // gotls or openssl
}

// Runtimes of Monolake, by the names of its --runtime flag.
const (
	RuntimeURing = "uring"
	RuntimeEpoll = "epoll"
	// RuntimeURingSQPoll is the io_uring runtime with SQPOLL on (not a
	// --runtime name: the config's sqpoll_idle). Its kernel thread shares
	// the worker's CPU and counts in its CPU time.
	RuntimeURingSQPoll = "uring-sqpoll"
	// SQPollIdle is its sqpoll_idle (ms).
	SQPollIdle = 10
)

// buildRuntime is the runtime of the build a variant needs.
func buildRuntime(rt string) string {
	if rt == RuntimeURingSQPoll {
		return RuntimeURing
	}
	return rt
}

var funcs = template.FuncMap{"quote": tomlQuote, "runtimeType": runtimeType,
	"sqpoll":     func(rt string) bool { return rt == RuntimeURingSQPoll },
	"sqpollIdle": func() int { return SQPollIdle }}

// runtimeType maps a --runtime name to the config's runtime_type.
func runtimeType(rt string) string {
	if rt == RuntimeEpoll {
		return "legacy"
	}
	return "io_uring"
}

// tomlQuote returns s as a TOML basic string.
func tomlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

const nginxCommon = `worker_processes {{.Workers}};
{{- if .NoFile}}
worker_rlimit_nofile {{.NoFile}};
{{- end}}
pid {{.Dir}}/nginx.pid;
error_log {{if .Log}}{{.Log}}{{else}}{{.Dir}}/error.log{{end}} warn;
events {
    worker_connections 16384;
    multi_accept on;
}
`

const nginxHTTPCommon = `    access_log off;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    tcp_nodelay on;
`

const nginxTLS = `        ssl_certificate {{.Cert}};
        ssl_certificate_key {{.Key}};
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites ` + TLSSuite + `;
        ssl_ecdh_curve ` + TLSCurve + `;
        ssl_session_cache off;
        ssl_session_tickets off;
        ssl_conf_command NumTickets 0;
`

var originTmpl = template.Must(template.New("origin").Funcs(funcs).Parse(`# nginx as the origin: fixed bodies, keep-alive, no logs.
` + nginxCommon + `http {
` + nginxHTTPCommon + `    default_type application/octet-stream;
    sendfile off;
    open_file_cache max=64 inactive=600s;
    open_file_cache_valid 600s;
    etag off;
    server {
        listen {{.HTTP}} backlog=4096;
{{- if .HTTPS}}
        listen {{.HTTPS}} ssl backlog=4096;
{{- end}}
{{- if .H2}}
        listen {{.H2}} ssl http2 backlog=4096;
{{- end}}
{{- if or .HTTPS .H2}}
` + nginxTLS + `{{- end}}
        root {{.WWW}};
        location / {
            try_files $uri =404;
        }
{{- range .Sendfile}}
        location = /{{.}} {
            sendfile on;
            tcp_nopush on;
            try_files $uri =404;
        }
{{- end}}
    }
}
`))

var nginxProxyTmpl = template.Must(template.New("nginx-proxy").Funcs(funcs).Parse(`# nginx as the proxy under test: upstream keep-alive at least the client
# connection count, keepalive_requests large, access log off.
{{- if eq .Mode "tcp"}}
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
{{- end}}
` + nginxCommon + `{{if eq .Mode "tcp"}}stream {
    upstream origin {
        server {{.Upstream}};
    }
    server {
        listen {{.Listen}} backlog=4096;
        proxy_pass origin;
        tcp_nodelay on;
    }
}
{{- else}}http {
` + nginxHTTPCommon + `    # The client's X-Request-Id, else a new one (Monolake's default).
    map $http_x_request_id $req_id {
        "" $request_id;
        default $http_x_request_id;
    }
    upstream origin {
        server {{.Upstream}};
        keepalive {{.Keepalive}};
        keepalive_requests 100000000;
        keepalive_timeout 600s;
    }
    server {
{{- if eq .Mode "https"}}
        listen {{.Listen}} ssl backlog=4096;
{{- if .ListenH2}}
        listen {{.ListenH2}} ssl http2 backlog=4096;
{{- end}}
` + nginxTLS + `{{- else}}
        listen {{.Listen}} backlog=4096;
{{- end}}
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # What Monolake does by default: the client's Host and the
            # X-Forwarded fields upstream, X-Request-Id both ways.
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Request-Id $req_id;
            add_header X-Request-Id $req_id always;
        }
    }
}
{{- end}}
`))

var monolakeTmpl = template.Must(template.New("monolake").Funcs(funcs).Parse(`# Monolake for Go as the proxy under test.
[runtime]
runtime_type = {{quote (runtimeType .Runtime)}}
{{- if sqpoll .Runtime}}
sqpoll_idle = {{sqpollIdle}}
{{- end}}
worker_threads = {{.Workers}}
cpu_affinity = false # the suite pins with taskset
{{if eq .Mode "tcp"}}
[servers.bench]
name = "bench"
proxy_type = "tcp"
listener = { type = "socket", value = {{quote .Listen}} }
route = { load_balancer = "round_robin", upstreams = [{ endpoint = { type = "socket", value = {{quote .Upstream}} } }] }
{{- else}}
[servers.bench]
name = "bench"
listener = { type = "socket", value = {{quote .Listen}} }
{{- if eq .Mode "https"}}
tls = { chain = {{quote .Cert}}, key = {{quote .Key}}, stack = {{quote .TLSStack}}, session_tickets = false }
{{- end}}

[[servers.bench.routes]]
path = "/{*p}"
upstreams = [{ endpoint = { type = "uri", value = {{quote (print "http://" .Upstream)}} } }]
{{- end}}
`))

func render(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("bench: rendering %s config: %w", t.Name(), err)
	}
	return b.String(), nil
}

// RenderOrigin returns the nginx config of the origin.
func RenderOrigin(c OriginConfig) (string, error) { return render(originTmpl, c) }

// RenderNginxProxy returns the nginx config of nginx as the proxy under test.
func RenderNginxProxy(c NginxProxyConfig) (string, error) {
	if c.Keepalive < 1 {
		return "", fmt.Errorf("bench: nginx upstream keepalive %d, want at least 1", c.Keepalive)
	}
	return render(nginxProxyTmpl, c)
}

// RenderMonolake returns the TOML config of Monolake as the proxy under test.
func RenderMonolake(c MonolakeConfig) (string, error) {
	if c.Mode == ModeHTTPS && (c.Cert == "" || c.Key == "" || c.TLSStack == "") {
		return "", fmt.Errorf("bench: monolake https config needs a chain, a key and a stack")
	}
	return render(monolakeTmpl, c)
}
