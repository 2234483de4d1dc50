package tlsbackend_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// lookTool finds a real client or skips with the reason.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tlstest.Unavailable(t, "%s not installed: %v", name, err)
	}
	return p
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lookTool(t, name), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOpenSSLSClient: `openssl s_client` verifies each backend's server
// (CA file, host name), negotiates ALPN h2 and TLS 1.3 or 1.2, and gets the
// server's greeting before the server's close_notify.
func TestOpenSSLSClient(t *testing.T) {
	p := testPKI(t)
	dir := t.TempDir()
	ca, err := tlstest.WriteFile(dir, "ca.pem", p.ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlstest.WriteFile(dir, "other.pem", p.otherCA.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	forBackends(t, func(t *testing.T, b tlsbackend.Backend) {
		cfg := p.serverConfig()
		cfg.NextProtos = []string{"h2", "http/1.1"}
		srv := startServer(t, b, cfg, func(c tlsbackend.Conn) {
			io.WriteString(c, "greetings from "+b.Name()+"\n")
		})
		for _, v := range []struct{ flag, want string }{{"-tls1_3", "TLSv1.3"}, {"-tls1_2", "TLSv1.2"}} {
			t.Run(v.want, func(t *testing.T) {
				out := runTool(t, "openssl", "s_client", "-connect", srv.addr, v.flag,
					"-servername", "b.test", "-verify_hostname", "b.test", "-CAfile", ca,
					"-verify_return_error", "-alpn", "http/1.1,h2", "-brief", "-ign_eof")
				r := srv.result(t)
				if r.err != nil {
					t.Fatalf("server: %v\n%s", r.err, out)
				}
				for _, want := range []string{"Protocol version: " + v.want, "Verification: OK", "greetings from " + b.Name()} {
					if !strings.Contains(out, want) {
						t.Errorf("s_client output lacks %q:\n%s", want, out)
					}
				}
				if r.st.NegotiatedProtocol != "h2" || r.st.ServerName != "b.test" {
					t.Errorf("server saw ALPN %q SNI %q", r.st.NegotiatedProtocol, r.st.ServerName)
				}
				if !strings.Contains(out, "CN = b.test") && !strings.Contains(out, "CN=b.test") {
					t.Errorf("s_client did not get the b.test certificate:\n%s", out)
				}
			})
		}
		t.Run("untrusted", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, lookTool(t, "openssl"), "s_client", "-connect", srv.addr,
				"-servername", "a.test", "-verify_return_error", "-CAfile", other, "-brief", "-ign_eof").CombinedOutput()
			if err == nil {
				t.Errorf("s_client accepted a server its CA file does not vouch for:\n%s", out)
			}
			if r := srv.result(t); r.err == nil {
				t.Errorf("server handshake succeeded with a client that refused its certificate")
			}
		})
	})
}

// httpHello answers one HTTP/1.1 request with "hello" and closes.
func httpHello(c tlsbackend.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
}

// TestCurl: curl (--cacert, --resolve) fetches over HTTPS from each
// backend's server, offering h2 and http/1.1 to a server that speaks only
// http/1.1, over TLS 1.3 and TLS 1.2.
func TestCurl(t *testing.T) {
	p := testPKI(t)
	ca, err := tlstest.WriteFile(t.TempDir(), "ca.pem", p.ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	forBackends(t, func(t *testing.T, b tlsbackend.Backend) {
		cfg := p.serverConfig()
		cfg.NextProtos = []string{"http/1.1"}
		srv := startServer(t, b, cfg, httpHello)
		_, port, _ := net.SplitHostPort(srv.addr)
		for _, v := range []struct {
			name  string
			flags []string
			want  uint16
		}{
			{"tls13", []string{"--tlsv1.3"}, tlsbackend.VersionTLS13},
			{"tls12", []string{"--tlsv1.2", "--tls-max", "1.2"}, tlsbackend.VersionTLS12},
		} {
			t.Run(v.name, func(t *testing.T) {
				args := append([]string{"-sS", "--cacert", ca, "--resolve", "a.test:" + port + ":127.0.0.1",
					"-w", " %{http_version} %{ssl_verify_result}"}, v.flags...)
				out := runTool(t, "curl", append(args, "https://a.test:"+port+"/")...)
				r := srv.result(t)
				if r.err != nil {
					t.Fatalf("server: %v", r.err)
				}
				if out != "hello 1.1 0" {
					t.Errorf("curl printed %q, want %q", out, "hello 1.1 0")
				}
				if r.st.Version != v.want || r.st.NegotiatedProtocol != "http/1.1" || r.st.ServerName != "a.test" {
					t.Errorf("server saw version %#x ALPN %q SNI %q", r.st.Version, r.st.NegotiatedProtocol, r.st.ServerName)
				}
			})
		}
	})
}
