package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

func TestParseVmRSS(t *testing.T) {
	kb, err := ParseVmRSS([]byte("Name:\tnginx\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n"))
	if err != nil || kb != 12345 {
		t.Fatalf("got %d, %v", kb, err)
	}
	for _, bad := range []string{"Name:\tkthreadd\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n"} {
		if _, err := ParseVmRSS([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	rss, err := TreeRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("this process's RSS: %d, %v", rss, err)
	}
}

// TestOpenIdle: connections that made their request stay open and are seen
// alive; closed by the server, they are seen closed.
func TestOpenIdle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	set, err := OpenIdle(context.Background(), srv.Listener.Addr().String(), "/0", 40, 8)
	if err != nil || set.Len() != 40 {
		t.Fatalf("opened %d of 40: %v", set.Len(), err)
	}
	defer set.Close()
	if closed := set.Alive(); closed != 0 {
		t.Fatalf("%d connections closed, want none", closed)
	}
	srv.CloseClientConnections()
	if closed := set.Alive(); closed != 40 {
		t.Fatalf("%d of 40 connections seen closed after the server closed them", closed)
	}
	if _, err := OpenIdle(context.Background(), "127.0.0.1:1", "/0", 3, 2); err == nil {
		t.Fatal("no error from a refused address")
	}
}
