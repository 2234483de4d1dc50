package httpproxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy"
)

// bytesConn is a net.Conn that reads a fixed input and records what is
// written: the fuzz target drives the server without sockets.
type bytesConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *bytesConn) Read(p []byte) (int, error)         { return c.in.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)        { return c.out.Write(p) }
func (c *bytesConn) Close() error                       { return nil }
func (c *bytesConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *bytesConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }
func (c *bytesConn) SetDeadline(t time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzServer feeds arbitrary bytes to the HTTP server as one client
// connection's input. The server must not panic or hang, and everything it
// writes must be HTTP/1.1 responses.
func FuzzServer(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nwxyz",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
		"GET / HTTP/1.0\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	svc := proxy.ServiceFunc[*Request, *Response](func(ctx context.Context, req *Request) (*Response, error) {
		n, err := io.Copy(io.Discard, req.Body)
		if err != nil {
			return nil, Errorf(400, "reading body: %w", err)
		}
		resp := req.Response()
		resp.SetText(200, strings.Repeat("x", int(n%100)))
		return resp, nil
	})
	srv := NewServer(ServerConfig{}, svc, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &bytesConn{in: bytes.NewReader(in)}
		srv.Call(context.Background(), c)
		out := c.out.Bytes()
		for len(out) > 0 {
			if !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
				t.Fatalf("output %q", out)
			}
			// Skip to the next response: responses here have small bodies
			// of 'x' or a status text, never "HTTP/1.1 " inside.
			next := bytes.Index(out[1:], []byte("HTTP/1.1 "))
			if next < 0 {
				break
			}
			out = out[next+1:]
		}
	})
}
