package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A minimal RFC 6455 implementation: enough for a real handshake and real
// frames, so the test needs no WebSocket dependency.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsWrite writes one final frame; a client masks it.
func wsWrite(w io.Writer, op byte, payload []byte, mask bool) error {
	var hdr []byte
	hdr = append(hdr, 0x80|op)
	mbit := byte(0)
	if mask {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, mbit|byte(n))
	case n < 1<<16:
		hdr = append(hdr, mbit|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, mbit|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	p := payload
	if mask {
		var key [4]byte
		rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		p = make([]byte, len(payload))
		for i := range payload {
			p[i] = payload[i] ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, p...))
	return err
}

// wsRead reads one final frame and unmasks it.
func wsRead(r io.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 {
		return 0, nil, errors.New("fragmented frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, payload, nil
}

// wsEchoUpstream answers the handshake and echoes frames until a close.
func wsEchoUpstream(t *testing.T) string {
	return rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		r, _, err := readRequest(br)
		if err != nil {
			return
		}
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		for {
			op, p, err := wsRead(br)
			if err != nil {
				return
			}
			if op == 8 {
				wsWrite(c, 8, p, false)
				return
			}
			if err := wsWrite(c, op, p, false); err != nil {
				return
			}
		}
	})
}

func TestWebSocket(t *testing.T) {
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", wsEchoUpstream(t))), Options{})
	c := dialRaw(t, p.Addr)
	var keyb [16]byte
	rand.Read(keyb[:])
	key := base64.StdEncoding.EncodeToString(keyb[:])
	// The first frame rides in the same write as the handshake.
	var first bytes.Buffer
	wsWrite(&first, 1, []byte("early"), true)
	c.send(t, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+key+"\r\n\r\n"+first.String())
	resp, err := readResponseHead(c.br)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	if op, got, err := wsRead(c.br); err != nil || op != 1 || string(got) != "early" {
		t.Fatalf("early frame: %d %q %v", op, got, err)
	}
	for _, size := range []int{5, 200, 70 << 10} {
		msg := make([]byte, size)
		rand.Read(msg)
		if err := wsWrite(c, 2, msg, true); err != nil {
			t.Fatal(err)
		}
		op, got, err := wsRead(c.br)
		if err != nil || op != 2 || !bytes.Equal(got, msg) {
			t.Fatalf("size %d: op %d, %d bytes, %v", size, op, len(got), err)
		}
	}
	wsWrite(c, 8, []byte{0x03, 0xe8}, true)
	if op, _, err := wsRead(c.br); err != nil || op != 8 {
		t.Fatalf("close: op %d %v", op, err)
	}
	c.expectClosed(t)
}

// TestTunnelIdleTimeout: a tunnel ends once nothing moved either way for
// the upstream read timeout (here the upstream half-closed at once and the
// client stays silent without closing: the tunnel held both connections
// for good), but traffic one way keeps it open past that.
func TestTunnelIdleTimeout(t *testing.T) {
	const switched = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	upgrade := func(t *testing.T, up string) *rawConn {
		p := startProxy(t, serverTOML("timeout = { upstream_read_timeout_sec = 1 }", routeTOML("/", "", up)), Options{})
		c := dialRaw(t, p.Addr)
		c.send(t, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if resp, err := readResponseHead(c.br); err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		return c
	}
	t.Run("idle", func(t *testing.T) {
		released := make(chan struct{})
		up := rawUpstream(t, func(c net.Conn) {
			c.Read(make([]byte, 4096))
			io.WriteString(c, switched)
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c) // until the proxy closes its side
			close(released)
		})
		upgrade(t, up)
		select {
		case <-released:
		case <-time.After(5 * time.Second):
			t.Fatal("the tunnel still holds the upstream connection 5s after it went quiet (timeout 1s)")
		}
	})
	t.Run("one-way", func(t *testing.T) {
		got := make(chan int, 1)
		up := rawUpstream(t, func(c net.Conn) {
			c.Read(make([]byte, 4096))
			io.WriteString(c, switched)
			n, _ := io.Copy(io.Discard, c) // reads, never answers
			got <- int(n)
		})
		c := upgrade(t, up)
		for range 8 { // 2.4s of a byte every 300ms, past the 1s timeout
			if _, err := c.Write([]byte{1}); err != nil {
				t.Fatalf("the tunnel ended under one-way traffic: %v", err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		c.Close()
		if n := <-got; n != 8 {
			t.Fatalf("the upstream got %d bytes, want 8", n)
		}
	})
}
