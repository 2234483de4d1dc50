package httpproxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
)

func TestAccessLog(t *testing.T) {
	up := newEchoUpstream(t, "up")
	lines := accessLogLines(t, testDriver(t), "", routeTOML("/{*p}", "", up.addr()), 4, func(addr string) {
		c := client(t)
		do(t, c, "GET", "http://"+addr+"/a?b=1", "", nil, nil)
		do(t, c, "POST", "http://"+addr+"/c", "", nil, strings.NewReader("body"))
		do(t, c, "GET", "http://"+addr+"/", "", nil, nil) // 404: no route for "/"
		raw := dialRaw(t, addr)                           // a quote in the target, escaped in the log
		raw.send(t, "GET /q\"x HTTP/1.1\r\nHost: a\r\n\r\n")
		raw.response(t, "GET")
	})
	// A line is written once its response went out: lines of different
	// connections may come in either order.
	want := []*regexp.Regexp{
		regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /a\?b=1 HTTP/1\.1" 200 \d+ \d+\.\d{6}$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "POST /c HTTP/1\.1" 200 \d+ \d+\.\d{6}$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET / HTTP/1\.1" 404 \d+ \d+\.\d{6}$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET /q\\x22x HTTP/1\.1" 200 \d+ \d+\.\d{6}$`),
	}
	for _, re := range want {
		if !slices.ContainsFunc(lines, re.MatchString) {
			t.Errorf("no line matches %s: %q", re, lines)
		}
	}
}

// TestAccessLogOff: no access log unless configured.
func TestAccessLogOff(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.addr())), Options{})
	for _, x := range p.Srv.svc.(closeAll).closers {
		if _, ok := x.(*AccessLog); ok {
			t.Fatal("access log on by default")
		}
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }

// accessLogLines serves routes with an access log and the server keys in
// extra on drv, runs client
// against the proxy's address, and returns the log's lines once there are
// want of them (a response may still be going out when client returns:
// its line comes at its end). It fails if there are not exactly want.
func accessLogLines(t *testing.T, drv netio.Driver, extra, routes string, want int, client func(addr string)) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	p := startProxyOn(t, drv, serverTOML("access_log = "+quote(path)+"\n"+extra, routes), Options{})
	client(p.Addr)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(b, []byte("\n")) >= want || time.Now().After(deadline) {
			break
		}
	}
	p.Srv.Close() // flushes the log: one line too many would show
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != want {
		t.Fatalf("want %d lines, have %q", want, lines)
	}
	return lines
}

// oneLine is accessLogLines for one line.
func oneLine(t *testing.T, drv netio.Driver, extra, routes string, client func(addr string)) string {
	t.Helper()
	return accessLogLines(t, drv, extra, routes, 1, client)[0]
}

// rawGet gets target from addr on a connection of its own and checks the
// response's body.
func rawGet(t *testing.T, addr, target, want string) {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(t, "GET "+target+" HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, b := c.response(t, "GET"); string(b) != want {
		t.Fatalf("GET %s: body %q, want %q", target, b, want)
	}
}

// logFields returns a line's status, size and seconds.
func logFields(t *testing.T, line string) (status int, size int64, secs float64) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 3 {
		t.Fatalf("line %q", line)
	}
	var err error
	if status, err = strconv.Atoi(f[len(f)-3]); err != nil {
		t.Fatalf("line %q: status: %v", line, err)
	}
	if size, err = strconv.ParseInt(f[len(f)-2], 10, 64); err != nil {
		t.Fatalf("line %q: size: %v", line, err)
	}
	if secs, err = strconv.ParseFloat(f[len(f)-1], 64); err != nil {
		t.Fatalf("line %q: seconds: %v", line, err)
	}
	return status, size, secs
}

// TestAccessLogAtEnd: the line is written once the response went out, as
// nginx writes its: the size is the body bytes the client was sent (chunk
// framing included, a cut-off body's part, a tunnel's bytes) and the
// seconds run to the body's end.
func TestAccessLogAtEnd(t *testing.T) {
	t.Run("chunked", func(t *testing.T) {
		up := rawRequests(t, func(c net.Conn, r *http.Request, body []byte) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		})
		line := oneLine(t, testDriver(t), "", routeTOML("/{*p}", "", up), func(addr string) {
			rawGet(t, addr, "/c", "hello")
		})
		// "5\r\nhello\r\n0\r\n\r\n" on the wire, as nginx's $body_bytes_sent.
		if status, size, _ := logFields(t, line); status != 200 || size != 15 {
			t.Errorf("%q: want status 200, size 15", line)
		}
	})
	t.Run("slow-body", func(t *testing.T) {
		const pause = 300 * time.Millisecond
		up := rawRequests(t, func(c net.Conn, r *http.Request, body []byte) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
			time.Sleep(pause)
			io.WriteString(c, "67890")
		})
		line := oneLine(t, testDriver(t), "", routeTOML("/{*p}", "", up), func(addr string) {
			rawGet(t, addr, "/s", "1234567890")
		})
		if status, size, secs := logFields(t, line); status != 200 || size != 10 || secs < pause.Seconds() {
			t.Errorf("%q: want status 200, size 10, at least %.1f s", line, pause.Seconds())
		}
	})
	t.Run("client-gone", func(t *testing.T) {
		const total = 64 << 20
		up := rawRequests(t, func(c net.Conn, r *http.Request, body []byte) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", total)
			chunk := make([]byte, 64<<10)
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			for sent := 0; sent < total; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return // the proxy gave up on the response
				}
			}
		})
		line := oneLine(t, testDriver(t), "", routeTOML("/{*p}", "", up), func(addr string) {
			c := dialRaw(t, addr)
			c.send(t, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			c.Conn.(*net.TCPConn).SetLinger(0) // a reset: the proxy's writes fail at once
			c.Close()
		})
		if status, size, _ := logFields(t, line); status != 200 || size < 1<<20 || size >= total {
			t.Errorf("%q: want status 200 and a size from 1 MiB to under %d", line, total)
		}
	})
	t.Run("tunnel", func(t *testing.T) {
		// On io_uring, a driver of 16 receive buffers: the requests of
		// another connection while the tunnel is open reuse the one the
		// tunnel's request head was parsed in, which the tunnel gave back.
		drv, _ := ownDriver(t, 16)
		up := rawUpstream(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for {
				r, _, err := readRequest(br)
				if err != nil {
					return
				}
				if r.URL.Path == "/ws" {
					io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nfrom-upstream")
					return
				}
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			}
		})
		lines := accessLogLines(t, drv, "", routeTOML("/{*p}", "", up), 65, func(addr string) {
			c := dialRaw(t, addr)
			c.send(t, "GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("%v %v", resp, err)
			}
			if b, err := io.ReadAll(c.br); err != nil || string(b) != "from-upstream" {
				t.Fatalf("tunnel read %q %v", b, err)
			}
			other := dialRaw(t, addr)
			for i := range 64 {
				other.send(t, fmt.Sprintf("GET /other/%d HTTP/1.1\r\nHost: a\r\nConnection: %s\r\n\r\n", i, map[bool]string{true: "close", false: "keep-alive"}[i == 63]))
				if resp, _ := other.response(t, "GET"); resp.StatusCode != 204 {
					t.Fatalf("other request %d: %s", i, resp.Status)
				}
			}
			c.Close() // the tunnel's other way ends: the tunnel is over
		})
		// The target is the request's though the tunnel gave the head's
		// buffer back (on io_uring, to the kernel) before the line; the
		// 64 other requests have lines too, the last of them written
		// before or after the tunnel's.
		want := `"GET /ws?x=1 HTTP/1.1" 101 13 `
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("no line has %q (the request, status 101 and the 13 bytes the tunnel passed): %q", want, lines)
		}
	})
}

// TestAccessLogRefused: requests the server answers before the stack sees
// them are logged, as nginx logs them, with the request line as received
// (escaped), the status, the error body's size and "-" for the seconds.
func TestAccessLogRefused(t *testing.T) {
	up := newEchoUpstream(t, "up")
	routes := routeTOML("/{*p}", "", up.addr())
	for _, tc := range []struct {
		name, extra, send, want string
	}{
		{"malformed", "", "GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", `"GET /x HTTP/1.1" 400 16 -`},
		{"not http", "", "\x16\x03\x01\"x\r\n\r\n", `"\x16\x03\x01\x22x" 400 16 -`},
		{"empty line", "", "\r\n\r\n\r\n" + strings.Repeat("\r\n", 9000), `"-" 431 36 -`},
		{"body too large", "client_max_body_size = 10", "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", `"POST /up HTTP/1.1" 413 22 -`},
		{"head timeout", "timeout = { server_read_header_timeout_sec = 1 }", "GET /slow HTTP/1.1\r\nHost: a\r\n", `"GET /slow HTTP/1.1" 408 20 -`},
		// A path refused after its head was read: the line is the
		// request's, not the body's that follows it.
		{"bad path", "", "POST /a%2Fb HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n\r\npassword=x&y=", `"POST /a%2Fb HTTP/1.1" 400 16 -`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := oneLine(t, testDriver(t), tc.extra, routes, func(addr string) {
				c := dialRaw(t, addr)
				c.send(t, tc.send)
				if _, err := io.Copy(io.Discard, c.br); err != nil { // the answer, then the close
					t.Fatal(err)
				}
			})
			if !regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] `).MatchString(line) || !strings.HasSuffix(line, tc.want) {
				t.Errorf("line %q, want it to end %q", line, tc.want)
			}
		})
	}
}
