package demo

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestDemoAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Start(ln, slog.New(slog.DiscardHandler))
	defer s.Close()
	req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/hello?x=1", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"GET /hello?x=1 HTTP/1.1", "X-Forwarded-For: 192.0.2.7", "demo upstream"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if resp.Header.Get("X-Demo-Upstream") == "" {
		t.Error("no X-Demo-Upstream header")
	}
}
