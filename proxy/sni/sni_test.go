package sni

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"testing/iotest"
	"time"
)

// captureConn records what a TLS client writes and fails the handshake
// right after its first flight (the ClientHello).
type captureConn struct {
	net.Conn // nil: only the methods below are used
	buf      bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error)      { return c.buf.Write(p) }
func (c *captureConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *captureConn) Close() error                     { return nil }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }
func (c *captureConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *captureConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// clientHello returns the ClientHello records crypto/tls sends for cfg.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c := &captureConn{}
	tls.Client(c, cfg).Handshake() // fails at the missing ServerHello
	if c.buf.Len() == 0 {
		t.Fatal("crypto/tls wrote no ClientHello")
	}
	return c.buf.Bytes()
}

// realHellos are ClientHellos of crypto/tls with what Parse must find.
func realHellos(t testing.TB) []struct {
	name  string
	hello []byte
	sni   string
	alpn  []string
} {
	type hello = struct {
		name  string
		hello []byte
		sni   string
		alpn  []string
	}
	return []hello{
		{"tls13", clientHello(t, &tls.Config{ServerName: "a.example"}), "a.example", nil},
		{"upper case", clientHello(t, &tls.Config{ServerName: "WWW.B.Example"}), "www.b.example", nil},
		{"alpn", clientHello(t, &tls.Config{ServerName: "x.b.example", NextProtos: []string{"h2", "http/1.1"}}), "x.b.example", []string{"h2", "http/1.1"}},
		{"tls12 only", clientHello(t, &tls.Config{ServerName: "old.example", MaxVersion: tls.VersionTLS12}), "old.example", nil},
		{"no sni", clientHello(t, &tls.Config{InsecureSkipVerify: true}), "", nil},
		{"ip: no sni", clientHello(t, &tls.Config{ServerName: "127.0.0.1"}), "", nil},
	}
}

// fragment re-frames the handshake bytes of one-record hello into
// records of at most size bytes each.
func fragment(hello []byte, size int) []byte {
	hs := hello[recordHeaderLen:]
	var out []byte
	for len(hs) > 0 {
		n := min(size, len(hs))
		out = append(out, recordTypeHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, hs[:n]...)
		hs = hs[n:]
	}
	return out
}

func TestParseRealHellos(t *testing.T) {
	for _, h := range realHellos(t) {
		t.Run(h.name, func(t *testing.T) {
			for _, v := range []struct {
				name string
				data []byte
			}{
				{"one record", h.hello},
				{"records of 100", fragment(h.hello, 100)},
				{"in MaxRecords records", fragment(h.hello, (len(h.hello)-recordHeaderLen)/(MaxRecords-1)+1)},
			} {
				ch, n, err := Parse(v.data, DefaultMaxSize)
				if err != nil {
					t.Fatalf("%s: %v", v.name, err)
				}
				if n != len(v.data) || ch.ServerName != h.sni || !slices.Equal(ch.ALPN, h.alpn) {
					t.Errorf("%s: got %q %q n=%d, want %q %q n=%d", v.name, ch.ServerName, ch.ALPN, n, h.sni, h.alpn, len(v.data))
				}
				// Every prefix is incomplete, never an error or a result.
				for i := range len(v.data) {
					if _, _, err := Parse(v.data[:i], DefaultMaxSize); !IsIncomplete(err) {
						t.Fatalf("%s: prefix of %d/%d bytes: %v", v.name, i, len(v.data), err)
					}
				}
				// Bytes after the hello are not looked at.
				if _, n, err := Parse(append(slices.Clip(v.data), "after"...), DefaultMaxSize); err != nil || n != len(v.data) {
					t.Errorf("%s: with bytes after: n=%d %v", v.name, n, err)
				}
			}
		})
	}
}

// hello builds a ClientHello record with the given extensions block (nil
// for none at all).
func hello(exts []byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // one cipher suite
	body = append(body, 1, 0)                // null compression
	if exts != nil {
		body = append(body, byte(len(exts)>>8), byte(len(exts)))
		body = append(body, exts...)
	}
	msg := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{22, 3, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

func ext(typ int, data []byte) []byte {
	return append([]byte{byte(typ >> 8), byte(typ), byte(len(data) >> 8), byte(len(data))}, data...)
}

func sniExt(names ...string) []byte {
	var list []byte
	for _, n := range names {
		list = append(list, 0, byte(len(n)>>8), byte(len(n)))
		list = append(list, n...)
	}
	return ext(extServerName, append([]byte{byte(len(list) >> 8), byte(len(list))}, list...))
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestParseCrafted(t *testing.T) {
	good := hello(sniExt("a.example"))
	tests := []struct {
		name string
		data []byte
		sni  string
		want error // nil, ErrNotTLS, ErrTooLarge, or any *MalformedError
	}{
		{"minimal with sni", good, "a.example", nil},
		{"no extensions", hello(nil), "", nil},
		{"empty extensions", hello([]byte{}), "", nil},
		{"grease and unknown", hello(cat(ext(0x0a0a, nil), sniExt("g.example"), ext(0xfafa, []byte{0}))), "g.example", nil},
		{"http", []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), "", ErrNotTLS},
		{"ssl2-ish", []byte{0x80, 0x2e, 0x01, 0x03, 0x01}, "", ErrNotTLS},
		{"handshake byte then junk", []byte{22, 'x', 'y'}, "", ErrNotTLS},
		{"duplicate sni", hello(cat(sniExt("a.example"), sniExt("b.example"))), "", &MalformedError{}},
		{"duplicate grease", hello(cat(ext(0x0a0a, nil), ext(0x0a0a, nil))), "", &MalformedError{}},
		{"two host names", hello(sniExt("a.example", "b.example")), "", &MalformedError{}},
		{"trailing dot", hello(sniExt("a.example.")), "", &MalformedError{}},
		{"empty label", hello(sniExt("a..example")), "", &MalformedError{}},
		{"nul in name", hello(sniExt("a\x00.example")), "", &MalformedError{}},
		{"empty name", hello(sniExt("")), "", &MalformedError{}},
		{"empty sni list", hello(ext(extServerName, []byte{0, 0})), "", &MalformedError{}},
		{"empty sni extension", hello(ext(extServerName, nil)), "", &MalformedError{}},
		// Entries of other name types are skipped (RFC 6066 3), as
		// crypto/tls skips them; they made the hello malformed.
		{"name type 1", hello(ext(extServerName, []byte{0, 4, 1, 0, 1, 'a'})), "", nil},
		{"name type 1 then host_name", hello(ext(extServerName, cat([]byte{0, 16, 1, 0, 1, 'a', 0, 0, 9}, []byte("b.example")))), "b.example", nil},
		{"many high extensions", hello(manyExts(4000, false)), "", nil},
		{"many high extensions, one twice", hello(manyExts(4000, true)), "", &MalformedError{}},
		{"sni list too long", hello(ext(extServerName, []byte{0, 9, 0, 0, 1, 'a'})), "", &MalformedError{}},
		{"extension overruns", hello([]byte{0, 0, 0, 9, 'a'}), "", &MalformedError{}},
		{"bad alpn", hello(ext(extALPN, []byte{0, 1, 0})), "", &MalformedError{}},
		{"alert record", cat([]byte{21, 3, 1, 0, 2}, []byte{2, 40}), "", ErrNotTLS},
		{"alert inside the hello", cat(fragment(good, 10)[:15], []byte{21, 3, 1, 0, 2, 2, 40}), "", &MalformedError{}},
		{"server hello", func() []byte { b := slices.Clone(good); b[5] = 2; return b }(), "", &MalformedError{}},
		{"record version 2.0", func() []byte { b := slices.Clone(good); b[2] = 9; return b }(), "", &MalformedError{}},
		{"other message in a 1-byte record", []byte{22, 3, 1, 0, 1, 9}, "", &MalformedError{}},
		{"zero-length record", []byte{22, 3, 1, 0, 0}, "", &MalformedError{}},
		{"oversized record", []byte{22, 3, 1, 0x40, 1}, "", &MalformedError{}},
		{"legacy version 2", func() []byte { b := slices.Clone(good); b[9] = 2; return b }(), "", &MalformedError{}},
		{"long session id", func() []byte { b := slices.Clone(good); b[43] = 33; return b }(), "", &MalformedError{}},
		{"odd cipher suites", func() []byte { b := slices.Clone(good); b[45] = 3; return b }(), "", &MalformedError{}},
		{"extra handshake bytes", func() []byte {
			b := cat(good[:5], good[5:], []byte{0})
			b[4]++ // the record holds one byte past the message
			return b
		}(), "", &MalformedError{}},
		{"too many records", fragment(good, 1), "", &MalformedError{}},
		{"message too large", []byte{22, 3, 1, 0, 4, 1, 0x01, 0, 0}, "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, _, err := Parse(tt.data, DefaultMaxSize)
			var me *MalformedError
			switch {
			case tt.want == nil:
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if ch.ServerName != tt.sni {
					t.Errorf("server name %q, want %q", ch.ServerName, tt.sni)
				}
			case errors.As(tt.want, &me):
				if !errors.As(err, &me) {
					t.Errorf("error %v, want a malformed ClientHello", err)
				}
			default:
				if err != tt.want {
					t.Errorf("error %v, want %v", err, tt.want)
				}
			}
		})
	}
}

func TestRead(t *testing.T) {
	h := realHellos(t)[0]
	t.Run("one byte at a time", func(t *testing.T) {
		raw, ch, err := Read(iotest.OneByteReader(bytes.NewReader(fragment(h.hello, 50))), 0)
		if err != nil || ch.ServerName != h.sni || !bytes.Equal(raw, fragment(h.hello, 50)) {
			t.Fatalf("got %q %v, %d bytes", ch, err, len(raw))
		}
	})
	t.Run("bytes after the hello are kept", func(t *testing.T) {
		data := cat(h.hello, []byte("early data"))
		raw, ch, err := Read(bytes.NewReader(data), 0)
		if err != nil || ch.ServerName != h.sni || !bytes.Equal(raw, data) {
			t.Fatalf("got %v %v, raw %d of %d bytes", ch, err, len(raw), len(data))
		}
	})
	t.Run("not tls: one read", func(t *testing.T) {
		r := &countReader{r: iotest.OneByteReader(bytes.NewReader([]byte("hello\n")))}
		raw, _, err := Read(r, 0)
		if err != ErrNotTLS || string(raw) != "h" || r.n != 1 {
			t.Fatalf("raw %q err %v after %d reads", raw, err, r.n)
		}
	})
	t.Run("client ends early", func(t *testing.T) {
		raw, _, err := Read(bytes.NewReader(h.hello[:20]), 0)
		if err != io.ErrUnexpectedEOF || len(raw) != 20 {
			t.Fatalf("raw %d bytes, err %v", len(raw), err)
		}
	})
	t.Run("size bound", func(t *testing.T) {
		raw, _, err := Read(bytes.NewReader(fragment(h.hello, 100)), 100)
		if err != ErrTooLarge || len(raw) != 100 {
			t.Fatalf("raw %d bytes, err %v", len(raw), err)
		}
	})
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) { c.n++; return c.r.Read(p) }

// FuzzClientHello checks that no input panics Parse or Read, that they
// agree, and that a parsed hello re-parses the same from its own records.
func FuzzClientHello(f *testing.F) {
	for _, h := range realHellos(f) {
		f.Add(h.hello)
		f.Add(fragment(h.hello, 64))
	}
	f.Add(hello(sniExt("a.example")))
	f.Add(hello(nil))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, n, err := Parse(data, DefaultMaxSize)
		raw, rch, rerr := Read(bytes.NewReader(data), len(data)+1)
		if !bytes.HasPrefix(data, raw) {
			t.Fatalf("Read returned bytes that were not read (err %v)", rerr)
		}
		if err != nil {
			if rch != nil {
				t.Fatalf("Parse failed (%v) but Read found %+v", err, rch)
			}
			return
		}
		if n > len(data) || n < recordHeaderLen {
			t.Fatalf("consumed %d of %d bytes", n, len(data))
		}
		again, n2, err := Parse(data[:n], DefaultMaxSize)
		if err != nil || n2 != n || again.ServerName != ch.ServerName || !slices.Equal(again.ALPN, ch.ALPN) {
			t.Fatalf("re-parse of the hello's records: %+v n=%d %v; first %+v n=%d", again, n2, err, ch, n)
		}
		if rerr != nil || rch.ServerName != ch.ServerName || len(raw) < n {
			t.Fatalf("Read: %+v %v; Parse: %+v", rch, rerr, ch)
		}
		if ch.ServerName != "" && checkHostName([]byte(ch.ServerName)) != nil {
			t.Fatalf("accepted bad server name %q", ch.ServerName)
		}
	})
}

// manyExts returns n empty extensions of distinct types from 256 up, the
// last a repeat of the first when dup.
func manyExts(n int, dup bool) []byte {
	var b []byte
	for i := range n {
		typ := 256 + i
		if dup && i == n-1 {
			typ = 256
		}
		b = append(b, ext(typ, nil)...)
	}
	return b
}

// BenchmarkParseManyExtensions: a 16 KiB hello of 4,000 distinct extension
// types, as a hostile client sends, costs about what an ordinary one does
// per byte (the duplicate check was quadratic: 2 ms per hello).
func BenchmarkParseManyExtensions(b *testing.B) {
	h := hello(manyExts(4000, false))
	b.SetBytes(int64(len(h)))
	for b.Loop() {
		if _, _, err := Parse(h, DefaultMaxSize); err != nil {
			b.Fatal(err)
		}
	}
}
