package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// LoadResult is what one run of a load generator reports.
type LoadResult struct {
	Requests int64         // completed requests
	Elapsed  time.Duration // measured window as the tool reports it
	RPS      float64       // requests per second as the tool reports it
	// Latency percentiles; zero when the tool does not report them
	// (h2load gives only min, max and mean).
	P50, P90, P99 time.Duration
	Mean          time.Duration
	// Errors counts socket errors (connect, read, write, timeout) or, for
	// h2load, failed and errored requests.
	Errors int64
	// Non2xx counts responses outside 2xx (wrk: outside 2xx and 3xx).
	Non2xx int64
	// Bytes is what the client read of the responses: for wrk every byte,
	// headers included, as its summary rounds it (two decimals of KB, MB
	// or GB); for h2load the bodies alone (DATA frames), exactly.
	Bytes int64
	// HeadersCounted is set when Bytes includes the response headers.
	HeadersCounted bool
	// BadBytes is set by CheckBytes when Bytes does not fit the responses.
	BadBytes bool
	// Detail names the kinds of errors, for the report.
	Detail string
}

// Failed reports whether the run had any error or non-2xx response, read
// other than the responses it counted (CheckBytes), or completed no request
// at all.
func (r LoadResult) Failed() bool {
	return r.Errors > 0 || r.Non2xx > 0 || r.BadBytes || r.Requests == 0
}

// Bounds of a response's header block in CheckBytes: a status line and
// the blank line at least; nginx's and Monolake's are some 250 bytes, so
// 1 KiB on average is generous and still tells a 1 KiB body from none.
const (
	minHeaderBytes = len("HTTP/1.1 200 OK\r\n\r\n")
	maxHeaderBytes = 1 << 10
)

// CheckBytes checks that the run read what its completed requests should
// have brought, each a body of body bytes: a proxy answering short bodies
// (or long ones) passes wrk's status check but not this. inflight is how
// many responses may have been partly read when the run stopped (wrk: its
// connections; h2load: connections times streams). A mismatch marks the
// result failed (BadBytes) and says why in Detail.
func (r *LoadResult) CheckBytes(body, inflight int) {
	if r.Requests == 0 {
		return // failed already
	}
	n, b := float64(r.Requests), float64(body)
	lo, hi := n*b, (n+float64(inflight))*b
	slack := 0.0
	if r.HeadersCounted {
		lo += n * float64(minHeaderBytes)
		hi += (n + float64(inflight)) * float64(maxHeaderBytes)
		slack = 0.01 // wrk's rounding: at most 0.6 %
	}
	got := float64(r.Bytes)
	why := ""
	switch {
	case got < lo*(1-slack):
		why = "short responses"
	case got > hi*(1+slack):
		why = "long responses"
	default:
		return
	}
	r.BadBytes = true
	what := "bytes"
	if !r.HeadersCounted {
		what = "body bytes"
	}
	why = fmt.Sprintf("%s: %d %s read for %d requests of a %d-byte body (%.0f per response)", why, r.Bytes, what, r.Requests, body, got/n)
	if r.Detail != "" {
		why = r.Detail + ", " + why
	}
	r.Detail = why
}

// parseBinary reads a byte count as wrk prints it: "850.00B", "39.95MB"
// (powers of 1024).
func parseBinary(s string) (int64, error) {
	num, ok := strings.CutSuffix(s, "B")
	if !ok {
		return 0, fmt.Errorf("bench: byte count %q", s)
	}
	mult := 1.0
	for i, u := range []string{"K", "M", "G", "T", "P"} {
		if rest, ok := strings.CutSuffix(num, u); ok {
			num, mult = rest, math.Pow(1024, float64(i+1))
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bench: byte count %q", s)
	}
	return int64(f * mult), nil
}

// parseDuration reads wrk's and h2load's durations: "512.33us", "1.20ms",
// "2.00s", "1.50m", "1h"; a bare number is in seconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		unit   float64
	}{
		{"ns", 1},
		{"us", 1e3},
		{"µs", 1e3},
		{"ms", 1e6},
		{"s", 1e9},
		{"m", 60e9},
		{"h", 3600e9},
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: duration %q: %w", s, err)
			}
			return time.Duration(f * u.unit), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: duration %q: %w", s, err)
	}
	return time.Duration(f * 1e9), nil
}

// parseCount reads a number with an optional metric suffix, as wrk prints
// them ("95.00k", "1.2M").
func parseCount(s string) (float64, error) {
	s = strings.TrimSpace(s)
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1e9, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: count %q: %w", s, err)
	}
	return f * mult, nil
}
