package bench

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const wrkOK = `Running 1s test @ http://127.0.0.1:27600/1k
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   326.11us  104.76us   2.29ms   79.16%
    Req/Sec    29.94k   254.00    30.29k    63.64%
  Latency Distribution
     50%  331.00us
     75%  366.00us
     90%  413.00us
     99%  544.00us
  32780 requests in 1.10s, 39.95MB read
Requests/sec:  29807.80
Transfer/sec:     36.33MB
`

const wrkNon2xx = `Running 1s test @ http://127.0.0.1:27600/missing
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   273.30us  100.13us 828.00us   69.25%
    Req/Sec    33.97k   403.98    34.58k    60.00%
  Latency Distribution
     50%  289.00us
     75%  332.00us
     90%  396.00us
     99%  494.00us
  33799 requests in 1.00s, 9.93MB read
  Non-2xx or 3xx responses: 33799
Requests/sec:  33774.21
Transfer/sec:      9.92MB
`

const wrkErrors = `Running 10s test @ https://127.0.0.1:18101/16k
  1 threads and 200 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.50ms    3.10ms   1.02s    90.00%
    Req/Sec    16.01k     1.20k   18.00k    70.00%
  Latency Distribution
     50%   11.90ms
     75%   13.00ms
     90%   15.50ms
     99%    1.01s
  160100 requests in 10.00s, 2.51GB read
  Socket errors: connect 0, read 12, write 0, timeout 3
Requests/sec:  16008.55
Transfer/sec:    256.90MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   LoadResult
		failed bool
	}{
		{
			name: "ok",
			in:   wrkOK,
			want: LoadResult{Requests: 32780, Elapsed: 1100 * time.Millisecond, RPS: 29807.80,
				P50: 331 * time.Microsecond, P90: 413 * time.Microsecond, P99: 544 * time.Microsecond,
				Mean: 326110 * time.Nanosecond, Bytes: 41890611, HeadersCounted: true},
		},
		{
			name: "non-2xx",
			in:   wrkNon2xx,
			want: LoadResult{Requests: 33799, Elapsed: time.Second, RPS: 33774.21,
				P50: 289 * time.Microsecond, P90: 396 * time.Microsecond, P99: 494 * time.Microsecond,
				Mean: 273300 * time.Nanosecond, Non2xx: 33799, Bytes: 10412359, HeadersCounted: true, Detail: "non-2xx 33799"},
			failed: true,
		},
		{
			name: "socket errors",
			in:   wrkErrors,
			want: LoadResult{Requests: 160100, Elapsed: 10 * time.Second, RPS: 16008.55,
				P50: 11900 * time.Microsecond, P90: 15500 * time.Microsecond, P99: 1010 * time.Millisecond,
				Mean: 12500 * time.Microsecond, Errors: 15, Bytes: 2695091978, HeadersCounted: true, Detail: "read 12, timeout 3"},
			failed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWrk(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseWrk =\n %+v\nwant\n %+v", got, tt.want)
			}
			if got.Failed() != tt.failed {
				t.Errorf("Failed() = %v, want %v", got.Failed(), tt.failed)
			}
		})
	}
	for _, bad := range []string{
		"",
		"unable to connect to 127.0.0.1:1 Connection refused\n",
		strings.Replace(wrkOK, "Requests/sec:  29807.80", "Requests/sec:  x", 1),
		strings.Replace(wrkErrors, "read 12", "read twelve", 1),
		strings.Replace(wrkOK, "39.95MB read", "39.95XB read", 1),
		strings.Replace(wrkOK, ", 39.95MB read", "", 1),
	} {
		if _, err := ParseWrk(bad); err == nil {
			t.Errorf("ParseWrk(%q) succeeded", bad)
		}
	}
}

const h2loadOK = `starting benchmark...
spawning thread #0: 4 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for measurements.
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 1.00s, 26368.00 req/s, 29.20MB/s
requests: 26368 total, 26376 started, 26368 done, 26368 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 26368 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 29.20MB (30613444) total, 2.99MB (3137792) headers (space savings 38.34%), 25.75MB (27000832) data
                     min         max         mean         sd        +/- sd
time for request:       71us      1.51ms       273us       103us    69.21%
time for connect:      248us       412us       345us        70us    75.00%
time to 1st byte:      961us      1.49ms      1.28ms       249us    75.00%
req/s           :    6351.47     6752.47     6590.65      171.60    75.00%
`

const h2load404 = `finished in 1.00s, 26351.00 req/s, 5.58MB/s
requests: 26351 total, 26355 started, 26351 done, 0 succeeded, 26351 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 26351 4xx, 0 5xx
traffic: 5.58MB (5850020) total, 1.28MB (1343901) headers (space savings 48.48%), 3.84MB (4031703) data
                     min         max         mean         sd        +/- sd
time for request:       57us       761us       136us        54us    69.20%
`

const h2loadErrored = `finished in 2.00s, 900.50 req/s, 1.00MB/s
requests: 2000 total, 2000 started, 1900 done, 1801 succeeded, 199 failed, 99 errored, 100 timeout
status codes: 1801 2xx, 0 3xx, 0 4xx, 0 5xx
time for request:      1.00ms      2.00s      10.50ms       3ms    90.00%
`

func TestParseH2load(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   LoadResult
		failed bool
	}{
		{"ok", h2loadOK, LoadResult{Requests: 26368, Elapsed: time.Second, RPS: 26368, Mean: 273 * time.Microsecond,
			Bytes: 27000832}, false},
		{"404", h2load404, LoadResult{Requests: 0, Elapsed: time.Second, RPS: 26351, Mean: 136 * time.Microsecond,
			Bytes: 4031703, Non2xx: 26351, Detail: "non-2xx 26351"}, true},
		{"errored", h2loadErrored, LoadResult{Requests: 1801, Elapsed: 2 * time.Second, RPS: 900.5,
			Mean: 10500 * time.Microsecond, Errors: 199, Detail: "errored 99, timeout 100"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseH2load(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseH2load =\n %+v\nwant\n %+v", got, tt.want)
			}
			if got.Failed() != tt.failed {
				t.Errorf("Failed() = %v, want %v", got.Failed(), tt.failed)
			}
		})
	}
	if _, err := ParseH2load("connect to 127.0.0.1:1 failed\n"); err == nil {
		t.Error("ParseH2load of a failed connect succeeded")
	}
}

func TestParseBinary(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"850.00B", 850},
		{"0.88KB", 901},
		{"39.95MB", 41890611},
		{"2.51GB", 2695091978},
	}
	for _, tt := range tests {
		if got, err := parseBinary(tt.in); err != nil || got != tt.want {
			t.Errorf("parseBinary(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "12", "MB", "1.2XB", "-1KB"} {
		if _, err := parseBinary(bad); err == nil {
			t.Errorf("parseBinary(%q) succeeded", bad)
		}
	}
}

// TestCheckBytes checks the bytes a run read against its requests and body
// size, with wrk's and h2load's samples: right for the body they asked
// for, wrong for a body a proxy could have cut short or padded.
func TestCheckBytes(t *testing.T) {
	wrk, err := ParseWrk(wrkOK) // 32780 responses of a 1 KiB body, ~1278 bytes each
	if err != nil {
		t.Fatal(err)
	}
	h2, err := ParseH2load(h2loadOK) // 26368 bodies of 1 KiB, exactly
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		r        LoadResult
		body     int
		inflight int
		bad      bool
	}{
		{"wrk 1k", wrk, 1 << 10, 10, false},
		{"wrk 16k answered with 1k", wrk, 16 << 10, 10, true},
		{"wrk 0 answered with 1k", wrk, 0, 10, true},
		{"wrk rounded down", LoadResult{Requests: 1000, Bytes: 1000 * (1024 + 19) * 995 / 1000, HeadersCounted: true}, 1 << 10, 10, false},
		{"wrk body 0", LoadResult{Requests: 1000, Bytes: 1000 * 200, HeadersCounted: true}, 0, 10, false},
		{"wrk no bytes", LoadResult{Requests: 1000, HeadersCounted: true}, 0, 10, true},
		{"h2load 1k", h2, 1 << 10, 40, false},
		{"h2load 1k with streams in flight", LoadResult{Requests: 100, Bytes: 100<<10 + 512}, 1 << 10, 40, false},
		{"h2load 16k answered with 1k", h2, 16 << 10, 40, true},
		{"h2load body 0", LoadResult{Requests: 100}, 0, 40, false},
		{"h2load 0 answered with 1k", h2, 0, 40, true},
		{"h2load one body short", LoadResult{Requests: 100, Bytes: 100<<10 - 1}, 1 << 10, 40, true},
		{"no request", LoadResult{}, 1 << 10, 40, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.CheckBytes(tt.body, tt.inflight)
			if r.BadBytes != tt.bad || (tt.bad && (!r.Failed() || r.Detail == "")) {
				t.Errorf("CheckBytes(%d, %d) on %d bytes for %d requests: bad %v, failed %v, detail %q; want bad %v",
					tt.body, tt.inflight, tt.r.Bytes, tt.r.Requests, r.BadBytes, r.Failed(), r.Detail, tt.bad)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"331.00us", 331 * time.Microsecond},
		{"1.20ms", 1200 * time.Microsecond},
		{"2.00s", 2 * time.Second},
		{"1.50m", 90 * time.Second},
		{"1h", time.Hour},
		{"15ns", 15},
		{"3", 3 * time.Second},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseDuration("fast"); err == nil {
		t.Error("parseDuration(fast) succeeded")
	}
}

func TestLoadArgs(t *testing.T) {
	got := WrkArgs("http://x/1k", 4, 2, 1500*time.Millisecond, true)
	want := []string{"-t", "2", "-c", "2", "-d", "2s", "--latency", "--timeout", "5s", "-H", "Connection: close", "http://x/1k"}
	if !slices.Equal(got, want) {
		t.Errorf("WrkArgs = %q, want %q", got, want)
	}
	got = H2loadArgs("https://x/0", 1, 50, 10, 10*time.Second)
	want = []string{"-t", "1", "-c", "50", "-m", "10", "-D", "10", "https://x/0"}
	if !slices.Equal(got, want) {
		t.Errorf("H2loadArgs = %q, want %q", got, want)
	}
}

// FuzzParseWrk checks that no input makes the parser panic.
func FuzzParseWrk(f *testing.F) {
	for _, s := range []string{wrkOK, wrkNon2xx, wrkErrors} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { ParseWrk(s) })
}

// FuzzParseH2load checks that no input makes the parser panic.
func FuzzParseH2load(f *testing.F) {
	for _, s := range []string{h2loadOK, h2load404, h2loadErrored} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { ParseH2load(s) })
}

// FuzzParseStat checks that no input makes the /proc parser panic.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (nginx) S 4241 4241 4241 0 -1 4194624 1093 0 0 0 1234 567 8 9 20 0 1 0 1"))
	f.Add([]byte("17 (a) b (c)) R 1 17 17 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 1 1 1"))
	f.Fuzz(func(t *testing.T, b []byte) { ParseStat(b) })
}
