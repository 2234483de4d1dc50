package http1

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// maxFuzzSeed leaves out the table's limit tests (kilobytes of padding):
// the fuzzer spends its time minimizing their offspring. The fuzz Readers use
// a small MaxHeadSize so that limits are still reached.
const maxFuzzSeed = 512

func FuzzParseRequest(f *testing.F) {
	for _, tt := range requestTests {
		if len(tt.in) <= maxFuzzSeed {
			f.Add([]byte(tt.in))
		}
	}
	f.Add([]byte("POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: t\r\n\r\n" +
		"GET /5 HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		// Whole or a byte at a time, the first request parses the same. The
		// one difference allowed: a head that never ends is rejected early
		// when it arrives whole, but waited for when it trickles in (see
		// Reader.readHead).
		var whole, trickled Request
		rw := NewReader(bytes.NewReader(in))
		rw.MaxHeadSize = 256
		rt := NewReader(iotest.OneByteReader(bytes.NewReader(in)))
		rt.MaxHeadSize = 256
		errW, errT := rw.ReadRequest(&whole), rt.ReadRequest(&trickled)
		var pe *ProtocolError
		neverEnds := (errT == io.ErrUnexpectedEOF || errT == ErrHeadTooLarge || errT == ErrURITooLong) && errors.As(errW, &pe)
		if errW != errT && !neverEnds || errW == nil && !sameRequest(&whole, &trickled) {
			t.Fatalf("whole: %v; a byte at a time: %v", errW, errT)
		}

		r := NewReader(bytes.NewReader(in))
		r.MaxHeadSize = 256
		var req, again Request
		var b Body
		for range 8 {
			err := r.ReadRequest(&req)
			if err != nil {
				var pe *ProtocolError
				if errors.As(err, &pe) && pe.Status != 400 && pe.Status != 414 && pe.Status != 431 && pe.Status != 501 && pe.Status != 505 {
					t.Fatalf("status %d", pe.Status)
				}
				return
			}
			if req.Version == HTTP11 && req.Host == nil {
				t.Fatal("HTTP/1.1 request without Host accepted")
			}
			if req.BodyKind == BodyChunked && (req.ContentLength >= 0 || req.Version != HTTP11) {
				t.Fatal("ambiguous framing accepted")
			}
			head := req.AppendHead(nil)
			if err := NewReader(bytes.NewReader(head)).ReadRequest(&again); err != nil {
				t.Fatalf("serialized head %q does not parse: %v", head, err)
			}
			if !sameRequest(&req, &again) {
				t.Fatalf("serialized head %q parses differently", head)
			}
			b.Reset(r, req.BodyKind, req.ContentLength)
			if _, err := io.Copy(io.Discard, &b); err != nil {
				return
			}
		}
	})
}

func FuzzChunked(f *testing.F) {
	for _, tt := range chunkedTests {
		if len(tt.in) <= maxFuzzSeed {
			f.Add([]byte(tt.in))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		r.MaxHeadSize = 256
		var b Body
		b.Reset(r, BodyChunked, -1)
		body, err := io.ReadAll(&b)

		// A byte at a time decodes the same, or fails the same way.
		rt := NewReader(iotest.OneByteReader(bytes.NewReader(in)))
		rt.MaxHeadSize = 256
		var bt Body
		bt.Reset(rt, BodyChunked, -1)
		bodyT, errT := io.ReadAll(&bt)
		if errT != err || !bytes.Equal(body, bodyT) {
			t.Fatalf("whole: %d bytes, %v; a byte at a time: %d bytes, %v", len(body), err, len(bodyT), errT)
		}
		if err != nil {
			return
		}
		trailers := string(b.Trailers().appendTrailerFields(nil, nil)) // what a copy forwards
		rest, _ := io.ReadAll(r)

		// Re-chunk through a small Copier buffer and decode again.
		var b2 Body
		r2 := NewReader(bytes.NewReader(in))
		r2.MaxHeadSize = 256
		b2.Reset(r2, BodyChunked, -1)
		var wire bytes.Buffer
		c := Copier{Buf: make([]byte, 64)}
		if n, err := c.Copy(&wire, &b2, BodyChunked); err != nil || n != int64(len(body)) {
			t.Fatalf("Copy = %d, %v", n, err)
		}
		wire.WriteString("tail")
		r3 := NewReader(&wire)
		var b3 Body
		b3.Reset(r3, BodyChunked, -1)
		body3, err := io.ReadAll(&b3)
		if err != nil {
			t.Fatalf("re-chunked body does not decode: %v", err)
		}
		if !bytes.Equal(body, body3) || string(b3.Trailers().AppendTo(nil)) != trailers {
			t.Fatal("re-chunked body or trailers differ")
		}
		if tail, _ := io.ReadAll(r3); string(tail) != "tail" {
			t.Fatalf("decoder read past the body: %q", tail)
		}
		if len(rest) > len(in) {
			t.Fatal("rest longer than input")
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, tt := range responseTests {
		f.Add([]byte(tt.in), tt.method == "HEAD")
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		method := []byte("GET")
		if head {
			method = []byte("HEAD")
		}
		var whole, trickled, again Response
		rw := NewReader(bytes.NewReader(in))
		rw.MaxHeadSize = 256
		rt := NewReader(iotest.OneByteReader(bytes.NewReader(in)))
		rt.MaxHeadSize = 256
		errW, errT := rw.ReadResponse(&whole, method), rt.ReadResponse(&trickled, method)
		var pe *ProtocolError
		neverEnds := (errT == io.ErrUnexpectedEOF || errT == errRespHeadTooLarge) && errors.As(errW, &pe)
		if errW != errT && !neverEnds || errW == nil && !sameResponse(&whole, &trickled) {
			t.Fatalf("whole: %v; a byte at a time: %v", errW, errT)
		}
		if errW != nil {
			if errors.As(errW, &pe) && pe.Status != 502 {
				t.Fatalf("status %d", pe.Status)
			}
			return
		}
		if head && whole.BodyKind != BodyNone {
			t.Fatal("body on a response to HEAD")
		}
		out := whole.AppendHead(nil)
		err := NewReader(bytes.NewReader(out)).ReadResponse(&again, method)
		if len(whole.Reason) == 0 {
			again.Reason = nil // AppendStatusLine supplies StatusText
		}
		if err != nil || !sameResponse(&whole, &again) {
			t.Fatalf("serialized head %q: %v", out, err)
		}
		var b Body
		b.Reset(rw, whole.BodyKind, whole.ContentLength)
		io.Copy(io.Discard, &b)
	})
}

func sameResponse(a, b *Response) bool {
	if a.Version != b.Version || a.Status != b.Status || !bytes.Equal(a.Reason, b.Reason) ||
		a.BodyKind != b.BodyKind || a.ContentLength != b.ContentLength || a.KeepAlive != b.KeepAlive ||
		len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if !bytes.Equal(a.Headers[i].Name, b.Headers[i].Name) || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}
