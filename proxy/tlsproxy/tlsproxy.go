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

// Session-ticket keys of a server (TicketKeys): a new key issues tickets
// every TicketPeriod, and a ticket is accepted for TicketPeriodsKept more
// periods, so for two to three hours. OpenSSL's default session lifetime
// is two hours; crypto/tls would accept a ticket for seven days.
const (
	TicketPeriod      = time.Hour
	TicketPeriodsKept = 2
)

// TicketKeys returns the session-ticket keys of the server named key in
// every process given copies of the same ratchet
// (tlsbackend.NewRatchetTicketKeyRotator): a client resumes on whichever
// worker its connection reaches, and on no other server (a session made
// where client certificates were not asked for must not resume where they
// are). WatchServerConfig keeps it following the clock (Follow) while its
// Reloader is open.
func TicketKeys(r *tlsbackend.TicketRatchet, key string) *tlsbackend.TicketKeyRotator {
	return tlsbackend.NewRatchetTicketKeyRotator(r, "server "+key)
}

// NewTicketRatchet returns the ratchet TicketKeys wants: TicketPeriod,
// TicketPeriodsKept.
func NewTicketRatchet() *tlsbackend.TicketRatchet {
	return tlsbackend.NewTicketRatchet(TicketPeriod, TicketPeriodsKept)
}

// ServerConfig makes the backend's server config for a configured server.
// alpn is the list to offer: the protocols the service behind speaks.
// tickets supplies the session-ticket keys; nil leaves them to the backend
// (crypto/tls rotates its own daily, OpenSSL keeps one random key per
// config), which is right for one process only.
func ServerConfig(t *config.TLS, alpn []string, tickets *tlsbackend.TicketKeyRotator) (tlsbackend.ServerConfig, error) {
	return serverConfig(t, tlsbackend.Certificate{CertFile: t.Chain, KeyFile: t.Key}, alpn, tickets)
}

// serverConfig is ServerConfig with the certificate given.
func serverConfig(t *config.TLS, cert tlsbackend.Certificate, alpn []string, tickets *tlsbackend.TicketKeyRotator) (tlsbackend.ServerConfig, error) {
	b, err := tlsbackend.Get(t.Stack)
	if err != nil {
		return nil, err
	}
	sc, err := b.NewServerConfig(&tlsbackend.Config{
		Certificates:           []tlsbackend.Certificate{cert},
		NextProtos:             alpn,
		SessionTickets:         tickets,
		SessionTicketsDisabled: !t.SessionTickets,
	})
	if err != nil {
		return nil, fmt.Errorf("tls (%s): %w", t.Stack, err)
	}
	return sc, nil
}

// Layer terminates TLS with sc and passes the TLS connection to the inner
// service. A failed handshake is logged at debug level (scanners and
// clients that hang up are common) and ends the connection; a nil log
// discards.
func Layer(sc tlsbackend.ServerConfig, timeout time.Duration, log *slog.Logger) proxy.Middleware[net.Conn, struct{}] {
	if timeout == 0 {
		timeout = DefaultHandshakeTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
	var client string
	if s.log.Enabled(ctx, slog.LevelDebug) {
		// Before the handshake: one that times out closes c, whose
		// address is then no longer known.
		client = c.RemoteAddr().String()
	}
	hctx, cancel := context.WithTimeout(ctx, s.timeout)
	err := tc.Handshake(hctx)
	cancel()
	if err != nil {
		s.log.Debug("tls handshake failed", "client", client, "err", err)
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
