// Package tlsproxy terminates TLS in front of a connection service: the
// Layer that turns an accepted TCP connection into a TLS connection (with
// the backend the config names, crypto/tls or OpenSSL) before the HTTP or
// L4 service sees it.
//
// WatchServerConfig makes a server config that follows the certificate
// files (reload.go): a changed chain and key are loaded and used for new
// handshakes without a restart, connections already made are untouched,
// and a pair that does not load is logged and ignored.
package tlsproxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/server"
	"github.com/monolake-go/monolake/tlsbackend"
	// Both backends register themselves (OpenSSL only in cgo builds with
	// the openssl tag; a stub explains its absence otherwise).
	_ "github.com/monolake-go/monolake/tlsbackend/all"
)

// ConnService is the connection service TLS wraps.
type ConnService = proxy.Service[net.Conn, struct{}]

// DefaultHandshakeTimeout bounds a client's TLS handshake.
const DefaultHandshakeTimeout = 10 * time.Second

// ServerConfig makes the backend's server config for a configured server.
// alpn is the list to offer: the protocols the service behind speaks.
func ServerConfig(t *config.TLS, alpn []string) (tlsbackend.ServerConfig, error) {
	b, err := tlsbackend.Get(t.Stack)
	if err != nil {
		return nil, err
	}
	sc, err := b.NewServerConfig(&tlsbackend.Config{
		Certificates: []tlsbackend.Certificate{{CertFile: t.Chain, KeyFile: t.Key}},
		NextProtos:   alpn,
		// Resumption by tickets: each backend rotates its own ticket keys.
		SessionTicketsDisabled: !t.SessionTickets,
	})
	if err != nil {
		return nil, fmt.Errorf("tls (%s): %w", t.Stack, err)
	}
	return sc, nil
}

// Layer terminates TLS with sc and passes the TLS connection to the inner
// service. A failed handshake is logged at debug level (scanners and
// clients that hang up are common) and ends the connection.
func Layer(sc tlsbackend.ServerConfig, timeout time.Duration, log *slog.Logger) proxy.Middleware[net.Conn, struct{}] {
	if timeout == 0 {
		timeout = DefaultHandshakeTimeout
	}
	return func(inner ConnService) ConnService {
		return &service{sc: sc, inner: inner, timeout: timeout, log: log}
	}
}

type service struct {
	sc      tlsbackend.ServerConfig
	inner   ConnService
	timeout time.Duration
	log     *slog.Logger
}

func (s *service) Call(ctx context.Context, c net.Conn) (struct{}, error) {
	tc := s.sc.Server(c)
	hctx, cancel := context.WithTimeout(ctx, s.timeout)
	err := tc.Handshake(hctx)
	cancel()
	if err != nil {
		s.log.Debug("tls handshake failed", "client", c.RemoteAddr().String(), "err", err)
		tc.Close()
		return struct{}{}, nil
	}
	// Once the server knows tc stands for c it closes tc when the
	// connection is finished, also after the protocol detached it to wait
	// for the client without a goroutine (HTTP keep-alive).
	if !server.Wrap(ctx, c, tc) {
		defer tc.Close()
	}
	return s.inner.Call(ctx, tc)
}

// Close closes the inner service (pools) and the backend config.
func (s *service) Close() error {
	proxy.CloseService(s.inner)
	return s.sc.Close()
}
