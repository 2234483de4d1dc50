package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
)

func TestRenderOrigin(t *testing.T) {
	c := OriginConfig{
		Dir: "/w/origin", WWW: "/w/www", Workers: 1, NoFile: 20000,
		HTTP: "127.0.0.1:18000", HTTPS: "127.0.0.1:18001", H2: "127.0.0.1:18002",
		Cert: "/w/cert.pem", Key: "/w/key.pem", Sendfile: []string{"64k"},
	}
	got, err := RenderOrigin(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"worker_processes 1;",
		"worker_rlimit_nofile 20000;",
		"access_log off;",
		"keepalive_requests 100000000;",
		"listen 127.0.0.1:18000 backlog=4096;",
		"listen 127.0.0.1:18001 ssl backlog=4096;",
		"listen 127.0.0.1:18002 ssl http2 backlog=4096;",
		"ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;",
		"root /w/www;",
		"sendfile off;",
		"location = /64k {\n            sendfile on;\n            tcp_nopush on;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("origin config lacks %q:\n%s", want, got)
		}
	}
	for _, on := range []string{"sendfile on;", "tcp_nopush on;"} {
		if n := strings.Count(got, on); n != 1 {
			t.Errorf("origin config has %q %d times, want once (for /64k):\n%s", on, n, got)
		}
	}
	server := got[strings.Index(got, "server {"):]
	if i, j := strings.Index(server, "location = /64k {"), strings.LastIndex(server, "}\n}"); i < 0 || i > j {
		t.Errorf("the /64k location is not inside the server block:\n%s", got)
	}
	c.HTTPS, c.H2 = "", ""
	got, err = RenderOrigin(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "ssl") {
		t.Errorf("plain origin config mentions ssl:\n%s", got)
	}
}

func TestSendfileBodies(t *testing.T) {
	for _, tt := range []struct {
		from string
		want []string
	}{
		{"", []string{"64k"}},
		{"64k", []string{"64k"}},
		{"16KiB", []string{"16k", "64k"}},
		{"1024", []string{"1k", "16k", "64k"}},
		{"0", []string{"0", "1k", "16k", "64k"}},
	} {
		got, err := SendfileBodies(tt.from)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("SendfileBodies(%q) = %v, %v; want %v", tt.from, got, err, tt.want)
		}
	}
	if _, err := SendfileBodies("2k"); err == nil {
		t.Error("SendfileBodies(\"2k\") gave no error")
	}
}

func TestRenderNginxProxy(t *testing.T) {
	base := NginxProxyConfig{
		Dir: "/w/nginx", Workers: 2, Listen: "127.0.0.1:18100",
		Upstream: "127.0.0.1:18000", Keepalive: 200,
		Cert: "/w/cert.pem", Key: "/w/key.pem",
	}
	tests := []struct {
		mode    Mode
		h2      string
		want    []string
		notWant []string
	}{
		{
			mode: ModeHTTP,
			want: []string{
				"worker_processes 2;", "access_log off;", "keepalive 200;",
				"keepalive_requests 100000000;", "proxy_http_version 1.1;",
				`proxy_set_header Connection "";`, "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "listen 127.0.0.1:18100 backlog=4096;",
				"server 127.0.0.1:18000;",
			},
			notWant: []string{"ssl", "stream {", "load_module"},
		},
		{
			mode: ModeHTTPS, h2: "127.0.0.1:18102",
			want: []string{
				"listen 127.0.0.1:18100 ssl backlog=4096;",
				"listen 127.0.0.1:18102 ssl http2 backlog=4096;",
				"ssl_protocols TLSv1.3;", "ssl_ecdh_curve X25519;", "keepalive 200;",
			},
		},
		{
			mode: ModeTCP,
			want: []string{
				"load_module /usr/lib/nginx/modules/ngx_stream_module.so;",
				"stream {", "proxy_pass origin;", "listen 127.0.0.1:18100 backlog=4096;",
			},
			notWant: []string{"http {", "keepalive 200"},
		},
	}
	for _, tt := range tests {
		t.Run("mode="+string(tt.mode), func(t *testing.T) {
			c := base
			c.Mode, c.ListenH2 = tt.mode, tt.h2
			got, err := RenderNginxProxy(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("config lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("config has %q:\n%s", w, got)
				}
			}
		})
	}
	c := base
	c.Keepalive = 0
	if _, err := RenderNginxProxy(c); err == nil {
		t.Error("keepalive 0 accepted")
	}
}

// TestNginxConfigsValid runs `nginx -t` on the rendered configs when nginx
// is installed.
func TestNginxConfigsValid(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not installed:", err)
	}
	dir := t.TempDir()
	cert, key, err := WriteCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := RenderOrigin(OriginConfig{Dir: dir, WWW: dir, Workers: 1,
		HTTP: "127.0.0.1:18000", HTTPS: "127.0.0.1:18001", H2: "127.0.0.1:18002", Cert: cert, Key: key, Sendfile: []string{"16k", "64k"}})
	configs := map[string]string{"origin": origin}
	for _, m := range []Mode{ModeHTTP, ModeHTTPS, ModeTCP} {
		if m == ModeTCP {
			if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err != nil {
				continue
			}
		}
		s, err := RenderNginxProxy(NginxProxyConfig{Dir: dir, Workers: 1, Mode: m,
			Listen: "127.0.0.1:18100", ListenH2: "127.0.0.1:18102", Upstream: "127.0.0.1:18000",
			Keepalive: 50, Cert: cert, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		configs[string(m)] = s
	}
	for name, text := range configs {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".conf")
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(nginx, "-t", "-q", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", p).CombinedOutput()
			if err != nil {
				t.Errorf("nginx -t: %v\n%s\n%s", err, out, text)
			}
		})
	}
}

func TestRenderMonolake(t *testing.T) {
	tests := []struct {
		name string
		c    MonolakeConfig
		want []string
	}{
		{
			name: "http",
			c:    MonolakeConfig{Workers: 1, Runtime: RuntimeEpoll, Mode: ModeHTTP, Listen: "127.0.0.1:18200", Upstream: "127.0.0.1:18000"},
			want: []string{`runtime_type = "legacy"`, "worker_threads = 1", `path = "/{*p}"`, `value = "http://127.0.0.1:18000"`},
		},
		{
			name: "https",
			c: MonolakeConfig{Workers: 2, Runtime: RuntimeURing, Mode: ModeHTTPS, Listen: "127.0.0.1:18201", Upstream: "127.0.0.1:18000",
				Cert: `/w/a "b"/cert.pem`, Key: "/w/key.pem", TLSStack: "openssl"},
			// Tickets off, as nginx's ssl_session_tickets: wrk resumes
			// sessions when it is given tickets.
			want: []string{`runtime_type = "io_uring"`, `chain = "/w/a \"b\"/cert.pem"`, `stack = "openssl"`, "session_tickets = false"},
		},
		{
			name: "sqpoll",
			c:    MonolakeConfig{Workers: 1, Runtime: RuntimeURingSQPoll, Mode: ModeHTTP, Listen: "127.0.0.1:18202", Upstream: "127.0.0.1:18000"},
			want: []string{`runtime_type = "io_uring"`, "sqpoll_idle = 10"},
		},
		{
			name: "tcp",
			c:    MonolakeConfig{Workers: 0, Runtime: RuntimeEpoll, Mode: ModeTCP, Listen: "127.0.0.1:18203", Upstream: "127.0.0.1:18000"},
			want: []string{`proxy_type = "tcp"`, "worker_threads = 0", `endpoint = { type = "socket", value = "127.0.0.1:18000" }`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderMonolake(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("config lacks %q:\n%s", w, got)
				}
			}
			// The proxy's own config reader must accept it.
			c, err := config.Parse(tt.name, []byte(got))
			if err != nil {
				t.Fatalf("config.Parse: %v\n%s", err, got)
			}
			if c.Runtime.Workers != tt.c.Workers {
				t.Errorf("workers = %d, want %d", c.Runtime.Workers, tt.c.Workers)
			}
			if c.Runtime.CPUAffinity {
				t.Error("cpu_affinity on; the suite pins with taskset")
			}
			if sq := tt.c.Runtime == RuntimeURingSQPoll; sq != (c.Runtime.SQPollIdle == SQPollIdle*time.Millisecond) {
				t.Errorf("sqpoll_idle %v for runtime %s", c.Runtime.SQPollIdle, tt.c.Runtime)
			}
		})
	}
	if _, err := RenderMonolake(MonolakeConfig{Mode: ModeHTTPS}); err == nil {
		t.Error("https config without a certificate accepted")
	}
}
