// Package gotls is the crypto/tls backend of tlsbackend, registered as
// "gotls". It is always built.
package gotls

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"sync"

	"github.com/monolake-go/monolake/tlsbackend"
)

// Name is the registry name.
const Name = "gotls"

func init() { tlsbackend.Register(Name, Backend{}) }

// Backend is the crypto/tls backend.
type Backend struct{}

var _ tlsbackend.Backend = Backend{}

func (Backend) Name() string    { return Name }
func (Backend) Version() string { return "crypto/tls, " + runtime.Version() }

func baseConfig(l *tlsbackend.Loaded, c *tlsbackend.Config) *tls.Config {
	return &tls.Config{
		MinVersion:             l.MinVersion,
		MaxVersion:             l.MaxVersion,
		CipherSuites:           l.CipherSuites,
		NextProtos:             append([]string(nil), c.NextProtos...),
		SessionTicketsDisabled: c.SessionTicketsDisabled,
	}
}

// NewServerConfig builds a *tls.Config whose GetCertificate follows the
// SNI rule of tlsbackend.Config.
func (Backend) NewServerConfig(c *tlsbackend.Config) (tlsbackend.ServerConfig, error) {
	l, err := c.Load(true)
	if err != nil {
		return nil, err
	}
	tc := baseConfig(l, c)
	certs := make([]*tls.Certificate, len(l.Certs))
	for i := range l.Certs {
		certs[i] = &l.Certs[i].TLSCrt
	}
	tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return certs[l.SelectCertificate(hello.ServerName)], nil
	}
	switch c.ClientAuth {
	case tlsbackend.VerifyClientCertIfGiven:
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case tlsbackend.RequireAndVerifyClientCert:
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	tc.ClientCAs = l.ClientCAs
	s := &serverConfig{tc: tc}
	if c.SessionTickets != nil && !c.SessionTicketsDisabled {
		s.cancel = c.SessionTickets.Subscribe(func(keys []tlsbackend.TicketKey) {
			ks := make([][32]byte, len(keys))
			for i, k := range keys {
				ks[i] = k
			}
			tc.SetSessionTicketKeys(ks)
		})
	}
	return s, nil
}

type serverConfig struct {
	tc     *tls.Config
	once   sync.Once
	cancel func()
}

func (s *serverConfig) Server(c net.Conn) tlsbackend.Conn { return &conn{tls.Server(c, s.tc)} }

func (s *serverConfig) Close() error {
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
	})
	return nil
}

// NewClientConfig builds a client *tls.Config with an LRU session cache.
func (Backend) NewClientConfig(c *tlsbackend.Config) (tlsbackend.ClientConfig, error) {
	l, err := c.Load(false)
	if err != nil {
		return nil, err
	}
	tc := baseConfig(l, c)
	tc.ServerName = c.ServerName
	tc.RootCAs = l.Roots
	tc.InsecureSkipVerify = c.InsecureSkipVerify
	if len(l.Certs) > 0 {
		tc.Certificates = []tls.Certificate{l.Certs[0].TLSCrt}
	}
	if !c.SessionTicketsDisabled {
		n := c.ClientSessionCacheSize
		if n <= 0 {
			n = 64
		}
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(n)
	}
	return &clientConfig{tc: tc}, nil
}

type clientConfig struct {
	tc     *tls.Config
	byName sync.Map // server name → *tls.Config, for per-conn overrides
}

func (cc *clientConfig) Client(c net.Conn, serverName string) tlsbackend.Conn {
	tc := cc.tc
	if serverName != "" && serverName != tc.ServerName {
		if v, ok := cc.byName.Load(serverName); ok {
			tc = v.(*tls.Config)
		} else {
			tc = tc.Clone() // shares the session cache
			tc.ServerName = serverName
			v, _ := cc.byName.LoadOrStore(serverName, tc)
			tc = v.(*tls.Config)
		}
	}
	return &conn{tls.Client(c, tc)}
}

func (cc *clientConfig) Close() error { return nil }

// conn adapts *tls.Conn to tlsbackend.Conn.
type conn struct{ *tls.Conn }

var _ tlsbackend.Conn = (*conn)(nil)

func (c *conn) Handshake(ctx context.Context) error {
	err := c.Conn.HandshakeContext(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return errors.Join(err, ctx.Err())
	}
	return err
}

func (c *conn) ConnectionState() tlsbackend.ConnectionState {
	s := c.Conn.ConnectionState()
	return tlsbackend.ConnectionState{
		HandshakeComplete:  s.HandshakeComplete,
		Version:            s.Version,
		CipherSuite:        s.CipherSuite,
		NegotiatedProtocol: s.NegotiatedProtocol,
		ServerName:         s.ServerName,
		DidResume:          s.DidResume,
		PeerCertificates:   s.PeerCertificates,
	}
}
