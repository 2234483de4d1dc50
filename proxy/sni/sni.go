// Package sni reads a TLS ClientHello off a connection without terminating
// TLS, to route the connection by the server name it asks for (TLS
// passthrough). The bytes read are returned so the caller can replay them
// to the chosen upstream, which then runs the handshake with the client
// end to end.
//
// The parser is strict: it follows the record layer (a ClientHello may span
// several records) and the ClientHello structure of RFC 8446 4.1.2 and
// RFC 5246 7.4.1.2 to the last byte, rejects duplicate extensions and a
// server_name extension that is not exactly one host_name (RFC 6066 3),
// and never reads past the records that carry the ClientHello.
package sni

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DefaultMaxSize bounds the bytes Read takes from a connection looking for
// a ClientHello (records and headers). Real ClientHellos are 0.2 to 2 KiB;
// TLS allows a 16 MiB one, which no router needs to accept.
const DefaultMaxSize = 16 << 10

// ErrNotTLS says the first bytes are not a TLS handshake record.
var ErrNotTLS = errors.New("sni: not a TLS handshake")

// ErrTooLarge says the ClientHello does not fit the size bound.
var ErrTooLarge = errors.New("sni: ClientHello larger than the limit")

// errIncomplete is Parse's answer for a prefix of a valid ClientHello.
var errIncomplete = errors.New("sni: incomplete ClientHello")

// MalformedError is a ClientHello that breaks the protocol.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "sni: malformed ClientHello: " + e.Reason }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}

// ClientHello is what a router needs of a ClientHello.
type ClientHello struct {
	// ServerName is the SNI host name, lower-cased; "" when the client
	// sent none.
	ServerName string
	// ALPN lists the protocols offered, in the client's order.
	ALPN []string
}

// Record layer constants (RFC 8446 5.1).
const (
	recordHeaderLen      = 5
	recordTypeHandshake  = 22
	maxPlaintext         = 1 << 14
	handshakeClientHello = 1
)

// Extension types (IANA TLS ExtensionType values).
const (
	extServerName = 0
	extALPN       = 16
)

// IsIncomplete reports whether err says that more bytes are needed.
func IsIncomplete(err error) bool { return err == errIncomplete }

// Parse parses a ClientHello from the start of data, which holds TLS
// records as the client sent them. It returns the hello and the length of
// the records that carry it (bytes after them are not looked at). For a
// valid prefix it returns an error for which IsIncomplete is true; for
// data that cannot start a TLS handshake, ErrNotTLS; for a handshake
// message longer than maxSize, ErrTooLarge; for anything else wrong, a
// *MalformedError. A hello in one record is parsed in place; one split
// across records is reassembled in a copy.
func Parse(data []byte, maxSize int) (*ClientHello, int, error) {
	ch, n, _, err := parse(data, maxSize)
	return ch, n, err
}

// MaxRecords bounds the records one ClientHello may span. Real ones take
// one; the bound keeps a client that splits its hello into tiny records
// from making the reader's work grow with the square of its size.
const MaxRecords = 64

// parse is Parse that also says, for an incomplete hello, the length data
// must reach before parsing again can make progress.
func parse(data []byte, maxSize int) (ch *ClientHello, n, need int, err error) {
	if len(data) == 0 {
		return nil, 0, 1, errIncomplete
	}
	if data[0] != recordTypeHandshake || len(data) > 1 && data[1] != 3 {
		return nil, 0, 0, ErrNotTLS
	}
	var hs []byte // the handshake message so far
	copied := false
	off := 0
	for records := 1; ; records++ {
		if records > MaxRecords {
			return nil, 0, 0, malformed("split over more than %d records", MaxRecords)
		}
		if len(data)-off < recordHeaderLen {
			return nil, 0, off + recordHeaderLen, errIncomplete
		}
		h := data[off : off+recordHeaderLen]
		if h[0] != recordTypeHandshake {
			return nil, 0, 0, malformed("record of type %d inside the ClientHello", h[0])
		}
		if h[1] != 3 || h[2] > 4 {
			return nil, 0, 0, malformed("record version %d.%d", h[1], h[2])
		}
		n := int(h[3])<<8 | int(h[4])
		if n == 0 || n > maxPlaintext {
			return nil, 0, 0, malformed("record length %d", n)
		}
		if len(data)-off-recordHeaderLen < n {
			return nil, 0, off + recordHeaderLen + n, errIncomplete
		}
		frag := data[off+recordHeaderLen : off+recordHeaderLen+n]
		off += recordHeaderLen + n
		switch {
		case hs == nil:
			hs = frag
		case !copied:
			hs = append(append(make([]byte, 0, len(hs)+len(frag)), hs...), frag...)
			copied = true
		default:
			hs = append(hs, frag...)
		}
		if hs[0] != handshakeClientHello {
			return nil, 0, 0, malformed("handshake message type %d, want ClientHello", hs[0])
		}
		if len(hs) < 4 {
			continue
		}
		mlen := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if mlen > maxSize {
			return nil, 0, 0, ErrTooLarge
		}
		if len(hs) < 4+mlen {
			continue
		}
		if len(hs) > 4+mlen {
			return nil, 0, 0, malformed("%d bytes after the ClientHello in its records", len(hs)-4-mlen)
		}
		ch, err := parseBody(hs[4:])
		if err != nil {
			return nil, 0, 0, err
		}
		return ch, off, 0, nil
	}
}

// reader reads big-endian fields off a byte slice; a short read sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() int {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := int(r.b[0])
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() int {
	if len(r.b) < 2 {
		r.bad = true
		return 0
	}
	v := int(r.b[0])<<8 | int(r.b[1])
	r.b = r.b[2:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if len(r.b) < n {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// parseBody parses the ClientHello message body (RFC 8446 4.1.2).
func parseBody(body []byte) (*ClientHello, error) {
	r := reader{b: body}
	if v := r.u16(); !r.bad && v>>8 != 3 {
		return nil, malformed("legacy_version %#04x", v)
	}
	r.bytes(32) // random
	if sid := r.u8(); sid > 32 {
		return nil, malformed("session id of %d bytes", sid)
	} else {
		r.bytes(sid)
	}
	cs := r.u16()
	if !r.bad && (cs < 2 || cs%2 != 0) {
		return nil, malformed("cipher suites of %d bytes", cs)
	}
	r.bytes(cs)
	cm := r.u8()
	if !r.bad && cm < 1 {
		return nil, malformed("no compression methods")
	}
	r.bytes(cm)
	if r.bad {
		return nil, malformed("truncated before the extensions")
	}
	ch := &ClientHello{}
	if len(r.b) == 0 {
		return ch, nil // no extensions (TLS 1.2 allows it): no SNI
	}
	el := r.u16()
	exts := r.bytes(el)
	if r.bad || len(r.b) != 0 {
		return nil, malformed("extensions length %d does not match the message", el)
	}
	er := reader{b: exts}
	// Duplicate check: types below 256 in a bitset, the others (GREASE,
	// a few more in a real hello) in a short list, then in a map: a
	// hostile hello can carry thousands of them, and the list alone made
	// the check quadratic (2 ms of CPU for one 16 KiB hello).
	var seen [4]uint64
	var seenList [16]int
	nList := 0
	var seenHigh map[int]struct{}
	for len(er.b) > 0 {
		typ := er.u16()
		data := er.bytes(er.u16())
		if er.bad {
			return nil, malformed("truncated extension")
		}
		if typ < 256 {
			if seen[typ/64]&(1<<(typ%64)) != 0 {
				return nil, malformed("duplicate extension %d", typ)
			}
			seen[typ/64] |= 1 << (typ % 64)
		} else {
			_, dup := seenHigh[typ]
			if dup || slices.Contains(seenList[:nList], typ) {
				return nil, malformed("duplicate extension %d", typ)
			}
			if nList < len(seenList) {
				seenList[nList] = typ
				nList++
			} else {
				if seenHigh == nil {
					seenHigh = make(map[int]struct{})
				}
				seenHigh[typ] = struct{}{}
			}
		}
		var err error
		switch typ {
		case extServerName:
			ch.ServerName, err = parseServerName(data)
		case extALPN:
			ch.ALPN, err = parseALPN(data)
		}
		if err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// parseServerName parses the server_name extension (RFC 6066 3): a list
// holding exactly one host_name. An empty extension (a server's echo) is
// not valid from a client.
func parseServerName(data []byte) (string, error) {
	r := reader{b: data}
	list := r.bytes(r.u16())
	if r.bad || len(r.b) != 0 || len(list) == 0 {
		return "", malformed("server_name list length")
	}
	lr := reader{b: list}
	name := ""
	for len(lr.b) > 0 {
		typ := lr.u8()
		n := lr.bytes(lr.u16())
		if lr.bad {
			return "", malformed("truncated server_name entry")
		}
		if typ != 0 {
			continue // not a host_name: skipped, as crypto/tls skips it (RFC 6066 3)
		}
		if name != "" {
			return "", malformed("more than one host_name")
		}
		if err := checkHostName(n); err != nil {
			return "", err
		}
		name = strings.ToLower(string(n))
	}
	return name, nil
}

// checkHostName accepts an ASCII DNS name as SNI carries it (RFC 6066 3:
// no trailing dot, not an IP literal; letters, digits, hyphens,
// underscores, dots; labels of 1 to 63 bytes; at most 253 bytes).
func checkHostName(n []byte) error {
	if len(n) == 0 || len(n) > 253 {
		return malformed("host_name of %d bytes", len(n))
	}
	label := 0
	for _, c := range n {
		switch {
		case c == '.':
			if label == 0 {
				return malformed("host_name %q has an empty label", n)
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return malformed("host_name %q: byte %#02x", n, c)
		}
		label++
		if label > 63 {
			return malformed("host_name %q: label longer than 63 bytes", n)
		}
	}
	if label == 0 {
		return malformed("host_name %q ends with a dot", n)
	}
	return nil
}

// parseALPN parses the application_layer_protocol_negotiation extension
// (RFC 7301 3.1): a non-empty list of non-empty names.
func parseALPN(data []byte) ([]string, error) {
	r := reader{b: data}
	list := r.bytes(r.u16())
	if r.bad || len(r.b) != 0 || len(list) == 0 {
		return nil, malformed("ALPN list length")
	}
	var out []string
	lr := reader{b: list}
	for len(lr.b) > 0 {
		p := lr.bytes(lr.u8())
		if lr.bad || len(p) == 0 {
			return nil, malformed("ALPN protocol name")
		}
		out = append(out, string(p))
	}
	return out, nil
}

// Read reads from r until it holds a whole ClientHello, and returns every
// byte read (to replay to the upstream: it may hold bytes past the hello
// if the client sent them at once) with the parsed hello. At most max bytes
// are read (0 means DefaultMaxSize), and the hello is parsed again only
// once a whole record more has arrived, so the work is bounded by
// MaxRecords parses of at most max bytes. On any error raw still holds every
// byte read, and the error is ErrNotTLS, ErrTooLarge, a *MalformedError,
// or the read error (io.EOF or io.ErrUnexpectedEOF for a client that ended
// early, a timeout from the conn's deadline).
//
// For data that is not TLS, Read returns as soon as the first byte says so,
// having made one Read call.
func Read(r io.Reader, max int) (raw []byte, ch *ClientHello, err error) {
	if max <= 0 {
		max = DefaultMaxSize
	}
	raw = make([]byte, 0, min(max, 2048))
	need := 1 // parse again once raw is this long
	for {
		if len(raw) == cap(raw) {
			if len(raw) >= max {
				return raw, nil, ErrTooLarge
			}
			raw = append(raw, make([]byte, min(max, 2*cap(raw))-len(raw))...)[:len(raw)]
		}
		n, rerr := r.Read(raw[len(raw):cap(raw)])
		raw = raw[:len(raw)+n]
		if len(raw) >= need {
			ch, _, need, err = parse(raw, max)
			if !IsIncomplete(err) {
				return raw, ch, err
			}
		}
		if rerr != nil {
			if rerr == io.EOF && len(raw) > 0 {
				rerr = io.ErrUnexpectedEOF
			}
			return raw, nil, rerr
		}
	}
}
