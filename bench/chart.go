package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// metric picks one figure of a summary for a chart.
type metric struct {
	file   string // file name suffix
	title  string
	ylabel string
	value  func(Summary) Spread
}

var chartMetrics = []metric{
	{"rps", "requests/s", "requests per second", func(s Summary) Spread { return s.RPS }},
	{"cpu", "requests per proxy CPU-second", "requests / proxy CPU-s", func(s Summary) Spread { return s.ReqPerCPUSec }},
}

// targetColor keeps one color per target across all charts.
func targetColor(targets []string, t string) color.Color {
	switch t {
	case TargetDirect:
		return color.Gray{Y: 110}
	case TargetNginx:
		return color.RGBA{R: 0x00, G: 0x96, B: 0x39, A: 0xff}
	}
	return plotutil.Color(slices.Index(targets, t) % 7)
}

// FileName turns a case name into a file name: "http1/c=50/body=1k" is
// "http1_c=50_body=1k".
func FileName(caseName string) string { return strings.ReplaceAll(caseName, "/", "_") }

// WriteCharts writes, per case, requests/s and requests per proxy
// CPU-second over worker counts (each target a line, min–max as error bars,
// the direct run as a dashed level) and p50/p99 latency; and overview.png,
// the ratios of Monolake to nginx at the headline worker count (the largest
// whose proxy does not share CPUs with the load side; where a case lacks
// it, its largest). It returns the files written.
func WriteCharts(dir string, sums []Summary, caseOrder []string, headline int) ([]string, error) {
	var files []string
	var targets []string
	for _, s := range sums {
		if s.Target != TargetDirect && s.Target != TargetNginx && !slices.Contains(targets, s.Target) {
			targets = append(targets, s.Target)
		}
	}
	for _, c := range caseOrder {
		var cs []Summary
		for _, s := range sums {
			if s.Case == c && charted(s) {
				cs = append(cs, s)
			}
		}
		if len(cs) == 0 {
			continue
		}
		for _, m := range chartMetrics {
			f := filepath.Join(dir, FileName(c)+"-"+m.file+".png")
			if err := lineChart(f, c+" — "+m.title, m, cs, targets); err != nil {
				return files, err
			}
			files = append(files, f)
		}
		f := filepath.Join(dir, FileName(c)+"-latency.png")
		if err := latencyChart(f, c, cs, targets); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	f := filepath.Join(dir, "overview.png")
	ok, err := overviewChart(f, sums, caseOrder, targets, headline)
	if err != nil {
		return files, err
	}
	if ok {
		files = append(files, f)
	}
	return files, nil
}

// charted reports whether a summary goes into the charts: only those whose
// every run succeeded. A failed one is in table.txt, marked; drawn, its
// median of the runs left would pass for a result.
func charted(s Summary) bool { return s.Status == StatusOK && s.RPS.N > 0 }

// workerAxis sets integer ticks at the worker counts and pads the range.
func workerAxis(p *plot.Plot, cs []Summary) {
	var ws []int
	for _, s := range cs {
		if s.Target != TargetDirect && !slices.Contains(ws, s.Workers) {
			ws = append(ws, s.Workers)
		}
	}
	slices.Sort(ws)
	if len(ws) == 0 {
		ws = []int{1}
	}
	var ticks []plot.Tick
	for _, w := range ws {
		ticks = append(ticks, plot.Tick{Value: float64(w), Label: strconv.Itoa(w)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = float64(ws[0])-0.5, float64(ws[len(ws)-1])+0.5
	p.X.Label.Text = "workers"
	p.Y.Min = 0
}

func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

func lineChart(file, title string, m metric, cs []Summary, targets []string) error {
	p := newPlot(title)
	p.Y.Label.Text = m.ylabel
	workerAxis(p, cs)
	ymax := 0.0
	for _, t := range append([]string{TargetDirect, TargetNginx}, targets...) {
		var xys plotter.XYs
		var errs plotter.YErrors
		for _, s := range cs {
			v := m.value(s)
			if s.Target != t || v.N == 0 || math.IsNaN(v.Median) {
				continue
			}
			if t == TargetDirect {
				// A level across the chart: no proxy, no workers.
				xys = plotter.XYs{{X: p.X.Min, Y: v.Median}, {X: p.X.Max, Y: v.Median}}
			} else {
				xys = append(xys, plotter.XY{X: float64(s.Workers), Y: v.Median})
				errs = append(errs, struct{ Low, High float64 }{v.Median - v.Min, v.Max - v.Median})
			}
			ymax = max(ymax, v.Max)
		}
		if len(xys) == 0 {
			continue
		}
		slices.SortFunc(xys, func(a, b plotter.XY) int { return int(a.X - b.X) })
		col := targetColor(targets, t)
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("bench: chart %s: %w", file, err)
		}
		l.Color, l.Width = col, vg.Points(2)
		if t == TargetDirect {
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
			p.Add(l)
			p.Legend.Add("direct (no proxy)", l)
			continue
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("bench: chart %s: %w", file, err)
		}
		sc.Color, sc.Shape, sc.Radius = col, draw.CircleGlyph{}, vg.Points(3)
		eb := &plotter.YErrorBars{XYs: xys, YErrors: errs, LineStyle: draw.LineStyle{Color: col, Width: vg.Points(1)}, CapWidth: vg.Points(6)}
		p.Add(l, sc, eb)
		p.Legend.Add(t, l, sc)
	}
	p.Y.Max = ymax * 1.25 // room for the legend
	return p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

func latencyChart(file, name string, cs []Summary, targets []string) error {
	p := newPlot(name + " — latency p50 (solid) and p99 (dashed)")
	p.Y.Label.Text = "milliseconds"
	workerAxis(p, cs)
	ymax := 0.0
	drawn := false
	for _, t := range append([]string{TargetDirect, TargetNginx}, targets...) {
		for i, pick := range []func(Summary) Spread{
			func(s Summary) Spread { return s.P50Ms },
			func(s Summary) Spread { return s.P99Ms },
		} {
			var xys plotter.XYs
			for _, s := range cs {
				v := pick(s)
				if s.Target != t || v.N == 0 || math.IsNaN(v.Median) {
					continue
				}
				if t == TargetDirect {
					xys = plotter.XYs{{X: p.X.Min, Y: v.Median}, {X: p.X.Max, Y: v.Median}}
				} else {
					xys = append(xys, plotter.XY{X: float64(s.Workers), Y: v.Median})
				}
				ymax = max(ymax, v.Median)
			}
			if len(xys) == 0 {
				continue
			}
			slices.SortFunc(xys, func(a, b plotter.XY) int { return int(a.X - b.X) })
			l, sc, err := plotter.NewLinePoints(xys)
			if err != nil {
				return fmt.Errorf("bench: chart %s: %w", file, err)
			}
			col := targetColor(targets, t)
			l.Color, l.Width, sc.Color = col, vg.Points(2), col
			label := t + " p50"
			if i == 1 {
				l.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
				label = t + " p99"
			}
			if t == TargetDirect {
				p.Add(l)
				p.Legend.Add(label, l)
			} else {
				p.Add(l, sc)
				p.Legend.Add(label, l, sc)
			}
			drawn = true
		}
	}
	if !drawn {
		p.Title.Text += " (no percentiles from this client)"
	}
	p.Y.Max = max(ymax*1.4, 0.1)
	return p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

// overviewChart draws, per case, each Monolake target's requests per proxy
// CPU-second and requests/s relative to nginx at the headline worker count.
// It writes nothing (false) when no Monolake target ran.
func overviewChart(file string, sums []Summary, caseOrder []string, targets []string, headline int) (bool, error) {
	type bar struct{ eff, rps float64 }
	rows := map[string]map[string]bar{} // case → target → ratios
	var cases []string
	for _, c := range caseOrder {
		best := map[string]Summary{}
		for _, s := range sums {
			if s.Case != c || !strings.HasPrefix(s.Target, "monolake") || !charted(s) || math.IsNaN(s.VsNginxRPS) {
				continue
			}
			if cur, ok := best[s.Target]; !ok || s.Workers == headline ||
				(cur.Workers != headline && s.Workers > cur.Workers) {
				best[s.Target] = s
			}
		}
		if len(best) == 0 {
			continue
		}
		cases = append(cases, c)
		rows[c] = map[string]bar{}
		for t, s := range best {
			rows[c][t] = bar{s.VsNginxEff, s.VsNginxRPS}
		}
	}
	if len(cases) == 0 {
		return false, nil
	}
	// Top to bottom in run order.
	slices.Reverse(cases)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Monolake ÷ nginx, %d worker(s) (1 = parity)", headline)
	p.X.Label.Text = "ratio: req/proxy-CPU-s (solid), req/s (light)"
	p.X.Min = 0
	p.Legend.Top = true
	h := vg.Points(7)
	n := 0
	for _, t := range targets {
		var eff, rps plotter.Values
		any := false
		for _, c := range cases {
			b, ok := rows[c][t]
			if !ok {
				b = bar{0, 0}
			} else {
				any = true
			}
			eff = append(eff, nan0(b.eff))
			rps = append(rps, nan0(b.rps))
		}
		if !any {
			continue
		}
		col := targetColor(targets, t)
		be, err := plotter.NewBarChart(eff, h)
		if err != nil {
			return false, fmt.Errorf("bench: chart %s: %w", file, err)
		}
		br, err := plotter.NewBarChart(rps, h)
		if err != nil {
			return false, fmt.Errorf("bench: chart %s: %w", file, err)
		}
		be.Horizontal, br.Horizontal = true, true
		be.Color = col
		r, g, b, _ := col.RGBA()
		br.Color = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x70}
		be.LineStyle.Width, br.LineStyle.Width = 0, 0
		be.Offset = vg.Length(2*n)*h - h*vg.Length(len(targets))
		br.Offset = be.Offset + h
		p.Add(be, br)
		p.Legend.Add(t, be)
		n++
	}
	p.NominalY(cases...)
	ref, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.5}, {X: 1, Y: float64(len(cases)) - 0.5}})
	if err != nil {
		return false, err
	}
	ref.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	ref.Color = color.Gray{Y: 80}
	p.Add(ref)
	p.X.Max = max(p.X.Max*1.2, 1.3)
	height := vg.Length(1.5)*vg.Inch + vg.Length(len(cases))*vg.Length(2*n+2)*h
	if err := p.Save(8*vg.Inch, height, file); err != nil {
		return false, fmt.Errorf("bench: chart %s: %w", file, err)
	}
	return true, nil
}

func nan0(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}
