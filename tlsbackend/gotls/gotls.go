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
	"sync/atomic"

	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/internal/rawsock"
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

func (s *serverConfig) Server(c net.Conn) tlsbackend.Conn {
	k := &gather{Conn: c, raw: rawsock.New(c)}
	return &conn{Conn: tls.Server(k, s.tc), g: k}
}

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
	k := &gather{Conn: c, raw: rawsock.New(c)}
	return &conn{Conn: tls.Client(k, tc), g: k}
}

func (cc *clientConfig) Close() error { return nil }

// conn adapts *tls.Conn to tlsbackend.Conn. Under the *tls.Conn, g gathers
// the records of one Write into one write to the connection.
type conn struct {
	*tls.Conn
	g *gather
	// gathering counts the Writes whose records are gathered (see Close).
	gathering atomic.Int32
	// sent counts the bytes Written, up to boostAfter.
	sent atomic.Int64
}

// NetConn is the connection under TLS (not the gatherer).
func (c *conn) NetConn() net.Conn { return c.g.Conn }

// Write encrypts p and sends its records together: crypto/tls writes each
// record (up to 16 KiB, and smaller ones early in a connection) to the
// connection on its own, one send and one TCP segment each.
//
// The handshake, when a Write runs it, goes out before: what it sends must
// not wait for the Write's records. A Write whose gathered records could
// not all be sent returns 0 written, as the bytes that left cannot be told.
func (c *conn) Write(p []byte) (int, error) {
	small := c.sent.Load() < boostAfter
	if small {
		c.sent.Add(int64(len(p)))
	}
	// One record (16 KiB at most, and smaller while small) needs no
	// gathering.
	if len(p) <= gatherMin || len(p) > gatherMax || !small && len(p) <= maxRecord {
		return c.Conn.Write(p)
	}
	if err := c.Conn.Handshake(); err != nil {
		return 0, err
	}
	c.gathering.Add(1)
	defer c.gathering.Add(-1)
	c.g.hold()
	n, err := c.Conn.Write(p)
	if ferr := c.g.release(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}

// Close closes the conn under TLS at once, without close_notify, when a
// Write is gathering, as *tls.Conn does during its own Writes: a Close
// used to break a Write stuck on a peer that does not read must not wait
// behind it (a gathered Write sends after *tls.Conn's Write returned, so
// *tls.Conn cannot tell).
func (c *conn) Close() error {
	if c.gathering.Load() > 0 {
		err := c.g.Conn.Close()
		c.Conn.Close() // marks it closed; its close_notify fails at once
		return err
	}
	return c.Conn.Close()
}

// Writes from gatherMin to gatherMax bytes have their records gathered.
// Under gatherMin a Write is one record (crypto/tls makes its first records
// about one TCP segment, 1.2 kB, long); over gatherMax the records are
// large enough to go one by one, and the gathering buffer stays bounded.
const (
	gatherMin = 1 << 10
	gatherMax = 64 << 10
	// maxRecord is a TLS record's most plaintext; crypto/tls makes its
	// records that long once a conn has sent boostAfter bytes (more
	// than the plaintext Written: the handshake counts too).
	maxRecord  = 16 << 10
	boostAfter = 128 << 10
)

// gather is the connection under a *tls.Conn. While held, it keeps what
// the *tls.Conn writes and sends it in one write on release. Its buffer
// comes from a pool for each hold, so an idle connection keeps none.
type gather struct {
	net.Conn
	raw *rawsock.Socket // Conn's raw I/O, for a *net.TCPConn (else nil)

	mu    sync.Mutex
	holds int
	buf   *[]byte
	// err is the error of a release's write. The *tls.Conn took the
	// records it gathered as sent, so the stream may be cut in a record:
	// every later write fails with it, as *tls.Conn does after a write
	// timeout.
	err error
}

var gatherBufs = sync.Pool{New: func() any { b := make([]byte, 0, 20<<10); return &b }}

func (g *gather) hold() {
	g.mu.Lock()
	g.holds++
	g.mu.Unlock()
}

// release ends a hold; the last one sends what was gathered and returns
// the error of that write.
func (g *gather) release() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.holds--; g.holds > 0 || g.buf == nil {
		return nil
	}
	b := g.buf
	g.buf = nil
	if g.err == nil {
		_, g.err = g.write(*b)
	}
	if cap(*b) <= gatherMax+gatherMax/8 {
		*b = (*b)[:0]
		gatherBufs.Put(b)
	}
	return g.err
}

// Read reads from the conn, through raw when it has one.
func (g *gather) Read(p []byte) (int, error) {
	if g.raw != nil {
		return g.raw.Read(p)
	}
	return g.Conn.Read(p)
}

func (g *gather) write(p []byte) (int, error) {
	if g.raw != nil {
		return g.raw.Write(p)
	}
	return g.Conn.Write(p)
}

func (g *gather) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	if g.holds == 0 {
		return g.write(p)
	}
	if g.buf == nil {
		g.buf = gatherBufs.Get().(*[]byte)
	}
	*g.buf = append(*g.buf, p...)
	return len(p), nil
}

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
