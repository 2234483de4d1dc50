package httpproxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/monolake-go/monolake/proxy/balance"
	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/http1"
	"github.com/monolake-go/monolake/proxy/route"
	"github.com/monolake-go/monolake/proxy/upstream"
)

// Route is one configured route with its balancer.
type Route struct {
	Config *config.Route
	bal    balance.Balancer[*target]
	// rewrite is RewritePath, nil to keep the path: literal parts and
	// the route parameters put between them.
	rewrite []rewritePart
	// tls dials the route's https upstreams; nil when it has none.
	tls *upstreamTLS
	// health takes failing upstreams out of bal's choice for a while.
	health balance.HealthPolicy
}

// NewRoute makes a Route from its config. For https upstreams it builds the
// TLS client config of rc.UpstreamTLS (the CA and client certificate files
// are read now, and followed: changes are logged to log, nil discards), or
// shares that of a route with the same settings, and their idle
// connections; Close releases it.
func NewRoute(rc *config.Route, log *slog.Logger) (*Route, error) {
	targets := make([]*target, len(rc.Upstreams))
	weights := make([]int, len(rc.Upstreams))
	r := &Route{Config: rc}
	for i, u := range rc.Upstreams {
		ep := u.Endpoint
		t := &target{key: upstream.Key{Network: ep.Network(), Addr: ep.Address()}, name: ep.String()}
		switch {
		case ep.URL != nil:
			if ep.URL.Scheme == "https" {
				if r.tls == nil {
					ut := rc.UpstreamTLS
					if ut == nil {
						ut = &config.UpstreamTLS{Stack: config.TLSGo}
					}
					var err error
					if r.tls, err = acquireUpstreamTLS(ut, log); err != nil {
						return nil, fmt.Errorf("httpproxy: route %s: %w", rc.Path, err)
					}
				}
				t.tls = r.tls
				t.key.Network = r.tls.network
				t.serverName = ep.URL.Hostname()
				if rc.UpstreamTLS != nil && rc.UpstreamTLS.ServerName != "" {
					t.serverName = rc.UpstreamTLS.ServerName
				}
			}
			t.host = []byte(ep.URL.Host)
		case ep.Type == config.TypeUnix:
			t.host = []byte("localhost")
		default:
			t.host = []byte(ep.Value)
		}
		targets[i], weights[i] = t, u.Weight
	}
	b, err := balance.New(rc.LoadBalancer, targets, weights)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("httpproxy: route %s: %w", rc.Path, err)
	}
	r.bal = b
	r.health = balance.NewHealthPolicy(rc.Health.MaxFails, rc.Health.FailTimeout, b.Len())
	if rc.RewritePath != "" {
		r.rewrite = parseRewrite(rc.RewritePath)
	}
	return r, nil
}

// rewritePart is a literal part of a rewrite_path, or the route parameter
// named param ("{rest}" in "/v2/{rest}").
type rewritePart struct {
	lit   []byte
	param string
}

// parseRewrite splits a rewrite_path (checked by package config) into its
// parts.
func parseRewrite(rw string) []rewritePart {
	var parts []rewritePart
	for len(rw) > 0 {
		i := strings.IndexByte(rw, '{')
		j := -1
		if i >= 0 {
			if k := strings.IndexByte(rw[i:], '}'); k >= 0 {
				j = i + k
			}
		}
		if j < 0 {
			parts = append(parts, rewritePart{lit: []byte(rw)})
			break
		}
		if i > 0 {
			parts = append(parts, rewritePart{lit: []byte(rw[:i])})
		}
		parts = append(parts, rewritePart{param: rw[i+1 : j]})
		rw = rw[j+1:]
	}
	return parts
}

// rewritten returns the upstream path for req: the parts, with the route
// parameters' values, in req's scratch (or the literal itself).
func (r *Route) rewritten(req *Request) []byte {
	if len(r.rewrite) == 1 && r.rewrite[0].param == "" {
		return r.rewrite[0].lit
	}
	start := len(req.scratch)
	for _, p := range r.rewrite {
		if p.param == "" {
			req.scratch = append(req.scratch, p.lit...)
			continue
		}
		for _, v := range req.Params {
			if v.Name == p.param {
				req.scratch = append(req.scratch, v.Value...)
				break
			}
		}
	}
	return req.scratch[start:len(req.scratch):len(req.scratch)]
}

// Close releases the route's TLS client config; connections already made
// stay usable.
func (r *Route) Close() error {
	if u := r.tls; u != nil {
		r.tls = nil
		return u.release()
	}
	return nil
}

// RouteLayer picks the route for each request by host and path, and
// answers 404 when none matches; CONNECT, which has no path, gets 501 and
// the connection's end, and OPTIONS * (about the server itself) 200.
func RouteLayer(router *route.Router[*Route]) Middleware {
	return func(inner Service) Service {
		return routeService{router: router, inner: inner}
	}
}

type routeService struct {
	router *route.Router[*Route]
	inner  Service
}

func (s routeService) Call(ctx context.Context, req *Request) (*Response, error) {
	host := req.Head.Host
	rt, params, ok := s.router.Match(bytesToString(host), bytesToString(req.Path), req.Params[:0])
	req.Params = params
	if !ok {
		resp := req.resp()
		switch {
		case string(req.Head.Method) == "CONNECT":
			// Routes are paths; a tunnel to an authority is a forward
			// proxy's (RFC 9110 9.3.6). What follows the request may be
			// the tunnel's bytes, not a request: the connection ends.
			resp.SetText(501, "501 Not Implemented: CONNECT is not served here\n")
			resp.Close = true
		case string(req.Path) == "*":
			// OPTIONS * (the parser allows "*" for OPTIONS only) asks
			// about the server, not a resource (RFC 9110 9.3.7): the
			// proxy takes every method to its routes.
			resp.Status = 200
		default:
			resp.SetText(404, "404 Not Found: no route for this host and path\n")
		}
		return resp, nil
	}
	req.Route = rt
	return s.inner.Call(ctx, req)
}

// RewriteConfig says what the rewrite layer does.
type RewriteConfig struct {
	// PreserveHost sends the client's Host upstream; false sends the
	// upstream's own authority.
	PreserveHost bool
	// Forwarded adds an RFC 7239 Forwarded field.
	Forwarded bool
	// Via adds "Via: 1.1 NAME" when NAME is not empty.
	Via string
	// RequestID passes X-Request-Id on, or generates one when absent.
	RequestID bool
}

// RewriteLayer sets the upstream Host and path and the forwarding fields:
// X-Forwarded-For (appended to), X-Forwarded-Proto, X-Forwarded-Host, and
// optionally Forwarded, Via and X-Request-Id.
func RewriteLayer(cfg RewriteConfig) Middleware {
	var via, via10 []byte
	if cfg.Via != "" {
		via, via10 = []byte("1.1 "+cfg.Via), []byte("1.0 "+cfg.Via)
	}
	return func(inner Service) Service {
		return rewriteService{cfg: cfg, via: via, via10: via10, inner: inner}
	}
}

type rewriteService struct {
	cfg        RewriteConfig
	via, via10 []byte // Via's value for a request received as HTTP/1.1, as HTTP/1.0
	inner      Service
}

var (
	hXFF       = []byte("X-Forwarded-For")
	hXFProto   = []byte("X-Forwarded-Proto")
	hXFHost    = []byte("X-Forwarded-Host")
	hForwarded = []byte("Forwarded")
	hVia       = []byte("Via")
	hRequestID = []byte("X-Request-Id")
	vHTTP      = []byte("http")
	vHTTPS     = []byte("https")
	commaSP    = []byte(", ")
)

func (s rewriteService) Call(ctx context.Context, req *Request) (*Response, error) {
	h := req.Head
	if m := string(h.Method); m == "OPTIONS" || m == "TRACE" {
		if resp := maxForwards(req); resp != nil {
			return resp, nil
		}
	}
	ip := req.Conn.RemoteIP
	req.ReplaceHost = !s.cfg.PreserveHost
	// X-Forwarded-For: the client's list (every line of it), then this
	// hop; a client on a Unix socket has no address to add.
	prev := allValues(req, "X-Forwarded-For")
	req.Drop = append(req.Drop, "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded")
	var xff []byte
	switch {
	case ip == "":
		xff = prev
	case len(prev) > 0:
		xff = req.Scratch(prev, commaSP, stringBytes(ip))
	default:
		xff = req.Scratch(stringBytes(ip))
	}
	proto := vHTTP
	if req.Conn.TLS {
		proto = vHTTPS
	}
	if len(xff) > 0 {
		req.Add = append(req.Add, http1.Header{Name: hXFF, Value: xff})
	}
	req.Add = append(req.Add, http1.Header{Name: hXFProto, Value: proto})
	if h.Host != nil {
		req.Add = append(req.Add, http1.Header{Name: hXFHost, Value: h.Host})
	}
	// Forwarded: appended to when on; when off, a client's is removed, as
	// its X-Forwarded-Proto and -Host are replaced: an upstream that reads
	// Forwarded first must not get what the client made up.
	if s.cfg.Forwarded {
		node := forUnknown
		if ip != "" {
			node = forNode(ip)
		}
		fw := req.Scratch([]byte("for="), node, []byte(";proto="), proto)
		if h.Host != nil {
			fw = req.Scratch(fw, []byte(";host=\""), h.Host, []byte("\""))
		}
		if prev := allValues(req, "Forwarded"); len(prev) > 0 {
			fw = req.Scratch(prev, commaSP, fw)
		}
		req.Add = append(req.Add, http1.Header{Name: hForwarded, Value: fw})
	}
	if s.via != nil {
		// The protocol as received (RFC 9110 7.6.3).
		v := s.via
		if h.Version == http1.HTTP10 {
			v = s.via10
		}
		if prev := allValues(req, "Via"); len(prev) > 0 {
			v = req.Scratch(prev, commaSP, v)
		}
		req.Drop = append(req.Drop, "Via")
		req.Add = append(req.Add, http1.Header{Name: hVia, Value: v})
	}
	if s.cfg.RequestID {
		if id := allValues(req, "X-Request-Id"); validRequestID(id) {
			req.requestID = id
		} else {
			// None, or one not fit to pass on (long, odd characters, or
			// several lines, joined with ", "): ours replaces them.
			req.requestID = req.newRequestID()
			req.Drop = append(req.Drop, "X-Request-Id")
			req.Add = append(req.Add, http1.Header{Name: hRequestID, Value: req.requestID})
		}
	}
	if rt := req.Route; rt != nil && rt.rewrite != nil {
		req.OutTarget = req.targetFor(rt.rewritten(req))
	}
	resp, err := s.inner.Call(ctx, req)
	if err == nil && s.cfg.RequestID && resp != nil && req.requestID != nil && !resp.Headers.Has("X-Request-Id") {
		resp.Headers = append(resp.Headers, http1.Header{Name: hRequestID, Value: req.requestID})
	}
	return resp, err
}

// maxForwards applies Max-Forwards to an OPTIONS or TRACE request (RFC
// 9110 7.6.2): at 0 the proxy answers itself, and returns that response;
// above, the upstream gets one less. A value that is not a number goes on
// as it is.
func maxForwards(req *Request) *Response {
	v := allValues(req, "Max-Forwards")
	if len(v) == 0 {
		return nil
	}
	n, err := strconv.ParseUint(string(v), 10, 32)
	if err != nil {
		return nil
	}
	if n > 0 {
		req.Drop = append(req.Drop, "Max-Forwards")
		req.Add = append(req.Add, http1.Header{Name: hMaxForwards, Value: req.Scratch(strconv.AppendUint(nil, n-1, 10))})
		return nil
	}
	resp := req.resp()
	h := req.Head
	if string(h.Method) == "OPTIONS" {
		resp.Status = 200
		return resp
	}
	// TRACE: the request as received, without the fields that may hold
	// secrets (RFC 9110 9.3.8).
	var b []byte
	b = append(append(append(append(append(b, h.Method...), ' '), h.Target...), ' '), h.Version.String()...)
	b = append(b, "\r\n"...)
	for _, f := range h.Headers {
		if equalFold(f.Name, "Authorization") || equalFold(f.Name, "Proxy-Authorization") || equalFold(f.Name, "Cookie") {
			continue
		}
		b = http1.AppendHeader(b, f.Name, f.Value)
	}
	resp.SetText(200, string(append(b, "\r\n"...)))
	resp.Headers[0].Value = []byte("message/http")
	return resp
}

var hMaxForwards = []byte("Max-Forwards")

// validRequestID accepts a client's X-Request-Id to pass on: up to 128
// characters of letters, digits and -._:/+= (UUIDs, hex, base64 and the
// like), nothing that could upset a log line.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._:/+=", c) >= 0) {
			return false
		}
	}
	return true
}

// forUnknown is the Forwarded node of a client without an IP address (a
// Unix socket), RFC 7239 6.3.
var forUnknown = []byte("unknown")

// allValues returns the non-empty lines of field name joined by ", " (RFC
// 9110 5.3: the same field on several lines is one list), copied once into
// req's scratch when there are several; nil when there are none.
func allValues(req *Request, name string) []byte {
	var first []byte
	n, size := 0, 0
	for _, f := range req.Head.Headers {
		if len(f.Value) == 0 || !equalFold(f.Name, name) {
			continue
		}
		if n == 0 {
			first = f.Value
		}
		n++
		size += len(f.Value) + len(commaSP)
	}
	if n < 2 {
		return first
	}
	start := len(req.scratch)
	req.scratch = slices.Grow(req.scratch, size)
	for _, f := range req.Head.Headers {
		if len(f.Value) == 0 || !equalFold(f.Name, name) {
			continue
		}
		if len(req.scratch) > start {
			req.scratch = append(req.scratch, commaSP...)
		}
		req.scratch = append(req.scratch, f.Value...)
	}
	return req.scratch[start:len(req.scratch):len(req.scratch)]
}

// forNode is a Forwarded node for ip: quoted and bracketed for IPv6.
func forNode(ip string) []byte {
	if strings.Contains(ip, ":") {
		return []byte("\"[" + ip + "]\"")
	}
	return []byte(ip)
}

// requestIDPrefix makes IDs unique across processes; a counter makes them
// unique within one, so no random read per request.
var (
	requestIDPrefix [8]byte
	requestIDSeq    atomic.Uint64
)

func init() { rand.Read(requestIDPrefix[:]) }

// newRequestID appends a 32-hex-digit ID to the request's scratch.
func (r *Request) newRequestID() []byte {
	var b [16]byte
	copy(b[:8], requestIDPrefix[:])
	binary.BigEndian.PutUint64(b[8:], requestIDSeq.Add(1))
	start := len(r.scratch)
	r.scratch = hex.AppendEncode(r.scratch, b[:])
	return r.scratch[start:len(r.scratch):len(r.scratch)]
}
