package worker

import (
	"fmt"
	"log/slog"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/l4"
	"github.com/monolake-go/monolake/proxy/server"
)

// buildService makes the connection service for one configured server.
func buildService(s *config.Server, log *slog.Logger) (server.ConnService, error) {
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
		return nil, fmt.Errorf("server %q: proxy_type \"http\" is not available in this version yet; use proxy_type = \"tcp\"", s.Key)
	}
	return nil, fmt.Errorf("server %q: unknown proxy_type %q", s.Key, s.ProxyType)
}
