//go:build openssl && cgo

package openssl

import (
	"errors"
	"net"
	"runtime"
	"sync"

	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/internal/rawsock"
)

// Backend is the OpenSSL backend.
type Backend struct{}

var _ tlsbackend.Backend = Backend{}

func (Backend) Name() string    { return Name }
func (Backend) Version() string { return Version() }

// NewServerConfig builds one SSL_CTX per certificate (the SNI callback
// switches between them) with the ALPN select callback and, when
// c.SessionTickets is set, a ticket-key callback fed from the rotator.
func (Backend) NewServerConfig(c *tlsbackend.Config) (tlsbackend.ServerConfig, error) {
	l, err := c.Load(true)
	if err != nil {
		return nil, err
	}
	ref, err := newCtx(l, c, true)
	if err != nil {
		return nil, err
	}
	if c.SessionTickets != nil && !c.SessionTicketsDisabled {
		ref.cancel = c.SessionTickets.Subscribe(ref.setTicketKeys)
	}
	s := &serverConfig{ref: ref}
	runtime.AddCleanup(s, (*ctxRef).free, ref)
	return s, nil
}

type serverConfig struct{ ref *ctxRef }

var _ tlsbackend.ServerConfig = (*serverConfig)(nil)

func (s *serverConfig) Server(nc net.Conn) tlsbackend.Conn {
	c := &conn{nc: nc, cfg: s, sock: rawsock.New(nc)}
	h, err := s.ref.newHandle("", false, nil)
	runtime.KeepAlive(s)
	c.init(h, err)
	return c
}

// Close stops following the ticket-key rotator. The C contexts are freed
// once the config and every conn made from it are unreachable.
func (s *serverConfig) Close() error {
	s.ref.unsubscribe()
	return nil
}

// NewClientConfig builds the client SSL_CTX (roots, client certificate,
// ALPN list) and a session cache keyed by server name.
func (Backend) NewClientConfig(c *tlsbackend.Config) (tlsbackend.ClientConfig, error) {
	l, err := c.Load(false)
	if err != nil {
		return nil, err
	}
	ref, err := newCtx(l, c, false)
	if err != nil {
		return nil, err
	}
	cc := &clientConfig{ref: ref, serverName: c.ServerName, verify: !c.InsecureSkipVerify}
	if !c.SessionTicketsDisabled {
		n := c.ClientSessionCacheSize
		if n <= 0 {
			n = 64
		}
		cc.cache = &sessionCache{max: n, m: map[string][]byte{}}
	}
	runtime.AddCleanup(cc, (*ctxRef).free, ref)
	return cc, nil
}

type clientConfig struct {
	ref        *ctxRef
	serverName string
	verify     bool
	cache      *sessionCache // nil when resumption is off
}

var _ tlsbackend.ClientConfig = (*clientConfig)(nil)

var errNoServerName = errors.New("openssl: either ServerName or InsecureSkipVerify must be set")

func (cc *clientConfig) Client(nc net.Conn, serverName string) tlsbackend.Conn {
	if serverName == "" {
		serverName = cc.serverName
	}
	c := &conn{nc: nc, cfg: cc, client: cc, sessKey: serverName, sock: rawsock.New(nc)}
	if c.sessKey == "" {
		c.sessKey = nc.RemoteAddr().String()
	}
	if serverName == "" && cc.verify {
		c.init(nil, errNoServerName)
		return c
	}
	var sess []byte
	if cc.cache != nil {
		sess = cc.cache.get(c.sessKey)
	}
	name, ip := serverName, false
	if bare, ok := ipLiteral(serverName); ok {
		name, ip = bare, true
	}
	h, err := cc.ref.newHandle(name, ip, sess)
	runtime.KeepAlive(cc)
	c.init(h, err)
	return c
}

func (cc *clientConfig) Close() error { return nil }

// sessionCache keeps the latest session per server name, serialized; when
// full it drops an arbitrary entry.
type sessionCache struct {
	mu  sync.Mutex
	m   map[string][]byte
	max int
}

func (s *sessionCache) get(k string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

func (s *sessionCache) put(k string, v []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= s.max {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[k] = v
}
