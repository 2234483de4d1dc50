package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"
)

var chunkedTests = []struct {
	name     string
	in       string
	body     string
	trailers string // "Name: value\r\n" lines
	rest     string // left buffered after the body
	err      error
}{
	{name: "one chunk", in: "5\r\nhello\r\n0\r\n\r\n", body: "hello"},
	{name: "empty body", in: "0\r\n\r\n"},
	{name: "several chunks", in: "3\r\nabc\r\n1\r\nd\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n", body: "abcd0123456789abcdef"},
	{name: "upper-case hex", in: "A\r\n0123456789\r\n0\r\n\r\n", body: "0123456789"},
	{name: "leading zeros", in: "005\r\nhello\r\n000\r\n\r\n", body: "hello"},
	{name: "extensions", in: "5;name=value;flag\r\nhello\r\n0;last=\"yes\"\r\n\r\n", body: "hello"},
	{name: "extension after BWS", in: "5 \t;x\r\nhello\r\n0\r\n\r\n", body: "hello"},
	{name: "trailers", in: "5\r\nhello\r\n0\r\nX-Sum: 42\r\nX-B:  two \r\n\r\n", body: "hello", trailers: "X-Sum: 42\r\nX-B: two\r\n"},
	{name: "rest kept", in: "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", body: "hello", rest: "GET / HTTP/1.1\r\n"},

	{name: "no size", in: "\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
	{name: "bad size", in: "x\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
	{name: "hex prefix", in: "0x5\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
	{name: "size overflow", in: "1000000000000000\r\n", err: ErrBadChunk},
	{name: "junk after size", in: "5 x\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
	{name: "control in extension", in: "5;a\x01\r\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
	{name: "bare LF size line", in: "5\nhello\r\n0\r\n\r\n", err: ErrBadChunk},
	{name: "data too long", in: "5\r\nhelloX\r\n0\r\n\r\n", err: ErrBadChunk},
	{name: "bare LF after data", in: "5\r\nhello\n0\r\n\r\n", err: ErrBadChunk},
	{name: "bare LF ends trailers", in: "0\r\n\n", err: ErrBadChunk},
	{name: "bare LF in trailer", in: "0\r\nX: y\n\r\n", err: ErrBadChunk},
	{name: "trailer obs-fold", in: "0\r\nX: y\r\n z\r\n\r\n", err: ErrBadChunk},
	{name: "trailer bad name", in: "0\r\nX y: z\r\n\r\n", err: ErrBadChunk},
	{name: "size line too long", in: "5;" + strings.Repeat("e", maxChunkLineSize) + "\r\nhello\r\n0\r\n\r\n", err: ErrChunkLineTooLong},
	{name: "trailers too large", in: "0\r\nX: " + strings.Repeat("t", DefaultMaxHeadSize) + "\r\n\r\n", err: ErrTrailersTooLarge},
	{name: "truncated data", in: "5\r\nhel", err: io.ErrUnexpectedEOF},
	{name: "truncated size", in: "5", err: io.ErrUnexpectedEOF},
	{name: "no last chunk", in: "5\r\nhello\r\n", err: io.ErrUnexpectedEOF},
	{name: "truncated trailers", in: "0\r\nX: y\r\n", err: io.ErrUnexpectedEOF},
}

func TestChunkedReader(t *testing.T) {
	for _, tt := range chunkedTests {
		for rname, rd := range readers(tt.in) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				r := NewReader(rd)
				var b Body
				b.Reset(r, BodyChunked, -1)
				got, err := io.ReadAll(&b)
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("err = %v, want %v", err, tt.err)
					}
					// Errors are sticky.
					if _, err2 := b.Read(make([]byte, 8)); err2 != err {
						t.Fatalf("second Read err = %v, want %v", err2, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if string(got) != tt.body {
					t.Fatalf("body = %q, want %q", got, tt.body)
				}
				if tr := string(b.Trailers().AppendTo(nil)); tr != tt.trailers {
					t.Fatalf("trailers = %q, want %q", tr, tt.trailers)
				}
				rest, _ := io.ReadAll(r)
				if string(rest) != tt.rest {
					t.Fatalf("rest = %q, want %q", rest, tt.rest)
				}
			})
		}
	}
}

func TestChunkedTrailersBeforeEOF(t *testing.T) {
	var b Body
	b.Reset(NewReader(strings.NewReader("1\r\na\r\n0\r\nX: y\r\n\r\n")), BodyChunked, -1)
	if b.Trailers() != nil {
		t.Fatal("trailers before the body was read")
	}
	if _, err := io.Copy(io.Discard, &b); err != nil {
		t.Fatal(err)
	}
	if string(b.Trailers().Get("x")) != "y" {
		t.Fatal("trailer lost")
	}
}

// ChunkedWriter output decodes to what was written, trailers included.
func TestChunkedRoundTrip(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 4096)
	for _, tt := range []struct {
		name     string
		writes   []string
		trailers Headers
	}{
		{"empty", nil, nil},
		{"one", []string{"hello"}, nil},
		{"many", []string{"a", "", "bc", big, "d"}, nil},
		{"trailers", []string{"hello", " world"}, Headers{
			{Name: []byte("X-Checksum"), Value: []byte("abc")},
			{Name: []byte("Server-Timing"), Value: []byte("db;dur=53")},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var wire bytes.Buffer
			var cw ChunkedWriter
			cw.Reset(&wire)
			var want strings.Builder
			for _, w := range tt.writes {
				if n, err := cw.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				want.WriteString(w)
			}
			if err := cw.Finish(tt.trailers); err != nil {
				t.Fatal(err)
			}
			var b Body
			b.Reset(NewReader(iotest.HalfReader(&wire)), BodyChunked, -1)
			got, err := io.ReadAll(&b)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want.String() {
				t.Fatalf("body differs: %d bytes, want %d", len(got), want.Len())
			}
			if g, w := string(b.Trailers().AppendTo(nil)), string(tt.trailers.AppendTo(nil)); g != w {
				t.Fatalf("trailers = %q, want %q", g, w)
			}
		})
	}
}

func TestChunkedWriterOneWritePerChunk(t *testing.T) {
	var cw writeCounter
	var w ChunkedWriter
	w.Reset(&cw)
	w.Write([]byte("abc"))
	w.Write(nil)
	w.Finish(Headers{{Name: []byte("T"), Value: []byte("v")}})
	if cw.n != 2 || cw.buf.String() != "3\r\nabc\r\n0\r\nT: v\r\n\r\n" {
		t.Fatalf("%d writes: %q", cw.n, cw.buf.String())
	}
}

type writeCounter struct {
	n   int
	buf bytes.Buffer
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.n++
	return w.buf.Write(p)
}

func TestContentLengthReader(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		n        int64
		want     string
		err      error
	}{
		{"exact", "hello", 5, "hello", nil},
		{"stops at length", "helloGET", 5, "hello", nil},
		{"zero", "x", 0, "", nil},
		{"short", "hel", 5, "hel", io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.NewReader(tt.in)
			var c ContentLengthReader
			c.Reset(iotest.OneByteReader(src), tt.n)
			got, err := io.ReadAll(&c)
			if err != tt.err || string(got) != tt.want {
				t.Fatalf("ReadAll = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
			if tt.err == nil && src.Len() != len(tt.in)-int(tt.n) {
				t.Fatalf("read past the body: %d bytes left", src.Len())
			}
		})
	}
}

func TestCopier(t *testing.T) {
	const chunked = "5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n"
	for _, tt := range []struct {
		name   string
		in     string
		kind   BodyKind
		length int64
		as     BodyKind
		want   string
		err    error
	}{
		{"length as length", "hello world", BodyLength, 5, BodyLength, "hello", nil},
		{"chunked as chunked", chunked, BodyChunked, -1, BodyChunked, "5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n", nil},
		{"chunked as close", chunked, BodyChunked, -1, BodyClose, "hello world", nil},
		{"close as chunked", "hello world", BodyClose, -1, BodyChunked, "b\r\nhello world\r\n0\r\n\r\n", nil},
		{"length as chunked", "hello", BodyLength, 5, BodyChunked, "5\r\nhello\r\n0\r\n\r\n", nil},
		{"none as none", "GET", BodyNone, 0, BodyNone, "", nil},
		{"none as chunked", "GET", BodyNone, 0, BodyChunked, "0\r\n\r\n", nil},
		{"chunked as length", chunked, BodyChunked, -1, BodyLength, "", ErrBodyKind},
		{"truncated", "hel", BodyLength, 5, BodyLength, "hel", io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b Body
			b.Reset(NewReader(strings.NewReader(tt.in)), tt.kind, tt.length)
			var out bytes.Buffer
			c := Copier{Buf: make([]byte, 64)}
			_, err := c.Copy(&out, &b, tt.as)
			if err != tt.err || out.String() != tt.want {
				t.Fatalf("Copy wrote %q, %v; want %q, %v", out.String(), err, tt.want, tt.err)
			}
		})
	}
}

// A body larger than the copy buffer streams through it in several chunks.
func TestCopierStreams(t *testing.T) {
	body := strings.Repeat("x", 1000)
	var b Body
	b.Reset(NewReader(strings.NewReader(body)), BodyLength, int64(len(body)))
	var wire writeCounter
	c := Copier{Buf: make([]byte, 128)}
	n, err := c.Copy(&wire, &b, BodyChunked)
	if err != nil || n != int64(len(body)) {
		t.Fatalf("Copy = %d, %v", n, err)
	}
	if wire.n < 1000/128 {
		t.Fatalf("only %d writes: body was not streamed", wire.n)
	}
	var back Body
	back.Reset(NewReader(&wire.buf), BodyChunked, -1)
	got, err := io.ReadAll(&back)
	if err != nil || string(got) != body {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
}

// readSpy records the slices it is asked to read into.
type readSpy struct {
	r    io.Reader
	into [][]byte
}

func (s *readSpy) Read(p []byte) (int, error) {
	s.into = append(s.into, p)
	return s.r.Read(p)
}

// Into a bufio.Writer (a writer showing its free space), Copy reads each
// part of a body straight into the writer's buffer, flushing it when less
// than 4 KiB are free, and the body arrives whole through every size of
// writer.
func TestCopierReadsIntoWriter(t *testing.T) {
	body := make([]byte, 100<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for _, size := range []int{16, 4 << 10, 5 << 10, 32 << 10, 200 << 10} {
		var wire bytes.Buffer
		bw := bufio.NewWriterSize(&wire, size)
		wbuf := bw.AvailableBuffer()[:bw.Available()]
		spy := &readSpy{r: iotest.HalfReader(bytes.NewReader(body))}
		var b Body
		b.Reset(NewReader(spy), BodyLength, int64(len(body)))
		c := Copier{Buf: make([]byte, 1<<10)}
		if n, err := c.Copy(bw, &b, BodyLength); err != nil || n != int64(len(body)) {
			t.Fatalf("writer of %d: Copy = %d, %v", size, n, err)
		}
		bw.Flush()
		if !bytes.Equal(wire.Bytes(), body) {
			t.Fatalf("writer of %d: body differs", size)
		}
		direct := 0
		for _, p := range spy.into {
			at, lo := uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(unsafe.Pointer(unsafe.SliceData(wbuf)))
			if at >= lo && at < lo+uintptr(len(wbuf)) {
				direct++
			}
		}
		reads := len(spy.into)
		if size >= minDirectRead && direct != reads || size < minDirectRead && direct != 0 {
			t.Errorf("writer of %d: %d of %d body reads into its buffer", size, direct, reads)
		}
	}
}

func TestCopierWriteError(t *testing.T) {
	var b Body
	b.Reset(NewReader(strings.NewReader("hello")), BodyLength, 5)
	var c Copier
	_, err := c.Copy(failWriter{}, &b, BodyLength)
	var we *WriteError
	if !errors.As(err, &we) || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("err = %v, want *WriteError", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// TestTrailersForwarded: a copied chunked body keeps its trailer fields
// but those a trailer must not carry (framing, routing, hop-by-hop).
func TestTrailersForwarded(t *testing.T) {
	in := "3\r\nabc\r\n0\r\nX-Sum: 1\r\nContent-Length: 5\r\nHost: evil\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n"
	var b Body
	b.Reset(NewReader(strings.NewReader(in)), BodyChunked, -1)
	var wire bytes.Buffer
	c := Copier{Buf: make([]byte, 64)}
	if _, err := c.Copy(&wire, &b, BodyChunked); err != nil {
		t.Fatal(err)
	}
	if want := "3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n"; wire.String() != want {
		t.Fatalf("copied %q, want %q", wire.String(), want)
	}
	var out bytes.Buffer
	var cw ChunkedWriter
	cw.Reset(&out)
	if err := cw.Finish(b.Trailers()); err != nil {
		t.Fatal(err)
	}
	if want := "0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n"; out.String() != want {
		t.Fatalf("Finish wrote %q, want %q", out.String(), want)
	}
}

// TestBodyLimit: a Body with a limit gives the first limit bytes of a
// longer body and then ErrBodyTooLarge, whatever the framing and read
// size; a body of exactly the limit ends with io.EOF; Copy passes the
// error on; Reset removes the limit.
func TestBodyLimit(t *testing.T) {
	const limit = 10
	for _, tc := range []struct {
		name string
		kind BodyKind
		in   string
		body string
		err  error
	}{
		{"chunked over", BodyChunked, "6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n", "hello worl", ErrBodyTooLarge},
		{"chunked at", BodyChunked, "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", "helloworld", nil},
		{"close over", BodyClose, "hello world!", "hello worl", ErrBodyTooLarge},
		{"close at", BodyClose, "helloworld", "helloworld", nil},
		{"length under", BodyLength, "hello", "hello", nil},
	} {
		for _, size := range []int{1, 3, 64} {
			var b Body
			b.Reset(NewReader(iotest.HalfReader(strings.NewReader(tc.in))), tc.kind, int64(len(tc.in)))
			b.SetLimit(limit)
			var got []byte
			buf := make([]byte, size)
			var err error
			for {
				var n int
				n, err = b.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			if err == io.EOF {
				err = nil
			}
			if string(got) != tc.body || err != tc.err {
				t.Errorf("%s, reads of %d: %q, %v; want %q, %v", tc.name, size, got, err, tc.body, tc.err)
			}
		}
		var b Body
		b.Reset(NewReader(strings.NewReader(tc.in)), tc.kind, int64(len(tc.in)))
		b.SetLimit(limit)
		var out bytes.Buffer
		if _, err := (&Copier{}).Copy(&out, &b, BodyClose); err != tc.err || out.String() != tc.body {
			t.Errorf("%s: Copy gave %q, %v; want %q, %v", tc.name, out.String(), err, tc.body, tc.err)
		}
		b.Reset(NewReader(strings.NewReader(tc.in)), tc.kind, int64(len(tc.in)))
		if all, err := io.ReadAll(&b); err != nil || len(all) < len(tc.body) {
			t.Errorf("%s: after Reset: %q, %v", tc.name, all, err)
		}
	}
}

// Body.Ready on a chunked body counts data and the body's end, not the
// framing between chunks.
func TestBodyReadyChunked(t *testing.T) {
	for _, tt := range []struct {
		in    string // all there is; "hello" is read first
		ready bool
	}{
		{"5\r\nhello\r\n", false},                   // CRLF only
		{"5\r\nhello\r\n3\r\n", false},              // a size line, no data
		{"5\r\nhello\r\n3\r\na", true},              // data of the next chunk
		{"5\r\nhello\r\n0\r\n", false},              // the last chunk, no end yet
		{"5\r\nhello\r\n0\r\n\r\n", true},           // the end
		{"5\r\nhello\r\n0\r\nX-A: 1\r\n", false},    // trailers, not all there
		{"5\r\nhello\r\n0\r\nX-A: 1\r\n\r\n", true}, // the end after trailers
		{"5\r\nhello\r\nzz\r\n", true},              // Read fails at once
		{"5\r\nhello", true},                        // "hel" read, "lo" at hand
	} {
		var b Body
		b.Reset(NewReader(strings.NewReader(tt.in)), BodyChunked, -1)
		first := 5
		if tt.in == "5\r\nhello" {
			first = 3
		}
		if _, err := io.ReadFull(&b, make([]byte, first)); err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if got := b.Ready(); got != tt.ready {
			t.Errorf("%q: Ready = %v, want %v", tt.in, got, tt.ready)
		}
	}
}

// A chunk read past the Reader's buffer leaves the framing after it in the
// source: Ready takes it from a source that holds it (without waiting) and
// says the end is there; a source that holds nothing more is not ready.
func TestBodyReadyChunkedFromSource(t *testing.T) {
	data := strings.Repeat("d", 5000)
	for _, tt := range []struct {
		after string
		ready bool
	}{
		{"\r\n0\r\n\r\n", true},
		{"\r\n", false},
		{"", false},
	} {
		src := &heldSource{s: fmt.Sprintf("%x\r\n%s%s", len(data), data, tt.after), step: 1 << 20}
		var b Body
		b.Reset(NewReader(src), BodyChunked, -1)
		if got, err := io.ReadAll(io.LimitReader(&b, int64(len(data)))); err != nil || string(got) != data {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		if got := b.Ready(); got != tt.ready {
			t.Errorf("framing %q left in the source: Ready = %v, want %v", tt.after, got, tt.ready)
		}
	}
}
