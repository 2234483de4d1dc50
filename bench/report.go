package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// SortSummaries orders summaries for reading: by case in run order, the
// direct run first, then by worker count, nginx before Monolake.
func SortSummaries(sums []Summary, caseOrder []string) {
	rank := map[string]int{}
	for i, c := range caseOrder {
		rank[c] = i
	}
	targetRank := func(t string) int {
		switch t {
		case TargetDirect:
			return 0
		case TargetNginx:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(sums, func(a, b Summary) int {
		if d := rank[a.Case] - rank[b.Case]; d != 0 {
			return d
		}
		if d := targetRank(a.Target) - targetRank(b.Target); d != 0 && (a.Target == TargetDirect || b.Target == TargetDirect) {
			return d
		}
		if a.Workers != b.Workers {
			return a.Workers - b.Workers
		}
		if d := targetRank(a.Target) - targetRank(b.Target); d != 0 {
			return d
		}
		return strings.Compare(a.Target, b.Target)
	})
}

func fmtNum(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

func fmtSpread(s Spread) string {
	if s.N == 0 {
		return "-"
	}
	if s.N == 1 {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("×%.2f", x)
}

// WriteTable writes the summaries as an aligned table: spreads, ratios of
// the medians to nginx's, and the paired ratio of requests per proxy
// CPU-second (Summary.VsNginxEffPaired).
func WriteTable(w io.Writer, sums []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tw\ttarget\treq/s [min–max]\treq/proxy-cpu-s [min–max]\tp50\tp99\tvs nginx req/s\tvs nginx req/cpu-s\tpaired\tnote")
	prev := ""
	for _, s := range sums {
		name := s.Case
		if name == prev {
			name = ""
		}
		prev = s.Case
		w := strconv.Itoa(s.Workers)
		if s.Target == TargetDirect {
			w = "-"
		}
		note := ""
		switch s.Status {
		case StatusUnsupported:
			note = "unsupported: " + truncate(s.Reason, 60)
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\n", name, w, s.Target, note)
			continue
		case StatusFailed:
			note = "FAILED: " + truncate(s.Reason, 60)
		default:
			if s.LoadBound {
				note = fmt.Sprintf("load-bound (load %.0f%%, proxy %.0f%%)", 100*s.LoadUtil, 100*s.ProxyUtil)
			}
		}
		if s.Noisy {
			note = strings.TrimSpace(note + " noisy")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, w, s.Target,
			fmtSpread(s.RPS), fmtSpread(s.ReqPerCPUSec),
			strings.TrimSpace(fmtMs(s.P50Ms.Median)), strings.TrimSpace(fmtMs(s.P99Ms.Median)),
			fmtRatio(s.VsNginxRPS), fmtRatio(s.VsNginxEff), fmtRatio(s.VsNginxEffPaired), note)
	}
	return tw.Flush()
}

// WriteRatios writes one line per Monolake target and case with its ratios
// to nginx: the figures the suite exists for.
func WriteRatios(w io.Writer, sums []Summary) {
	any := false
	for _, s := range sums {
		if !strings.HasPrefix(s.Target, "monolake") || s.Status == StatusUnsupported {
			continue
		}
		if !any {
			fmt.Fprintln(w, "Ratios to nginx (median; >1 is better for Monolake):")
			any = true
		}
		flag := ""
		if s.Status == StatusFailed {
			flag = "  (FAILED)"
		} else if s.LoadBound {
			flag = "  (load-bound: req/s understates the proxy)"
		}
		fmt.Fprintf(w, "  %-22s w=%-2d %-24s req/s %s (paired %s)  req/proxy-cpu-s %s (paired %s)  p99 %s vs %s%s\n",
			s.Case, s.Workers, s.Target, fmtRatio(s.VsNginxRPS), fmtRatio(s.VsNginxRPSPaired),
			fmtRatio(s.VsNginxEff), fmtRatio(s.VsNginxEffPaired),
			strings.TrimSpace(fmtMs(s.P99Ms.Median)), strings.TrimSpace(fmtMs(nginxP99(sums, s))), flag)
	}
	if !any {
		fmt.Fprintln(w, "No Monolake target ran: no ratios to nginx.")
	}
}

func nginxP99(sums []Summary, s Summary) float64 {
	for _, o := range sums {
		if o.Case == s.Case && o.Workers == s.Workers && o.Target == TargetNginx {
			return o.P99Ms.Median
		}
	}
	return math.NaN()
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// WriteJSON writes v as indented JSON; NaN and infinities become null.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(jsonSafe(reflect.ValueOf(v)), "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encoding %s: %w", path, err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// jsonSafe turns v into maps, slices and scalars that encoding/json can
// encode, with NaN and infinite floats as nil. Struct fields keep their json
// names.
func jsonSafe(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return jsonSafe(v.Elem())
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return []any{}
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = jsonSafe(v.Index(i))
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = jsonSafe(it.Value())
		}
		return out
	case reflect.Struct:
		if m, ok := v.Interface().(json.Marshaler); ok {
			return m
		}
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv := v.Field(i)
			if strings.Contains(opts, "omitempty") && fv.IsZero() {
				continue
			}
			out[name] = jsonSafe(fv)
		}
		return out
	}
	return v.Interface()
}

func csvFloat(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return ""
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

// WriteRunsCSV writes one row per run.
func WriteRunsCSV(path string, runs []Run) error {
	rows := [][]string{{"case", "proto", "conns", "body", "target", "workers", "rep", "status",
		"requests", "seconds", "rps", "p50_ms", "p99_ms", "mean_ms", "errors", "non2xx",
		"proxy_cpu_s", "req_per_proxy_cpu_s", "proxy_cpu_util", "load_cpu_s", "load_cpu_util", "load_bound",
		"other_cpu_s", "noisy", "tls", "detail", "steal_cpu_s", "proxy_settle_cpu_s", "bytes_read"}}
	for _, r := range runs {
		rows = append(rows, []string{r.Case, string(r.Proto), strconv.Itoa(r.Conns), r.Body, r.Target,
			strconv.Itoa(r.Workers), strconv.Itoa(r.Rep), r.Status,
			strconv.FormatInt(r.Requests, 10), csvFloat(r.Seconds), csvFloat(r.RPS),
			csvFloat(r.P50Ms), csvFloat(r.P99Ms), csvFloat(r.MeanMs),
			strconv.FormatInt(r.Errors, 10), strconv.FormatInt(r.Non2xx, 10),
			csvFloat(r.ProxyCPUSec), csvFloat(r.ReqPerCPUSec), csvFloat(r.ProxyUtil),
			csvFloat(r.LoadCPUSec), csvFloat(r.LoadUtil), strconv.FormatBool(r.LoadBound),
			csvFloat(r.OtherCPUSec), strconv.FormatBool(r.Noisy), r.TLS, r.Detail,
			// New columns go last, so readers by position keep working.
			csvFloat(r.StealCPUSec), csvFloat(r.ProxySettleCPUSec), strconv.FormatInt(r.BytesRead, 10)})
	}
	return writeCSV(path, rows)
}

// WriteSummaryCSV writes one row per case, target and worker count.
func WriteSummaryCSV(path string, sums []Summary) error {
	rows := [][]string{{"case", "proto", "conns", "body", "target", "workers", "status",
		"rps_median", "rps_min", "rps_max",
		"req_per_proxy_cpu_s_median", "req_per_proxy_cpu_s_min", "req_per_proxy_cpu_s_max",
		"p50_ms", "p99_ms", "proxy_cpu_util", "load_cpu_util", "load_bound", "noisy",
		"vs_nginx_rps", "vs_nginx_req_per_cpu_s", "vs_nginx_rps_paired", "vs_nginx_req_per_cpu_s_paired", "tls", "reason"}}
	for _, s := range sums {
		rows = append(rows, []string{s.Case, string(s.Proto), strconv.Itoa(s.Conns), s.Body, s.Target,
			strconv.Itoa(s.Workers), s.Status,
			csvFloat(s.RPS.Median), csvFloat(s.RPS.Min), csvFloat(s.RPS.Max),
			csvFloat(s.ReqPerCPUSec.Median), csvFloat(s.ReqPerCPUSec.Min), csvFloat(s.ReqPerCPUSec.Max),
			csvFloat(s.P50Ms.Median), csvFloat(s.P99Ms.Median), csvFloat(s.ProxyUtil), csvFloat(s.LoadUtil),
			strconv.FormatBool(s.LoadBound), strconv.FormatBool(s.Noisy), csvFloat(s.VsNginxRPS), csvFloat(s.VsNginxEff),
			csvFloat(s.VsNginxRPSPaired), csvFloat(s.VsNginxEffPaired), s.TLS, s.Reason})
	}
	return writeCSV(path, rows)
}

func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	w := csv.NewWriter(f)
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return f.Close()
}
