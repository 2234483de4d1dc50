package bench

import (
	"math"
	"time"
)

// Run statuses.
const (
	StatusOK          = "ok"
	StatusFailed      = "failed"      // errors or non-2xx responses
	StatusUnsupported = "unsupported" // the build cannot run the case
)

// Run is one measured run of one target on one case.
type Run struct {
	Case    string `json:"case"`
	Proto   Proto  `json:"proto"`
	Conns   int    `json:"conns"`
	Body    string `json:"body"`
	Target  string `json:"target"`
	Workers int    `json:"workers"` // 0 for the direct run
	Rep     int    `json:"rep"`

	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"` // wall time of the measured window
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"` // NaN when the tool gives no percentiles
	P99Ms    float64 `json:"p99_ms"`
	MeanMs   float64 `json:"mean_ms"`
	Errors   int64   `json:"errors"`
	Non2xx   int64   `json:"non2xx"`
	// BytesRead is what the client read (LoadResult.Bytes: wrk with the
	// headers, rounded; h2load the bodies alone), checked against the
	// requests and the body size.
	BytesRead int64  `json:"bytes_read"`
	Detail    string `json:"detail,omitempty"`
	TLS       string `json:"tls,omitempty"` // negotiated version, suite and group

	// ProxyCPUSec is the user+system time of all the proxy's processes in
	// the window and the settle after it, of which ProxySettleCPUSec in
	// the settle; ReqPerCPUSec is Requests over it. ProxyUtil is the share
	// of the proxy's CPUs it used in the window alone.
	ProxyCPUSec       float64 `json:"proxy_cpu_s"`
	ProxySettleCPUSec float64 `json:"proxy_settle_cpu_s"`
	ReqPerCPUSec      float64 `json:"req_per_proxy_cpu_s"`
	ProxyUtil         float64 `json:"proxy_cpu_util"`
	LoadCPUSec        float64 `json:"load_cpu_s"`    // load generator and origin
	LoadUtil          float64 `json:"load_cpu_util"` // share of the load CPUs used
	// LoadBound marks a run where the load side was saturated and the proxy
	// was not: the proxy was not the bottleneck, so its req/s understates it.
	LoadBound bool `json:"load_bound"`
	// OtherCPUSec is CPU time spent in the window by user processes
	// outside the run (see OtherCPU); StealCPUSec is the hypervisor's steal
	// time on the proxy's and the load side's CPUs. Noisy marks a run where
	// either was more than NoisyShare of a CPU.
	OtherCPUSec float64 `json:"other_cpu_s"`
	StealCPUSec float64 `json:"steal_cpu_s"`
	Noisy       bool    `json:"noisy"`
	Status      string  `json:"status"`
}

// Summary is the median over the repetitions of one target on one case at
// one worker count.
type Summary struct {
	Case    string `json:"case"`
	Proto   Proto  `json:"proto"`
	Conns   int    `json:"conns"`
	Body    string `json:"body"`
	Target  string `json:"target"`
	Workers int    `json:"workers"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"` // why unsupported or failed
	TLS     string `json:"tls,omitempty"`    // negotiated version, suite and group

	RPS          Spread  `json:"rps"`
	ReqPerCPUSec Spread  `json:"req_per_proxy_cpu_s"`
	P50Ms        Spread  `json:"p50_ms"`
	P99Ms        Spread  `json:"p99_ms"`
	ProxyUtil    float64 `json:"proxy_cpu_util"`
	LoadUtil     float64 `json:"load_cpu_util"`
	LoadBound    bool    `json:"load_bound"`
	Noisy        bool    `json:"noisy"` // some repetition ran beside other work
	// Ratios of the medians to nginx's on the same case and worker count.
	VsNginxRPS float64 `json:"vs_nginx_rps"`
	VsNginxEff float64 `json:"vs_nginx_req_per_cpu_s"`
	// Paired ratios: the median over the repetitions of this target's
	// figure divided by nginx's in the same repetition (the two ran minutes
	// apart at most). On a machine whose speed drifts during the suite they
	// follow the comparison better than the ratio of the medians, which can
	// take nginx's median from a fast stretch and ours from a slow one.
	VsNginxRPSPaired float64 `json:"vs_nginx_rps_paired"`
	VsNginxEffPaired float64 `json:"vs_nginx_req_per_cpu_s_paired"`
}

// Report is everything one invocation of the suite measured.
type Report struct {
	Started   time.Time         `json:"started"`
	Finished  time.Time         `json:"finished"`
	Smoke     bool              `json:"smoke"`
	Env       map[string]string `json:"env"`
	Settings  map[string]string `json:"settings"`
	Runs      []Run             `json:"runs"`
	Summaries []Summary         `json:"summaries"`
	// Idle is the idle-connection memory case, when it ran.
	Idle []IdleResult `json:"idle,omitempty"`
}

// SummarizeRuns builds the summaries from the runs plus the unsupported and
// failed entries already known (which have no runs), and fills in the
// ratios to nginx. reps is the repetitions each target was to run; a ratio
// needs a majority of them to have succeeded on both sides (MinOK).
func SummarizeRuns(runs []Run, known []Summary, reps int) []Summary {
	type key struct {
		c, t string
		w    int
	}
	var order []key
	groups := map[key][]Run{}
	for _, r := range runs {
		k := key{r.Case, r.Target, r.Workers}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	byKey := map[key]int{}
	var out []Summary
	for _, s := range known {
		byKey[key{s.Case, s.Target, s.Workers}] = len(out)
		out = append(out, s)
	}
	for _, k := range order {
		rs := groups[k]
		var s Summary
		if i, ok := byKey[k]; ok {
			s = out[i]
		} else {
			s = Summary{Case: rs[0].Case, Proto: rs[0].Proto, Conns: rs[0].Conns, Body: rs[0].Body,
				Target: rs[0].Target, Workers: rs[0].Workers}
		}
		s.TLS = rs[0].TLS
		var rps, eff, p50, p99, pu, lu []float64
		s.Status = StatusOK
		bound := 0
		for _, r := range rs {
			if r.Status != StatusOK {
				// A failed run's figures (fast errors, timeouts) stay
				// out of the spreads, and the summary is marked.
				s.Status = StatusFailed
				if s.Reason == "" {
					s.Reason = r.Detail
				}
				continue
			}
			rps = append(rps, r.RPS)
			eff = append(eff, r.ReqPerCPUSec)
			p50 = append(p50, r.P50Ms)
			p99 = append(p99, r.P99Ms)
			pu = append(pu, r.ProxyUtil)
			lu = append(lu, r.LoadUtil)
			if r.LoadBound {
				bound++
			}
			s.Noisy = s.Noisy || r.Noisy
		}
		s.RPS, s.ReqPerCPUSec = Summarize(rps), Summarize(eff)
		s.P50Ms, s.P99Ms = Summarize(p50), Summarize(p99)
		s.ProxyUtil, s.LoadUtil = Summarize(pu).Median, Summarize(lu).Median
		s.LoadBound = bound*2 > len(rs)
		if i, ok := byKey[k]; ok {
			out[i] = s
		} else {
			byKey[k] = len(out)
			out = append(out, s)
		}
	}
	nan := math.NaN()
	for i := range out {
		s := &out[i]
		s.VsNginxRPS, s.VsNginxEff = nan, nan
		s.VsNginxRPSPaired, s.VsNginxEffPaired = nan, nan
		if s.Target == TargetNginx || s.Status == StatusUnsupported {
			continue
		}
		nk := key{s.Case, TargetNginx, s.Workers}
		j, ok := byKey[nk]
		if !ok || out[j].Status == StatusUnsupported {
			continue
		}
		// RPS.N counts the successful runs: a median of one run out of
		// five is no figure to compare.
		if s.RPS.N < MinOK(reps) || out[j].RPS.N < MinOK(reps) {
			continue
		}
		s.VsNginxRPS = Ratio(s.RPS.Median, out[j].RPS.Median)
		s.VsNginxEff = Ratio(s.ReqPerCPUSec.Median, out[j].ReqPerCPUSec.Median)
		rps, eff := pairedRatios(groups[key{s.Case, s.Target, s.Workers}], groups[nk])
		if rps.N >= MinOK(reps) {
			s.VsNginxRPSPaired, s.VsNginxEffPaired = rps.Median, eff.Median
		}
	}
	return out
}

// MinOK is the successful repetitions out of reps that a figure needs to
// be compared with nginx's: a majority.
func MinOK(reps int) int { return max(reps, 1)/2 + 1 }

// pairedRatios returns the spreads over the repetitions of runs' requests
// per second and requests per proxy CPU-second divided by those of the
// nginx run of the same repetition. Failed runs pair with nothing.
func pairedRatios(runs, nginx []Run) (rps, eff Spread) {
	byRep := map[int]Run{}
	for _, n := range nginx {
		if n.Status == StatusOK {
			byRep[n.Rep] = n
		}
	}
	var rs, es []float64
	for _, r := range runs {
		n, ok := byRep[r.Rep]
		if !ok || r.Status != StatusOK {
			continue
		}
		rs = append(rs, Ratio(r.RPS, n.RPS))
		es = append(es, Ratio(r.ReqPerCPUSec, n.ReqPerCPUSec))
	}
	return Summarize(rs), Summarize(es)
}
