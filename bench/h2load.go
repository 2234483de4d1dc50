package bench

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// H2loadArgs returns h2load's arguments for a timed run: clients,
// concurrent streams per client and threads.
func H2loadArgs(url string, threads, conns, streams int, d time.Duration) []string {
	if threads > conns {
		threads = conns
	}
	return []string{
		"-t", strconv.Itoa(threads),
		"-c", strconv.Itoa(conns),
		"-m", strconv.Itoa(streams),
		"-D", strconv.Itoa(max(1, int((d+time.Second/2)/time.Second))),
		url,
	}
}

// ParseH2load reads h2load's output. h2load reports no percentiles, so P50
// and P99 stay zero and Mean is the mean time for a request.
func ParseH2load(out string) (LoadResult, error) {
	var r LoadResult
	var haveFinished, haveRequests bool
	var failed, bad int64
	var errs []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "finished in "):
			// finished in 3.00s, 95000.00 req/s, 10.00MB/s
			parts := strings.Split(strings.TrimPrefix(line, "finished in "), ",")
			if len(parts) < 2 {
				return r, fmt.Errorf("bench: h2load finished line %q", line)
			}
			d, err := parseDuration(parts[0])
			if err != nil {
				return r, fmt.Errorf("bench: h2load finished line %q: %w", line, err)
			}
			rps, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(parts[1]), " req/s"), 64)
			if err != nil {
				return r, fmt.Errorf("bench: h2load finished line %q: %w", line, err)
			}
			r.Elapsed, r.RPS, haveFinished = d, rps, true
		case strings.HasPrefix(line, "requests:"):
			// requests: 100 total, 100 started, 100 done, 98 succeeded, 2 failed, 0 errored, 0 timeout
			kv, err := countsByName(strings.TrimPrefix(line, "requests:"))
			if err != nil {
				return r, fmt.Errorf("bench: h2load requests line %q: %w", line, err)
			}
			r.Requests = kv["succeeded"]
			for _, k := range []string{"errored", "timeout"} {
				if kv[k] > 0 {
					errs = append(errs, fmt.Sprintf("%s %d", k, kv[k]))
				}
			}
			// failed counts errored and timed-out requests and those
			// answered 4xx or 5xx; the statuses are subtracted below.
			failed = kv["failed"]
			haveRequests = true
		case strings.HasPrefix(line, "status codes:"):
			kv, err := countsByName(strings.TrimPrefix(line, "status codes:"))
			if err != nil {
				return r, fmt.Errorf("bench: h2load status line %q: %w", line, err)
			}
			r.Non2xx = kv["3xx"] + kv["4xx"] + kv["5xx"]
			bad = kv["4xx"] + kv["5xx"]
			if r.Non2xx > 0 {
				errs = append(errs, fmt.Sprintf("non-2xx %d", r.Non2xx))
			}
		case strings.HasPrefix(line, "traffic:"):
			// traffic: 29.20MB (30613444) total, 2.99MB (3137792) headers (space savings 38.34%), 25.75MB (27000832) data
			for part := range strings.SplitSeq(strings.TrimPrefix(line, "traffic:"), ",") {
				f := strings.Fields(part)
				if len(f) != 3 || f[2] != "data" {
					continue
				}
				n, err := strconv.ParseInt(strings.Trim(f[1], "()"), 10, 64)
				if err != nil {
					return r, fmt.Errorf("bench: h2load traffic line %q: %w", line, err)
				}
				r.Bytes = n
			}
		case strings.HasPrefix(line, "time for request:"):
			// time for request:  min  max  mean  sd  +/- sd
			f := strings.Fields(strings.TrimPrefix(line, "time for request:"))
			if len(f) >= 3 {
				if d, err := parseDuration(f[2]); err == nil {
					r.Mean = d
				}
			}
		}
	}
	if !haveFinished || !haveRequests {
		return r, errors.New("bench: h2load output has no request summary")
	}
	r.Errors = max(0, failed-bad)
	r.Detail = strings.Join(errs, ", ")
	return r, nil
}

// countsByName reads "100 total, 2 failed" into {"total":100, "failed":2}.
func countsByName(s string) (map[string]int64, error) {
	m := make(map[string]int64)
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, fmt.Errorf("bench: count %q", part)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bench: count %q: %w", part, err)
		}
		m[f[1]] = n
	}
	return m, nil
}
