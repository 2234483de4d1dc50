package bench

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Proto is the client side of a case: what the load generator speaks.
type Proto string

// The protocols of the suite.
const (
	ProtoHTTP1    Proto = "http1"     // HTTP/1.1 with connection reuse
	ProtoHTTPS    Proto = "https"     // the same over TLS
	ProtoH2       Proto = "h2"        // h2 over TLS, multiplexed streams (h2load)
	ProtoL4       Proto = "l4"        // HTTP/1.1 through an L4 TCP relay
	ProtoClose    Proto = "close"     // HTTP/1.1, Connection: close (a connection per request)
	ProtoCloseTLS Proto = "close-tls" // HTTPS, Connection: close (a full handshake per request)
)

// AllProtos lists the protocols in the order the suite runs them.
var AllProtos = []Proto{ProtoHTTP1, ProtoHTTPS, ProtoH2, ProtoL4, ProtoClose, ProtoCloseTLS}

type protoInfo struct {
	mode  Mode
	tls   bool
	h2    bool
	close bool
}

var protos = map[Proto]protoInfo{
	ProtoHTTP1:    {mode: ModeHTTP},
	ProtoHTTPS:    {mode: ModeHTTPS, tls: true},
	ProtoH2:       {mode: ModeHTTPS, tls: true, h2: true},
	ProtoL4:       {mode: ModeTCP},
	ProtoClose:    {mode: ModeHTTP, close: true},
	ProtoCloseTLS: {mode: ModeHTTPS, tls: true, close: true},
}

// ParseProto checks a protocol name.
func ParseProto(s string) (Proto, error) {
	p := Proto(s)
	if _, ok := protos[p]; !ok {
		return "", fmt.Errorf("bench: unknown case kind %q (want one of %v)", s, AllProtos)
	}
	return p, nil
}

// Bodies maps a body name to its size; the origin serves each at /NAME.
var Bodies = map[string]int{"0": 0, "1k": 1 << 10, "16k": 16 << 10, "64k": 64 << 10}

// DefaultOriginSendfile is the smallest body the origin serves with
// sendfile(2); see OriginConfig.Sendfile.
const DefaultOriginSendfile = "64k"

// SendfileBodies returns, sorted, the bodies at least as large as the body
// from names ("" is DefaultOriginSendfile): those the origin serves with
// sendfile(2).
func SendfileBodies(from string) ([]string, error) {
	if from == "" {
		from = DefaultOriginSendfile
	}
	from, err := ParseBody(from)
	if err != nil {
		return nil, err
	}
	var out []string
	for name, size := range Bodies {
		if size >= Bodies[from] {
			out = append(out, name)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return Bodies[a] - Bodies[b] })
	return out, nil
}

// ParseBody checks a body name; "1KiB", "1024" and "1k" are the same body.
func ParseBody(s string) (string, error) {
	s = strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(s, "iB"), "B"))
	if _, ok := Bodies[s]; ok {
		return s, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		for name, size := range Bodies {
			if size == n {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("bench: unknown body %q (want 0, 1k, 16k or 64k)", s)
}

// Case is one load shape: protocol, client connections and body size.
type Case struct {
	Proto Proto
	Conns int
	Body  string // a key of Bodies
}

// Name is the case's name in reports and file names: "http1/c=50/body=1k".
func (c Case) Name() string { return fmt.Sprintf("%s/c=%d/body=%s", c.Proto, c.Conns, c.Body) }

// Mode is the proxy mode the case needs.
func (c Case) Mode() Mode { return protos[c.Proto].mode }

// TLS reports whether the client speaks TLS.
func (c Case) TLS() bool { return protos[c.Proto].tls }

// H2 reports whether the client speaks h2 (and so is h2load, not wrk).
func (c Case) H2() bool { return protos[c.Proto].h2 }

// Close reports whether each request uses a new connection.
func (c Case) Close() bool { return protos[c.Proto].close }

// Path is the request path on the origin.
func (c Case) Path() string { return "/" + c.Body }

// Matrix is what cases to build.
type Matrix struct {
	Protos   []Proto
	Conns    []int
	Bodies   []string
	L4Bodies []string // bodies of the L4 cases (default: Bodies and 64k)
	// Filter, when set, keeps only cases whose name it matches.
	Filter *regexp.Regexp
}

// Cases returns the cases of m in run order. The connection-per-request
// cases are measured at the first connection count and smallest body only:
// they measure accepting and handshakes, which the body size does not
// change.
func (m Matrix) Cases() []Case {
	var out []Case
	for _, p := range m.Protos {
		bodies := m.Bodies
		conns := m.Conns
		switch {
		case p == ProtoL4 && len(m.L4Bodies) > 0:
			bodies = m.L4Bodies
		case protos[p].close && len(bodies) > 0 && len(conns) > 0:
			bodies = []string{smallestBody(bodies)}
			conns = conns[:1]
		}
		for _, c := range conns {
			for _, b := range bodies {
				k := Case{Proto: p, Conns: c, Body: b}
				if m.Filter == nil || m.Filter.MatchString(k.Name()) {
					out = append(out, k)
				}
			}
		}
	}
	return out
}

func smallestBody(bodies []string) string {
	return slices.MinFunc(bodies, func(a, b string) int { return Bodies[a] - Bodies[b] })
}
