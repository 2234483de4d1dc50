package httpproxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/monolake-go/monolake/proxy/http1"
)

// GzipConfig sets the compression layer; zero means default.
type GzipConfig struct {
	// Level is the gzip level (default 1, as nginx's gzip_comp_level).
	Level int
	// MinLength skips responses whose Content-Length is below it
	// (default 256 bytes).
	MinLength int64
}

// GzipLayer compresses responses with gzip when the client accepts it, the
// upstream did not encode the body, and the type is text-like. It streams:
// each read of the upstream body is compressed and sent on as a chunk, never
// holding the body whole. A compressed response loses the upstream's
// trailers, as nginx drops them.
//
// It panics when cfg.Level is not a level of compress/gzip (-2 to 9), as a
// mistake found at build time rather than by the first response.
func GzipLayer(cfg GzipConfig) Middleware {
	if cfg.Level == 0 {
		cfg.Level = gzip.BestSpeed
	}
	if _, err := gzip.NewWriterLevel(nil, cfg.Level); err != nil {
		panic(fmt.Sprintf("httpproxy: GzipLayer: level %d: want %d to %d", cfg.Level, gzip.HuffmanOnly, gzip.BestCompression))
	}
	if cfg.MinLength == 0 {
		cfg.MinLength = 256
	}
	pool := &sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, cfg.Level)
		return &gzipBody{zw: w}
	}}
	return func(inner Service) Service {
		return gzipService{cfg: cfg, pool: pool, inner: inner}
	}
}

type gzipService struct {
	cfg   GzipConfig
	pool  *sync.Pool
	inner Service
}

var (
	hContentEncoding = []byte("Content-Encoding")
	hVary            = []byte("Vary")
	vGzip            = []byte("gzip")
	vAcceptEncoding  = []byte("Accept-Encoding")
)

func (s gzipService) Call(ctx context.Context, req *Request) (*Response, error) {
	accepts := acceptsGzip(req.Head.Headers)
	// A response to HEAD gets the head the same GET would get (RFC 9110
	// 9.3.2): Vary, Content-Encoding, no Content-Length, a weak ETag.
	head := bytes.Equal(req.Head.Method, []byte("HEAD"))
	resp, err := s.inner.Call(ctx, req)
	if err != nil || resp == nil || resp.Tunnel != nil || !head && (resp.Body == nil || resp.BodyKind == http1.BodyNone) {
		return resp, err
	}
	if resp.Status < 200 || resp.Status == 204 || resp.Status == 206 || resp.Status == 304 ||
		req.Head.Version != http1.HTTP11 || // nginx's gzip_http_version 1.1: 1.0 would lose keep-alive
		resp.Headers.Has("Content-Encoding") ||
		(resp.BodyKind == http1.BodyLength || head) && resp.ContentLength >= 0 && resp.ContentLength < s.cfg.MinLength ||
		!compressible(resp.Headers.Get("Content-Type")) ||
		resp.Headers.HasToken("Cache-Control", "no-transform") { // RFC 9110 7.7
		return resp, nil
	}
	// The answer depends on Accept-Encoding from here on, whether this
	// client gets gzip or not: a shared cache must keep both apart.
	if !varies(resp.Headers) {
		resp.Headers = append(resp.Headers, http1.Header{Name: hVary, Value: vAcceptEncoding})
	}
	if !accepts {
		return resp, nil
	}
	if !head {
		gb := s.pool.Get().(*gzipBody)
		gb.reset(resp.Body, s.pool)
		resp.Body = gb
		resp.BodyKind = http1.BodyChunked
		resp.ContentLength = -1
	}
	// Drop the upstream's length and what describes the identity bytes
	// (ranges of them, their digest); the server frames the body itself.
	// A strong validator becomes weak, as nginx makes it: the gzip bytes
	// are not those the upstream's ETag names, and a range request with
	// If-Range on it would get identity bytes to append to gzip ones.
	hs := resp.Headers[:0]
	for _, f := range resp.Headers {
		switch {
		case equalFold(f.Name, "Content-Length"), equalFold(f.Name, "Accept-Ranges"),
			equalFold(f.Name, "Content-MD5"), equalFold(f.Name, "Digest"):
			continue
		case equalFold(f.Name, "ETag") && !bytes.HasPrefix(f.Value, []byte("W/")):
			f.Value = req.Scratch([]byte("W/"), f.Value)
		}
		hs = append(hs, f)
	}
	resp.Headers = append(hs, http1.Header{Name: hContentEncoding, Value: vGzip})
	return resp, nil
}

// acceptsGzip reads Accept-Encoding (every line): gzip (or x-gzip) with a
// q-value above 0, or "*" above 0 when gzip is not listed (RFC 9110
// 12.5.3).
func acceptsGzip(hs http1.Headers) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, f := range hs {
		if !equalFold(f.Name, "Accept-Encoding") {
			continue
		}
		for elem := range bytes.SplitSeq(f.Value, []byte(",")) {
			coding, params, _ := bytes.Cut(elem, []byte(";"))
			coding = bytes.TrimSpace(coding)
			q := 1.0
			for p := range bytes.SplitSeq(params, []byte(";")) {
				k, v, ok := bytes.Cut(bytes.TrimSpace(p), []byte("="))
				if ok && equalFold(bytes.TrimSpace(k), "q") {
					q = parseQ(bytes.TrimSpace(v))
				}
			}
			switch {
			case equalFold(coding, "gzip"), equalFold(coding, "x-gzip"):
				gzipQ = max(gzipQ, q)
			case string(coding) == "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// parseQ parses a qvalue ("0", "0.5", "1.000"); anything else counts as 0.
func parseQ(v []byte) float64 {
	if len(v) == 0 || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
		return 0
	}
	q := float64(v[0] - '0')
	if len(v) == 1 {
		return q
	}
	if v[1] != '.' {
		return 0
	}
	scale := 0.1
	for _, c := range v[2:] {
		if c < '0' || c > '9' {
			return 0
		}
		q += float64(c-'0') * scale
		scale /= 10
	}
	return min(q, 1)
}

// varies reports whether the response already varies on Accept-Encoding
// (or on everything).
func varies(hs http1.Headers) bool {
	return hs.HasToken("Vary", "Accept-Encoding") || hs.HasToken("Vary", "*")
}

func compressible(ct []byte) bool {
	ct = bytes.ToLower(bytes.TrimSpace(ct))
	if bytes.HasPrefix(ct, []byte("text/event-stream")) {
		return false // each event must reach the client as it is sent
	}
	for _, p := range [][]byte{[]byte("text/"), []byte("application/json"), []byte("application/javascript"),
		[]byte("application/xml"), []byte("application/xhtml+xml"), []byte("image/svg+xml"), []byte("application/wasm")} {
		if bytes.HasPrefix(ct, p) {
			return true
		}
	}
	return false
}

// gzipBody compresses src as it is read, flushing the compressor whenever
// src would wait, so the client gets bytes as the upstream sends them; what
// arrived together (a run of small chunks, say) is compressed together: a
// flush ends a deflate block, and at level 1 forgets the matches found, so
// a flush per small chunk sent more bytes than no compression.
type gzipBody struct {
	src  io.Reader
	zw   *gzip.Writer
	out  bytes.Buffer
	in   [16 << 10]byte
	done bool
	pool *sync.Pool
}

func (g *gzipBody) reset(src io.Reader, pool *sync.Pool) {
	g.src, g.pool, g.done = src, pool, false
	g.out.Reset()
	g.zw.Reset(&g.out)
}

func (g *gzipBody) Read(p []byte) (int, error) {
	for g.out.Len() == 0 {
		if g.done {
			if g.pool != nil {
				pool := g.pool
				g.pool, g.src = nil, nil
				pool.Put(g)
			}
			return 0, io.EOF
		}
		n, err := g.src.Read(g.in[:])
		if n > 0 {
			g.zw.Write(g.in[:n])
			// At the end Close flushes; an error ends the body.
			if r, ok := g.src.(interface{ Ready() bool }); err == nil && (!ok || !r.Ready()) {
				g.zw.Flush()
			}
		}
		if err == io.EOF {
			g.zw.Close()
			g.done = true
		} else if err != nil {
			return 0, err
		}
	}
	return g.out.Read(p)
}
