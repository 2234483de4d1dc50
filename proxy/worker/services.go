package worker

import (
	"fmt"
	"log/slog"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/httpproxy"
	"github.com/monolake-go/monolake/proxy/l4"
	"github.com/monolake-go/monolake/proxy/server"
)

// buildService makes the connection service for one configured server.
func buildService(s *config.Server, worker string, log *slog.Logger) (server.ConnService, error) {
	if s.TLS != nil {
		return nil, fmt.Errorf("server %q: TLS termination is not available in this version yet (tls = { stack = %q })", s.Key, s.TLS.Stack)
	}
	switch s.ProxyType {
	case config.ProxyTCP:
		p, err := l4.New(s, log)
		if err != nil {
			return nil, err
		}
		return p, nil
	case config.ProxyHTTP:
		h, err := httpproxy.New(s, httpproxy.Options{Log: log, Worker: worker})
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	return nil, fmt.Errorf("server %q: unknown proxy_type %q", s.Key, s.ProxyType)
}
