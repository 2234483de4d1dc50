// Package demo is the small HTTP origin the monolake binary runs itself when
// the config has a [demo] table, so the default config proxies to something
// at once. It answers every request with a page describing what it received
// (method, path, the forwarding headers a proxy added), which makes the
// proxy's work visible with a plain curl.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

// Server is a running demo origin.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Start listens on ln and serves in a goroutine until Close.
func Start(ln net.Listener, log *slog.Logger) *Server {
	s := &Server{ln: ln, srv: &http.Server{
		Handler:           http.HandlerFunc(handle),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo upstream stopped", "err", err)
		}
	}()
	return s
}

// Addr is the address the demo origin listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the demo origin, letting requests in flight finish for up to
// a second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

func handle(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello from the Monolake for Go demo upstream (pid %d).\n\n", os.Getpid())
	fmt.Fprintf(&b, "request:   %s %s %s\n", r.Method, r.URL.RequestURI(), r.Proto)
	fmt.Fprintf(&b, "host:      %s\n", r.Host)
	fmt.Fprintf(&b, "peer:      %s\n", r.RemoteAddr)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	b.WriteString("\nheaders as received:\n")
	for _, k := range names {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "  %s: %s\n", k, v)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Demo-Upstream", "monolake-go")
	fmt.Fprint(w, b.String())
}
