package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/httpproxy"
	"github.com/monolake-go/monolake/proxy/l4"
	"github.com/monolake-go/monolake/proxy/server"
	"github.com/monolake-go/monolake/proxy/tlsproxy"
	"github.com/monolake-go/monolake/tlsbackend"
)

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// buildService makes the connection service for one configured server.
// sec holds the secret its session-ticket keys derive from, the same in
// every worker, and the master's copy of its certificate.
func buildService(s *config.Server, worker string, sec *secrets, dial dialFunc, log *slog.Logger) (server.ConnService, error) {
	svc, err := buildPlain(s, worker, dial, log)
	if err != nil || s.TLS == nil {
		return svc, err
	}
	// Offer only what the service behind speaks (no h2 until it is served).
	var alpn []string
	if s.ProxyType == config.ProxyHTTP {
		alpn = []string{"http/1.1"}
	}
	// The certificate files are followed: a changed pair is loaded and
	// used for new handshakes without a restart (tlsproxy.Reloader).
	var keys *tlsbackend.TicketKeyRotator
	if s.TLS.SessionTickets {
		keys = tlsproxy.TicketKeys(sec.Tickets, s.Key)
	}
	sc, err := tlsproxy.WatchServerConfig(s.TLS, alpn, tlsproxy.WatchOptions{Tickets: keys, Fallback: sec.fallback(s.Key), Log: log})
	if err != nil {
		proxy.CloseService(svc)
		return nil, fmt.Errorf("%s: tls: %w", s.Where(s.TLS.Line), err)
	}
	log.Info("tls", "backend", s.TLS.Stack, "chain", s.TLS.Chain)
	return tlsproxy.Layer(sc, s.Timeout.ServerReadHeader, log)(svc), nil
}

// buildPlain makes the service behind TLS (or without it).
func buildPlain(s *config.Server, worker string, dial dialFunc, log *slog.Logger) (server.ConnService, error) {
	switch s.ProxyType {
	case config.ProxyTCP:
		p, err := l4.New(s, log)
		if err != nil {
			return nil, err
		}
		p.SetDial(dial)
		return p, nil
	case config.ProxyHTTP:
		h, err := httpproxy.New(s, httpproxy.Options{Log: log, Worker: worker, Dial: dial})
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	return nil, fmt.Errorf("server %q: unknown proxy_type %q", s.Key, s.ProxyType)
}

// Check builds the service of every server of cfg, as a worker would
// before it listens, and closes them: what only shows then (routes that
// clash, a TLS backend this build lacks, certificate files that do not
// load, a CA file missing) is an error here, for `monolake check`. What
// the build logs as warnings (a certificate that has expired, an upstream
// not verified) goes to log at WARN and above; nil discards it.
func Check(cfg *config.Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sec := &secrets{Tickets: newTickets()}
	var errs []error
	for _, key := range cfg.ServerNames {
		s := *cfg.Servers[key]
		// The access log is checked, not opened: opening creates the
		// file, maybe as another user than the one the proxy runs as,
		// who may also be the only one allowed to write there.
		if s.AccessLog != "" && s.AccessLog != "-" {
			if fi, err := os.Stat(filepath.Dir(s.AccessLog)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: access_log %s: %w", cfg.Source, s.Where(s.Line), s.AccessLog, err))
			} else if !fi.IsDir() {
				errs = append(errs, fmt.Errorf("%s: %s: access_log %s: %s is no directory", cfg.Source, s.Where(s.Line), s.AccessLog, filepath.Dir(s.AccessLog)))
			}
			s.AccessLog = ""
		}
		svc, err := buildService(&s, "check", sec, nil, log)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", cfg.Source, err))
			continue
		}
		proxy.CloseService(svc)
	}
	return errors.Join(errs...)
}
