package http1

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// Data returned together with an error is used before the error is seen.
func TestReaderDataWithError(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
	r := NewReader(iotest.DataErrReader(strings.NewReader(in)))
	var req Request
	if err := r.ReadRequest(&req); err != nil {
		t.Fatal(err)
	}
	var b Body
	b.Reset(r, req.BodyKind, req.ContentLength)
	if body, err := io.ReadAll(&b); err != nil || string(body) != "abc" {
		t.Fatalf("body %q, %v", body, err)
	}
	if err := r.ReadRequest(&req); err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name string
		rd   io.Reader
		want error
	}{
		{"error mid head", io.MultiReader(strings.NewReader("GET / HT"), iotest.ErrReader(boom)), boom},
		{"error before head", iotest.ErrReader(boom), boom},
		{"no progress", zeroReader{}, io.ErrNoProgress},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			if err := NewReader(tt.rd).ReadRequest(&req); err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// After an upgrade the caller reads the raw stream: buffered bytes first,
// then straight from the connection.
func TestReaderRawAfterHead(t *testing.T) {
	in := "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
	r := NewReader(strings.NewReader(in))
	var req Request
	if err := r.ReadRequest(&req); err != nil || !req.Upgrade {
		t.Fatalf("upgrade %v, err %v", req.Upgrade, err)
	}
	if r.Buffered() != 7 {
		t.Fatalf("Buffered = %d, want 7", r.Buffered())
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "\x81\x05hello" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// A Reader is reused across connections: Reset drops what was buffered.
func TestReaderReset(t *testing.T) {
	r := NewReader(strings.NewReader("GET /a HTTP/1.1\r\nHost: a\r\n\r\nleftover"))
	var req Request
	if err := r.ReadRequest(&req); err != nil {
		t.Fatal(err)
	}
	r.Reset(strings.NewReader("GET /b HTTP/1.1\r\nHost: b\r\n\r\n"))
	if r.Buffered() != 0 {
		t.Fatal("Reset kept buffered bytes")
	}
	if err := r.ReadRequest(&req); err != nil || string(req.Target) != "/b" {
		t.Fatalf("target %q, %v", req.Target, err)
	}
}

func TestBodyKindString(t *testing.T) {
	for k, want := range map[BodyKind]string{BodyNone: "none", BodyLength: "length", BodyChunked: "chunked", BodyClose: "close", 9: "invalid"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
}

// TestReaderReleaseBuffer: a Reader between requests gives its buffer up
// and takes another with bytes already received; it keeps the buffer while
// bytes are buffered.
func TestReaderReleaseBuffer(t *testing.T) {
	src := strings.NewReader("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	rd := NewReader(src)
	if rd.ReleaseBuffer() != nil {
		t.Fatal("a new Reader released a buffer it does not have")
	}
	var req Request
	if err := rd.ReadRequest(&req); err != nil {
		t.Fatal(err)
	}
	if rd.Buffered() == 0 || rd.ReleaseBuffer() != nil {
		t.Fatal("released the buffer with the second request buffered")
	}
	if err := rd.ReadRequest(&req); err != nil || string(req.Target) != "/b" {
		t.Fatalf("second request: %q %v", req.Target, err)
	}
	b := rd.ReleaseBuffer()
	if len(b) != initialBufSize {
		t.Fatalf("released %d bytes, want the %d-byte buffer", len(b), initialBufSize)
	}
	// The next request's first byte arrived before the buffer came back.
	rd.Reset(strings.NewReader("ET /c HTTP/1.1\r\nHost: x\r\n\r\n"))
	rd.ReleaseBuffer()
	b[0] = 'G'
	rd.UseBuffer(b, 1)
	if err := rd.ReadRequest(&req); err != nil || string(req.Method) != "GET" || string(req.Target) != "/c" {
		t.Fatalf("request after UseBuffer: %q %q %v", req.Method, req.Target, err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("UseBuffer on a Reader with a buffer did not panic")
		}
	}()
	rd.UseBuffer(make([]byte, 10), 0)
}

// TestBodyUnreadMoved: Unread follows a length body's reads, Moved skips
// bytes taken past the Reader, and other framings or a limit report false.
func TestBodyUnreadMoved(t *testing.T) {
	// The "moved" bytes stand for ones a splice took from the socket.
	src := strings.NewReader("0123456789" + "NEXT")
	r := NewReader(src)
	var b Body
	b.Reset(r, BodyLength, 10)
	if n, ok := b.Unread(); !ok || n != 10 {
		t.Fatalf("Unread() = %d, %v; want 10, true", n, ok)
	}
	p := make([]byte, 3)
	if n, err := b.Read(p); n != 3 || err != nil || string(p) != "012" {
		t.Fatalf("Read = %d, %v, %q", n, err, p[:n])
	}
	if n, _ := b.Unread(); n != 7 {
		t.Fatalf("Unread() after 3 = %d, want 7", n)
	}
	io.CopyN(io.Discard, src, 5) // a splice takes "34567" past r
	b.Moved(5)
	rest, err := io.ReadAll(&b)
	if err != nil || string(rest) != "89" {
		t.Fatalf("after Moved(5): %q, %v; want \"89\"", rest, err)
	}
	if n, _ := b.Unread(); n != 0 {
		t.Fatalf("Unread() at the end = %d", n)
	}
	b.Moved(3) // past the end: nothing left, no underflow
	if n, _ := b.Unread(); n != 0 {
		t.Fatalf("Unread() after Moved past the end = %d", n)
	}

	b.Reset(r, BodyChunked, 0)
	if _, ok := b.Unread(); ok {
		t.Error("Unread() reported a chunked body")
	}
	b.Reset(r, BodyLength, 10)
	b.SetLimit(5)
	if _, ok := b.Unread(); ok {
		t.Error("Unread() reported a body with a limit")
	}
}

// heldSource is a BufferedSource over a string that hands out at most step
// bytes per Read and counts the Buffered calls.
type heldSource struct {
	s     string
	step  int
	calls int
}

func (h *heldSource) Read(p []byte) (int, error) {
	if h.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), h.step)], h.s)
	h.s = h.s[n:]
	return n, nil
}

func (h *heldSource) Buffered() int { h.calls++; return len(h.s) }

// Ready counts buffered bytes, and the source's only when the last read
// filled the room it was given: a short read means the source had no more.
func TestReaderReady(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n"
	src := &heldSource{s: head + strings.Repeat("x", 10000), step: 1 << 20}
	r := NewReader(src)
	var resp Response
	if err := r.ReadResponse(&resp, []byte("GET")); err != nil {
		t.Fatal(err)
	}
	// The head's read filled the 4 KiB buffer.
	if got, want := r.Ready(), initialBufSize-len(head); got != want || src.calls != 0 {
		t.Fatalf("Ready = %d (%d source calls), want %d buffered", got, src.calls, want)
	}
	io.ReadFull(r, make([]byte, r.Buffered()))
	if got, want := r.Ready(), len(src.s); got != want || src.calls != 1 {
		t.Fatalf("Ready after a full read = %d (%d source calls), want %d from the source", got, src.calls, want)
	}
	// A read that did not fill p: the source is not asked.
	n, _ := r.Read(make([]byte, 20000))
	if got := r.Ready(); n == 0 || got != 0 || src.calls != 1 {
		t.Fatalf("Ready after a short read = %d (%d source calls), want 0 without asking", got, src.calls)
	}
	// A read that filled p: asked again.
	src.s, src.step = "yyyy", 2
	if n, _ := r.Read(make([]byte, 2)); n != 2 || r.Ready() != 2 || src.calls != 2 {
		t.Fatalf("Ready after a full raw read: %d source calls", src.calls)
	}
	// Not a BufferedSource: buffered bytes only.
	r.Reset(strings.NewReader(head + "abc"))
	if err := r.ReadResponse(&resp, []byte("GET")); err != nil || r.Ready() != 3 {
		t.Fatalf("Ready = %d, %v, want 3", r.Ready(), err)
	}
	io.ReadFull(r, make([]byte, 3))
	if r.Ready() != 0 {
		t.Fatalf("Ready = %d with nothing buffered from a plain reader", r.Ready())
	}
}
