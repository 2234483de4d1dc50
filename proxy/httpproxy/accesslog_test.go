package httpproxy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestAccessLog(t *testing.T) {
	up := newEchoUpstream(t, "up")
	path := filepath.Join(t.TempDir(), "access.log")
	p := startProxy(t, serverTOML("access_log = "+quote(path), routeTOML("/{*p}", "", up.addr())), Options{})
	c := client(t)
	do(t, c, "GET", "http://"+p.Addr+"/a?b=1", "", nil, nil)
	do(t, c, "POST", "http://"+p.Addr+"/c", "", nil, strings.NewReader("body"))
	do(t, c, "GET", "http://"+p.Addr+"/", "", nil, nil) // 404: no route for "/"
	raw := dialRaw(t, p.Addr)                           // a quote in the target, escaped in the log
	raw.send(t, "GET /q\"x HTTP/1.1\r\nHost: a\r\n\r\n")
	raw.response(t, "GET")
	p.Srv.Close() // flushes the log
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /a\?b=1 HTTP/1\.1" 200 \d+ \d+\.\d{6}$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "POST /c HTTP/1\.1" 200 \d+ \d+\.\d{6}$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET / HTTP/1\.1" 404 \d+ \d+\.\d{6}$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET /q\\x22x HTTP/1\.1" 200 \d+ \d+\.\d{6}$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i, lines[i], re)
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
