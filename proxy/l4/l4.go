// Package l4 is the layer-4 proxy (proxy_type = "tcp") on Go's netpoller:
// each client connection is relayed byte for byte to one upstream chosen by
// the server's load balancer, both ways, until both sides are done.
//
// A Proxy is the proxy.Service for one tcp server; proxy/server runs it on
// every accepted connection. The relay:
//
//   - passes half-closes through: a FIN from one side becomes a CloseWrite
//     on the other, and the other direction goes on until it ends too;
//   - moves bytes with splice(2) when both sides are sockets and one is
//     TCP (the Go runtime's (*net.TCPConn).ReadFrom and WriteTo), and
//     through a pooled 32 KiB buffer otherwise;
//   - with sni_routes (TLS passthrough), first reads the client's
//     ClientHello (package sni), picks the upstream set by its SNI name
//     (the default route for anything else), dials it and replays the
//     bytes read, so the handshake runs between client and upstream and
//     the proxy never holds a key; sni.go;
//   - closes both sides once no byte moved either way for the idle timeout
//     (timeout.server_keepalive_timeout_sec, default 10 minutes). Because a
//     splice reports its progress only when it returns, the close comes
//     between one and about two idle timeouts after the last byte; relay.go
//     explains how progress is collected without giving up splice.
//
// With access_log set, each connection ends with a line (accesslog.go).
package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/accesslog"
	"github.com/monolake-go/monolake/proxy/balance"
	"github.com/monolake-go/monolake/proxy/config"
)

// Defaults for the server's timeouts that the config leaves at zero.
const (
	// DefaultConnectTimeout bounds dialing an upstream
	// (timeout.upstream_connect_timeout_sec).
	DefaultConnectTimeout = 5 * time.Second
	// DefaultIdleTimeout closes a relay that moved no byte either way for
	// this long (timeout.server_keepalive_timeout_sec).
	DefaultIdleTimeout = 10 * time.Minute
)

// ErrClosed is returned by Call on a Proxy that was closed.
var ErrClosed = errors.New("l4: proxy closed")

// Proxy relays client connections to the upstreams of one tcp server. It is
// safe for concurrent use; it holds no pooled state, so Close only stops new
// relays.
type Proxy struct {
	name           string
	log            *slog.Logger
	def            *route    // the route; nil with sni routes and no default
	sni            *sniTable // nil without sni_routes
	connectTimeout time.Duration
	idleTimeout    time.Duration
	helloTimeout   time.Duration
	closed         atomic.Bool
	alog           *accesslog.Writer // nil: no access log
	// dial connects to upstreams; nil means net.Dialer (the epoll runtime).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// SetDial makes the proxy connect to upstreams with dial (the worker's I/O
// driver, e.g. io_uring) instead of net.Dialer. Call it before serving.
// dial must honour ctx's deadline; the connect timeout is applied to it.
func (p *Proxy) SetDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	p.dial = dial
}

var (
	_ proxy.Service[net.Conn, struct{}] = (*Proxy)(nil)
	_ proxy.Closer                      = (*Proxy)(nil)
)

// New builds the Proxy for a tcp server from s.Route (load balancer and
// upstreams, which must be "socket" or "unix" endpoints), s.SNIRoutes (TLS
// passthrough by SNI name, with s.Route, which may then be nil, as the
// default) and s.Timeout (UpstreamConnect, ServerKeepalive as the idle
// timeout, ServerReadHeader as the ClientHello timeout; zero means
// DefaultConnectTimeout, DefaultIdleTimeout and DefaultHelloTimeout). With
// s.AccessLog it opens the access log (closed by Close). log receives one
// line per failed upstream connect or unroutable connection; nil discards.
func New(s *config.Server, log *slog.Logger) (*Proxy, error) {
	if s == nil {
		return nil, errors.New("l4: nil server config")
	}
	if s.ProxyType != "" && s.ProxyType != config.ProxyTCP {
		return nil, fmt.Errorf("l4: server %q has proxy_type %q, want %q", s.Name, s.ProxyType, config.ProxyTCP)
	}
	if (s.Route == nil || len(s.Route.Upstreams) == 0) && len(s.SNIRoutes) == 0 {
		return nil, fmt.Errorf("l4: server %q has no upstreams", s.Name)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		name:           s.Name,
		log:            log,
		connectTimeout: s.Timeout.UpstreamConnect,
		idleTimeout:    s.Timeout.ServerKeepalive,
		helloTimeout:   s.Timeout.ServerReadHeader,
	}
	if s.Route != nil {
		var err error
		if p.def, err = newRoute(s.Name, "default", s.Route); err != nil {
			return nil, err
		}
	}
	if len(s.SNIRoutes) > 0 {
		var err error
		if p.sni, err = newSNITable(s.Name, s.SNIRoutes); err != nil {
			return nil, err
		}
	}
	if p.connectTimeout <= 0 {
		p.connectTimeout = DefaultConnectTimeout
	}
	if p.idleTimeout <= 0 {
		p.idleTimeout = DefaultIdleTimeout
	}
	if p.helloTimeout <= 0 {
		p.helloTimeout = DefaultHelloTimeout
	}
	if s.AccessLog != "" {
		var err error
		if p.alog, err = accesslog.Open(s.AccessLog); err != nil {
			return nil, fmt.Errorf("l4: %s: %w", s.Where(s.Line), err)
		}
	}
	return p, nil
}

// Call relays client to an upstream until both directions end, the relay
// is idle for the idle timeout, or ctx is done; then it closes both
// connections. It always closes client.
//
// When the upstream cannot be reached (refused, connect timeout), Call
// logs one line, closes client (a FIN: the client reads EOF; or, when the
// client had sent bytes nobody read, a reset, as the kernel does on such a
// close and as nginx's stream module gives) and returns the dial error.
// When the balancer has more than one upstream, a failed connect is
// retried on the next upstream not tried yet, until one connects or every
// one failed (as nginx's proxy_next_upstream); the log line then names the
// attempts.
//
// An idle timeout or ctx ending is a normal end: Call returns nil or
// ctx.Err(). An I/O error on either side aborts both and is returned.
func (p *Proxy) Call(ctx context.Context, client net.Conn) (struct{}, error) {
	defer client.Close()
	e := entry{start: time.Now(), status: statusOK}
	if p.alog != nil {
		// The address now: the io_uring driver asks the kernel for it on
		// first use, which fails once the peer has gone.
		raddr := client.RemoteAddr()
		defer func() { p.alog.Log(e.line(raddr)) }()
	}
	if p.closed.Load() {
		e.status = statusStopping
		return struct{}{}, ErrClosed
	}
	rt, hello := p.def, []byte(nil)
	if p.sni != nil {
		var err error
		if hello, rt, _, err = p.routeHello(ctx, client); err != nil {
			if errors.Is(err, errEmpty) {
				return struct{}{}, nil
			}
			e.received = int64(len(hello)) // read, though routed nowhere
			e.status = statusBadHello
			if ctx.Err() != nil {
				e.status = statusStopping
			}
			return struct{}{}, err
		}
	}
	// The ClientHello read to route counts as received, whether or not an
	// upstream takes it (as nginx's $bytes_received).
	e.received = int64(len(hello))
	up, done, err := p.connect(ctx, client, rt)
	if err != nil {
		e.status = statusNoUpstream
		if ctx.Err() != nil {
			e.status = statusStopping
		}
		return struct{}{}, err
	}
	defer done()
	defer up.Close()
	e.upstream = addrString(up.RemoteAddr())
	if len(hello) > 0 {
		// The bytes taken to find the route go first: a fresh socket's
		// send buffer holds them, the deadline only guards a stuck peer.
		up.SetWriteDeadline(time.Now().Add(p.connectTimeout))
		if _, err := up.Write(hello); err != nil {
			e.status = statusNoUpstream
			return struct{}{}, fmt.Errorf("l4: replaying the ClientHello upstream: %w", err)
		}
		up.SetWriteDeadline(time.Time{})
	}
	moved, err := relay(ctx, client, up, p.idleTimeout)
	e.received += moved[0]
	e.sent = moved[1]
	if err != nil {
		return struct{}{}, fmt.Errorf("l4: relaying %s: %w", addrString(client.RemoteAddr()), err)
	}
	return struct{}{}, ctx.Err()
}

// connect dials an upstream of rt picked by its balancer; done releases
// the pick.
func (p *Proxy) connect(ctx context.Context, client net.Conn, rt *route) (net.Conn, func(), error) {
	bal := rt.bal
	d := net.Dialer{Timeout: p.connectTimeout}
	var tried []string
	var errs []error
	var failed []*upstream
	// Every upstream of the route not marked down is tried once until one
	// connects, as nginx's proxy_next_upstream does. When all are down,
	// the balancer's pick is tried, and no other after it.
	for range bal.Len() {
		var up *upstream
		var done func()
		var ok bool
		if failed == nil {
			up, done = balance.PickAvoiding(bal, (*upstream).down)
		} else if up, done, ok = balance.PickExceptFunc(bal, failed, (*upstream).down); !ok {
			break
		}
		ep := up.ep
		var c net.Conn
		var err error
		if p.dial != nil {
			dctx, cancel := context.WithTimeout(ctx, p.connectTimeout)
			c, err = p.dial(dctx, ep.Network(), ep.Address())
			cancel()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("connect timeout after %v: %w", p.connectTimeout, err)
			}
		} else {
			c, err = d.DialContext(ctx, ep.Network(), ep.Address())
		}
		if err == nil {
			rt.health.Succeeded(&up.health)
			if len(errs) > 0 {
				p.log.Warn("l4: upstream unreachable; used another",
					"server", p.name, "client", addrString(client.RemoteAddr()),
					"upstream", strings.Join(tried, ", "), "error", errors.Join(errs...), "used", ep.String())
			}
			return c, done, nil
		}
		done()
		if ctx.Err() != nil {
			// The server is closing this connection; not the upstream's fault.
			return nil, nil, ctx.Err()
		}
		if rt.health.Failed(&up.health) {
			p.log.Warn("l4: upstream marked down", "server", p.name, "upstream", ep.String(),
				"for", rt.health.FailTimeout, "failures", rt.health.MaxFails, "error", err)
		}
		tried = append(tried, ep.String())
		errs = append(errs, err)
		failed = append(failed, up)
	}
	err := errors.Join(errs...)
	p.log.Warn("l4: upstream unreachable; closing client",
		"server", p.name, "client", addrString(client.RemoteAddr()),
		"upstream", strings.Join(tried, ", "), "error", err)
	return nil, nil, fmt.Errorf("l4: dialing upstream %s: %w", strings.Join(tried, ", "), err)
}

// Close makes later Calls refuse their connection (closing it) with
// ErrClosed; relays in flight go on until they end. It closes the access
// log, so the lines of relays that end later are dropped (and counted in
// a warning here): close it once the server has drained.
func (p *Proxy) Close() error {
	p.closed.Store(true)
	if p.alog == nil {
		return nil
	}
	return p.alog.CloseWarning(p.log, "l4: access log lines dropped (the writer lagged, the disk failed, or connections outlived the server)", "server", p.name)
}

// addrString is a.String(), or "-" for a missing address (an unnamed unix
// socket peer may have none).
func addrString(a net.Addr) string {
	if a == nil {
		return "-"
	}
	return a.String()
}
