package l4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/monolake-go/monolake/proxy/balance"
	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/server"
	"github.com/monolake-go/monolake/proxy/sni"
)

// DefaultHelloTimeout bounds the wait for a client's ClientHello on a
// server with sni_routes (timeout.server_read_header_timeout_sec).
const DefaultHelloTimeout = 10 * time.Second

// route is one upstream set: a server's route or one of its sni_routes.
type route struct {
	name   string // for logs: "default" or the first server name
	bal    balance.Balancer[*upstream]
	health balance.HealthPolicy
}

// upstream is an endpoint of a route, with its passive health.
type upstream struct {
	ep     config.Endpoint
	health balance.Health
}

func (u *upstream) down() bool { return u.health.Down() }

func newRoute(server, name string, r *config.L4Route) (*route, error) {
	ups := make([]*upstream, len(r.Upstreams))
	weights := make([]int, len(r.Upstreams))
	for i, u := range r.Upstreams {
		switch u.Endpoint.Type {
		case config.TypeSocket, config.TypeUnix:
		default:
			return nil, fmt.Errorf("l4: server %q: upstream %d: endpoint type %q, want %q or %q",
				server, i, u.Endpoint.Type, config.TypeSocket, config.TypeUnix)
		}
		ups[i], weights[i] = &upstream{ep: u.Endpoint}, u.Weight
	}
	policy := r.LoadBalancer
	if policy == "" {
		policy = config.LBRandom // the config's default
	}
	bal, err := balance.New(policy, ups, weights)
	if err != nil {
		return nil, fmt.Errorf("l4: server %q: %w", server, err)
	}
	return &route{name: name, bal: bal, health: balance.NewHealthPolicy(r.Health.MaxFails, r.Health.FailTimeout, bal.Len())}, nil
}

// sniTable maps SNI names to routes: exact names first, then "*.suffix"
// patterns, the longest suffix winning (a.b.example tries *.b.example
// before *.example).
type sniTable struct {
	exact    map[string]*route
	wildcard map[string]*route // by the suffix with its leading dot: ".b.example"
}

func newSNITable(server string, rs []config.SNIRoute) (*sniTable, error) {
	t := &sniTable{exact: map[string]*route{}, wildcard: map[string]*route{}}
	for i := range rs {
		r := &rs[i]
		if len(r.ServerNames) == 0 {
			return nil, fmt.Errorf("l4: server %q: sni route %d has no server names", server, i)
		}
		rt, err := newRoute(server, r.ServerNames[0], &r.L4Route)
		if err != nil {
			return nil, err
		}
		for _, n := range r.ServerNames {
			n = strings.ToLower(n)
			m, key := t.exact, n
			if strings.HasPrefix(n, "*.") {
				m, key = t.wildcard, n[1:]
			}
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("l4: server %q: server name %q routed twice", server, n)
			}
			m[key] = rt
		}
	}
	return t, nil
}

// match returns the route for a lower-case name, or nil.
func (t *sniTable) match(name string) *route {
	if name == "" {
		return nil
	}
	if r := t.exact[name]; r != nil {
		return r
	}
	for i := strings.IndexByte(name, '.'); i >= 0; {
		if r := t.wildcard[name[i:]]; r != nil {
			return r
		}
		j := strings.IndexByte(name[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return nil
}

// errEmpty ends a connection the client closed before sending anything.
var errEmpty = errors.New("l4: client closed before sending")

// errNoRoute ends a connection that no sni route matched on a server
// without a default route.
var errNoRoute = errors.New("l4: no sni route matches and there is no default route")

// routeHello reads the client's ClientHello (bounded in size and by the
// hello timeout) and picks the route for its SNI name. It returns the
// bytes read, to replay upstream, and the route: the SNI route for the
// name, else the default route (not TLS, no SNI, a malformed or cut-short
// hello, a timeout), else nil with the reason.
func (p *Proxy) routeHello(ctx context.Context, client net.Conn) ([]byte, *route, string, error) {
	client.SetReadDeadline(time.Now().Add(p.helloTimeout))
	stop := server.AfterFunc(ctx, func() { client.SetReadDeadline(aLongTimeAgo) })
	raw, ch, err := sni.Read(client, sni.DefaultMaxSize)
	stop()
	client.SetReadDeadline(time.Time{})
	if ctx.Err() != nil {
		return nil, nil, "", ctx.Err()
	}
	if len(raw) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		// Closed or reset without a byte (a TCP health check): no route
		// wants it.
		return nil, nil, "", errEmpty
	}
	name := ""
	if err == nil {
		name = ch.ServerName
		if r := p.sni.match(name); r != nil {
			return raw, r, name, nil
		}
		err = fmt.Errorf("no sni route for %q", name)
		if name == "" {
			err = errors.New("no server name in the ClientHello")
		}
	}
	if p.def != nil {
		p.log.Debug("l4: default route", "server", p.name, "client", addrString(client.RemoteAddr()), "reason", err)
		return raw, p.def, name, nil
	}
	p.log.Warn("l4: no route for the connection; closing it",
		"server", p.name, "client", addrString(client.RemoteAddr()), "reason", err)
	return raw, nil, name, fmt.Errorf("%w: %v", errNoRoute, err)
}
