package bench

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WrkArgs returns wrk's arguments for one run: threads, connections, the
// duration, latency percentiles on, and Connection: close when close is set.
func WrkArgs(url string, threads, conns int, d time.Duration, close bool) []string {
	if threads > conns {
		threads = conns
	}
	args := []string{
		"-t", strconv.Itoa(threads),
		"-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", max(1, int((d+time.Second/2)/time.Second))),
		"--latency",
		"--timeout", "5s",
	}
	if close {
		args = append(args, "-H", "Connection: close")
	}
	return append(args, url)
}

// ParseWrk reads the output of `wrk --latency`.
func ParseWrk(out string) (LoadResult, error) {
	var r LoadResult
	var haveRequests, haveRPS bool
	var errs []string
	sc := bufio.NewScanner(strings.NewReader(out))
	inDist := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case line == "Latency Distribution":
			inDist = true
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("bench: wrk latency line %q: %w", line, err)
			}
			switch f[0] {
			case "50%":
				r.P50 = d
			case "90%":
				r.P90 = d
			case "99%":
				r.P99 = d
			}
		case len(f) >= 2 && f[0] == "Latency" && !inDist:
			// Thread Stats: Latency avg stdev max +/-stdev
			if d, err := parseDuration(f[1]); err == nil {
				r.Mean = d
			}
		case len(f) >= 5 && f[1] == "requests" && f[2] == "in":
			// 32780 requests in 1.10s, 39.95MB read
			inDist = false
			if len(f) != 6 || f[5] != "read" {
				return r, fmt.Errorf("bench: wrk requests line %q", line)
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("bench: wrk requests line %q: %w", line, err)
			}
			d, err := parseDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("bench: wrk requests line %q: %w", line, err)
			}
			b, err := parseBinary(f[4])
			if err != nil {
				return r, fmt.Errorf("bench: wrk requests line %q: %w", line, err)
			}
			r.Requests, r.Elapsed, r.Bytes, haveRequests = n, d, b, true
			r.HeadersCounted = true
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 3, write 0, timeout 0
			rest := strings.TrimPrefix(line, "Socket errors:")
			for part := range strings.SplitSeq(rest, ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("bench: wrk socket errors line %q", line)
				}
				n, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil {
					return r, fmt.Errorf("bench: wrk socket errors line %q: %w", line, err)
				}
				if n > 0 {
					errs = append(errs, fmt.Sprintf("%s %d", kv[0], n))
				}
				r.Errors += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil {
				return r, fmt.Errorf("bench: wrk non-2xx line %q: %w", line, err)
			}
			r.Non2xx = n
			if n > 0 {
				errs = append(errs, fmt.Sprintf("non-2xx %d", n))
			}
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
			if err != nil {
				return r, fmt.Errorf("bench: wrk requests/sec line %q: %w", line, err)
			}
			r.RPS, haveRPS = v, true
		}
	}
	if !haveRequests || !haveRPS {
		return r, errors.New("bench: wrk output has no request summary")
	}
	r.Detail = strings.Join(errs, ", ")
	return r, nil
}
