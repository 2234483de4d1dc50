package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/tlsproxy"
	"github.com/monolake-go/monolake/tlsbackend"
	// HTTPS upstreams dial with either backend (OpenSSL only in cgo builds
	// with the openssl tag; a stub explains its absence otherwise).
	_ "github.com/monolake-go/monolake/tlsbackend/all"
)

// upstreamTLS is the client side of TLS to https upstreams: the backend's
// client config (roots, client certificate, session cache), shared by
// every connection to them of every route with the same upstream_tls
// settings (acquireUpstreamTLS), so that routes to one upstream ("/" and
// "/{*p}", say) share its idle connections and TLS sessions.
type upstreamTLS struct {
	cc tlsbackend.ClientConfig
	// network is the pool key's Network for these upstreams: unique per
	// settings, so TLS and plain connections to one address, or TLS ones
	// with different settings, never share an idle list.
	network string
	key     config.UpstreamTLS
	refs    int // guarded by sharedTLS.mu
}

// sharedTLS holds the upstreamTLS of each upstream_tls settings in use.
var sharedTLS struct {
	mu sync.Mutex
	m  map[config.UpstreamTLS]*upstreamTLS
}

// acquireUpstreamTLS returns the upstreamTLS of t's settings, made on
// first use (its files read then, and followed, changes logged to log);
// release gives it back.
func acquireUpstreamTLS(t *config.UpstreamTLS, log *slog.Logger) (*upstreamTLS, error) {
	sharedTLS.mu.Lock()
	defer sharedTLS.mu.Unlock()
	if u := sharedTLS.m[*t]; u != nil {
		u.refs++
		return u, nil
	}
	u, err := newUpstreamTLS(t, log)
	if err != nil {
		return nil, err
	}
	u.key, u.refs = *t, 1
	if sharedTLS.m == nil {
		sharedTLS.m = make(map[config.UpstreamTLS]*upstreamTLS)
	}
	sharedTLS.m[*t] = u
	return u, nil
}

// release drops a reference taken by acquireUpstreamTLS; the last one
// closes the client config (and stops following its files).
func (u *upstreamTLS) release() error {
	sharedTLS.mu.Lock()
	defer sharedTLS.mu.Unlock()
	if u.refs <= 0 {
		return nil // released already
	}
	if u.refs--; u.refs > 0 {
		return nil
	}
	if sharedTLS.m[u.key] == u {
		delete(sharedTLS.m, u.key)
	}
	return u.cc.Close()
}

// tlsNetworkPrefix marks a pool key whose connections are TLS; the dialer
// dials "tcp" and runs the handshake with the target found in the context.
const tlsNetworkPrefix = "tcp+tls#"

var upstreamTLSSeq atomic.Uint64

// alpnHTTP11 is the ALPN list sent upstream: the only protocol the
// upstream side speaks.
var alpnHTTP11 = []string{"http/1.1"}

func newUpstreamTLS(t *config.UpstreamTLS, log *slog.Logger) (*upstreamTLS, error) {
	b, err := tlsbackend.Get(t.Stack)
	if err != nil {
		return nil, err
	}
	cfg := &tlsbackend.Config{
		NextProtos:         alpnHTTP11,
		RootCAFile:         t.CA,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.Cert != "" {
		cfg.Certificates = []tlsbackend.Certificate{{CertFile: t.Cert, KeyFile: t.Key}}
	}
	var cc tlsbackend.ClientConfig
	if t.Cert != "" || t.CA != "" {
		// Renewed client certificates and CA bundles are followed, as a
		// server's certificate is.
		cc, err = tlsproxy.WatchClientConfig(b, cfg, 0, log)
	} else {
		cc, err = b.NewClientConfig(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream tls (%s): %w", t.Stack, err)
	}
	return &upstreamTLS{cc: cc, network: tlsNetworkPrefix + strconv.FormatUint(upstreamTLSSeq.Add(1), 10)}, nil
}

// dialTargetKey carries the *target being dialled to the pool's dial
// function, for TLS targets only: the pool passes network and address, and
// the handshake needs the target's client config and server name.
type dialTargetKey struct{}

// withDialTarget returns ctx carrying t when t is a TLS target.
func withDialTarget(ctx context.Context, t *target) context.Context {
	if t.tls == nil {
		return ctx
	}
	return context.WithValue(ctx, dialTargetKey{}, t)
}

var errNoTLSTarget = errors.New("httpproxy: TLS upstream dialled without its target")

// tlsDial is the part of dialling an https upstream after the TCP connect:
// the handshake, bounded by ctx (the pool's connect timeout). On failure c
// is closed.
func tlsDial(ctx context.Context, c net.Conn, addr string) (net.Conn, error) {
	t, _ := ctx.Value(dialTargetKey{}).(*target)
	if t == nil || t.tls == nil {
		c.Close()
		return nil, errNoTLSTarget
	}
	tc := t.tls.cc.Client(c, t.serverName)
	if err := tc.Handshake(ctx); err != nil {
		tc.Close()
		return nil, fmt.Errorf("tls handshake with %s (%s): %w", addr, t.serverName, err)
	}
	return tc, nil
}

// isTLSNetwork says whether a pool key's network is an https upstream's.
func isTLSNetwork(network string) bool { return strings.HasPrefix(network, tlsNetworkPrefix) }
