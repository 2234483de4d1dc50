package bench

import (
	"fmt"
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
	// Detail names the kinds of errors, for the report.
	Detail string
}

// Failed reports whether the run had any error or non-2xx response, or
// completed no request at all.
func (r LoadResult) Failed() bool {
	return r.Errors > 0 || r.Non2xx > 0 || r.Requests == 0
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
