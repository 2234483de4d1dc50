package http1

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// chunkSource hands out its input in fixed chunks: as a Lender, each chunk
// in a buffer of its own that release poisons, so a slice used after its
// buffer went back reads '#'; as a plain io.Reader (lend false), the same
// chunk boundaries through Read.
type chunkSource struct {
	t        testing.TB
	chunks   [][]byte
	out      int // lent buffers not given back
	maxOut   int
	lends    int
	released int
}

func newChunkSource(t testing.TB, in []byte, sizes ...int) *chunkSource {
	s := &chunkSource{t: t}
	for i := 0; len(in) > 0; i++ {
		n := min(len(in), max(1, sizes[i%len(sizes)]))
		s.chunks = append(s.chunks, in[:n])
		in = in[n:]
	}
	return s
}

func (s *chunkSource) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	if s.chunks[0] = s.chunks[0][n:]; len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

func (s *chunkSource) ReadBorrow() ([]byte, func(), error) {
	if len(s.chunks) == 0 {
		return nil, func() {}, io.EOF
	}
	// A buffer larger than the chunk, as the kernel's are: bytes past the
	// chunk must never be read.
	buf := bytes.Repeat([]byte{'~'}, len(s.chunks[0])+16)
	b := buf[:copy(buf, s.chunks[0])]
	s.chunks = s.chunks[1:]
	s.out++
	s.lends++
	s.maxOut = max(s.maxOut, s.out)
	done := false
	return b, func() {
		if done {
			s.t.Fatal("a lent buffer was given back twice")
		}
		done = true
		s.out--
		s.released++
		for i := range buf {
			buf[i] = '#'
		}
	}, nil
}

// plainSource is a chunkSource that is not a Lender.
type plainSource struct{ s *chunkSource }

func (p plainSource) Read(b []byte) (int, error) { return p.s.Read(b) }

// transcript reads up to 8 requests with their bodies and describes them,
// each head described after its body was read (the head must outlive it).
// check, if not nil, runs after each ReadRequest.
func transcript(r *Reader, check func()) string {
	var sb strings.Builder
	var req Request
	var b Body
	for range 8 {
		err := r.ReadRequest(&req)
		if check != nil {
			check()
		}
		if err != nil {
			fmt.Fprintf(&sb, "error %v\n", err)
			break
		}
		b.Reset(r, req.BodyKind, req.ContentLength)
		body, err := io.ReadAll(&b)
		fmt.Fprintf(&sb, "%s %s %v host=%q kind=%v cl=%d ka=%v\n", req.Method, req.Target, req.Version, req.Host,
			req.BodyKind, req.ContentLength, req.KeepAlive)
		for _, h := range req.Headers {
			fmt.Fprintf(&sb, "  %s: %s\n", h.Name, h.Value)
		}
		fmt.Fprintf(&sb, "  body %q err %v\n", body, err)
		for _, h := range b.Trailers() {
			fmt.Fprintf(&sb, "  trailer %s: %s\n", h.Name, h.Value)
		}
		if err != nil {
			break
		}
	}
	return sb.String()
}

const lendStream = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n" +
	"\r\nPOST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 11\r\n\r\nhello world" +
	"POST /c HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\nX-Long: " + "0123456789abcdef0123456789abcdef" +
	"\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n" +
	"GET /d HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"

// TestReaderLent checks that heads read from lent buffers parse as from the
// Reader's own, for every way the stream can arrive in chunks, that the
// head outlives its body (the poisoned buffers would show), and that every
// lent buffer goes back once, no more than two at a time.
func TestReaderLent(t *testing.T) {
	in := []byte(lendStream)
	// Chunks that start where a head does, so that it is lent whole, and
	// end inside its body, so that the body's reads go past the lent buffer.
	c := strings.Index(lendStream, "POST /c")
	cEnd := strings.Index(lendStream, "hello\r\n6")
	b := strings.Index(lendStream, "POST /b")
	bEnd := strings.Index(lendStream, "hello world")
	for _, sizes := range [][]int{{len(in)}, {1}, {7}, {29}, {30}, {31}, {64}, {100, 3}, {2, 50}, {13, 200}, {len(in) - 20},
		cuts(c, cEnd+2), cuts(c, cEnd+8), cuts(c, cEnd+12), cuts(c, cEnd+20), cuts(c, cEnd+23), cuts(c, cEnd+30),
		cuts(b, bEnd+3), cuts(b, bEnd+11)} {
		plain := transcript(NewReader(plainSource{newChunkSource(t, in, sizes...)}), nil)
		src := newChunkSource(t, in, sizes...)
		r := NewReader(src)
		lent := transcript(r, nil)
		if lent != plain {
			t.Errorf("chunks %v: read from lent buffers:\n%s\nfrom the Reader's own:\n%s", sizes, lent, plain)
		}
		if !strings.Contains(plain, "GET /d") {
			t.Fatalf("chunks %v: the stream did not parse to its end:\n%s", sizes, plain)
		}
		if src.lends == 0 || src.maxOut > 2 {
			t.Errorf("chunks %v: %d buffers lent, up to %d at once", sizes, src.lends, src.maxOut)
		}
		r.Reset(nil)
		if src.out != 0 {
			t.Errorf("chunks %v: %d lent buffers not given back after Reset", sizes, src.out)
		}
	}
}

// cuts returns the chunk sizes that cut a stream at the offsets given
// (increasing), and after the last into 1000-byte chunks.
func cuts(offsets ...int) []int {
	var sizes []int
	last := 0
	for _, o := range offsets {
		sizes = append(sizes, o-last)
		last = o
	}
	return append(sizes, 1000)
}

// TestReaderLentInPlace checks that a head arriving whole is parsed in the
// lent buffer, not copied, and that GiveBack and ReleaseBuffer return it.
func TestReaderLentInPlace(t *testing.T) {
	in := []byte("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n")
	src := newChunkSource(t, in, 28)
	r := NewReader(src)
	var req Request
	if err := r.ReadRequest(&req); err != nil {
		t.Fatal(err)
	}
	if src.out != 1 || !r.InPlace() {
		t.Fatalf("%d buffers lent after the first head, want 1; in place: %v", src.out, r.InPlace())
	}
	r.GiveBack()
	if src.out != 0 || string(req.Target) != "##" {
		t.Fatalf("after GiveBack: %d buffers lent, target %q (want the poison: it was parsed in place)", src.out, req.Target)
	}
	if err := r.ReadRequest(&req); err != nil || string(req.Target) != "/b" {
		t.Fatalf("second request: %v %q", err, req.Target)
	}
	if b := r.ReleaseBuffer(); src.out != 0 || string(req.Target) != "##" {
		t.Fatalf("after ReleaseBuffer (%d bytes): %d buffers lent, target %q", len(b), src.out, req.Target)
	}
	if err := r.ReadRequest(&req); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}

	// Pipelined: the second head is in the first one's buffer. It moves to
	// the Reader's own buffer when the first head's buffer goes back.
	src = newChunkSource(t, in, len(in))
	r = NewReader(src)
	if err := r.ReadRequest(&req); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadRequest(&req); err != nil || string(req.Target) != "/b" || src.out != 0 || r.InPlace() {
		t.Fatalf("pipelined: %v %q, %d buffers lent, in place: %v", err, req.Target, src.out, r.InPlace())
	}
}

func FuzzReaderLent(f *testing.F) {
	f.Add([]byte(lendStream), uint8(7), uint8(50))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, a, b uint8) {
		if len(in) > 4096 {
			return
		}
		plainR := NewReader(plainSource{newChunkSource(t, in, int(a), int(b))})
		plainR.MaxHeadSize = 256
		src := newChunkSource(t, in, int(a), int(b))
		r := NewReader(src)
		r.MaxHeadSize = 256
		if lent, plain := transcript(r, nil), transcript(plainR, nil); lent != plain {
			t.Fatalf("read from lent buffers:\n%s\nfrom the Reader's own:\n%s", lent, plain)
		}
		r.Reset(nil)
		if src.out != 0 || src.maxOut > 2 {
			t.Fatalf("%d lent buffers kept after Reset, up to %d at once", src.out, src.maxOut)
		}
	})
}

// TestReaderUseLent checks a buffer handed over with UseLent: the head in
// it is parsed in place, and it goes back at the next head read.
func TestReaderUseLent(t *testing.T) {
	in := []byte("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n")
	src := newChunkSource(t, in, 28)
	r := NewReader(src)
	r.UseBuffer(make([]byte, 4096), 0)
	b, release, _ := src.ReadBorrow()
	r.UseLent(b, release)
	var req Request
	if err := r.ReadRequest(&req); err != nil || string(req.Target) != "/a" || src.out != 1 {
		t.Fatalf("first request: %v %q, %d buffers lent", err, req.Target, src.out)
	}
	target := req.Target
	if err := r.ReadRequest(&req); err != nil || string(req.Target) != "/b" {
		t.Fatalf("second request: %v %q", err, req.Target)
	}
	if string(target) != "##" || src.lends != 2 || src.out != 1 {
		t.Fatalf("first target now %q, %d lent, %d out: the first buffer should have gone back", target, src.lends, src.out)
	}
	r.Reset(nil)
	if src.out != 0 {
		t.Fatalf("%d buffers lent after Reset", src.out)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("UseLent with an empty buffer did not panic")
		}
	}()
	r.UseLent(nil, func() {})
}

// stingySource is a chunkSource that, as a Keeper, lets the Reader keep
// none of its buffers.
type stingySource struct{ *chunkSource }

func (stingySource) KeepLent() bool { return false }

// TestReaderLentNotKept: a Lender that says not to keep its buffers gets
// each back before the head in it is parsed, which is parsed in the
// Reader's own buffer, to the same result.
func TestReaderLentNotKept(t *testing.T) {
	in := []byte(lendStream)
	for _, sizes := range [][]int{{len(in)}, {7}, {64}, {100, 3}} {
		plain := transcript(NewReader(plainSource{newChunkSource(t, in, sizes...)}), nil)
		src := newChunkSource(t, in, sizes...)
		r := NewReader(stingySource{src})
		got := transcript(r, func() {
			if src.out != 0 || r.InPlace() {
				t.Fatalf("chunks %v: %d buffers kept after a head, in place: %v", sizes, src.out, r.InPlace())
			}
		})
		if got != plain {
			t.Errorf("chunks %v: lent but not kept:\n%s\nfrom the Reader's own:\n%s", sizes, got, plain)
		}
		if src.lends == 0 {
			t.Errorf("chunks %v: nothing was lent", sizes)
		}
	}
}

// TestReaderLentTooLarge: a head over MaxHeadSize gets the same error
// whether it arrives in one lent buffer larger than the limit or through
// the Reader's own buffer: 414 when the request line alone is over it,
// 431 when the field lines take it over.
func TestReaderLentTooLarge(t *testing.T) {
	const limit = 64
	for _, tc := range []struct {
		name, head string
		want       error
	}{
		{"long target", "GET /" + strings.Repeat("a", 2*limit) + " HTTP/1.1\r\nHost: a\r\n\r\n", ErrURITooLong},
		{"long target after empty lines", "\r\n\r\nGET /" + strings.Repeat("a", limit) + " HTTP/1.1\r\nHost: a\r\n\r\n", ErrURITooLong},
		{"long field", "GET / HTTP/1.1\r\nHost: a\r\nX-A: " + strings.Repeat("b", 2*limit) + "\r\n\r\n", ErrHeadTooLarge},
	} {
		for _, sizes := range [][]int{{len(tc.head)}, {limit / 2}, {7}} {
			for _, lend := range []bool{true, false} {
				var src io.Reader = newChunkSource(t, []byte(tc.head), sizes...)
				if !lend {
					src = plainSource{src.(*chunkSource)}
				}
				r := NewReader(src)
				r.MaxHeadSize = limit
				var req Request
				if err := r.ReadRequest(&req); err != tc.want {
					t.Errorf("%s, chunks %v, lent %v: %v, want %v", tc.name, sizes, lend, err, tc.want)
				}
			}
		}
	}
}
