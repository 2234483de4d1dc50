package bench

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name          string
		in            []float64
		med, min, max float64
		n             int
	}{
		{"one", []float64{5}, 5, 5, 5, 1},
		{"odd", []float64{3, 1, 2}, 2, 1, 3, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{"nan ignored", []float64{nan, 7, 1, nan, 4}, 4, 1, 7, 3},
		{"dupes", []float64{2, 2, 9, 2}, 2, 2, 9, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.in)
			if got.Median != tt.med || got.Min != tt.min || got.Max != tt.max || got.N != tt.n {
				t.Errorf("Summarize(%v) = %+v, want median %v min %v max %v n %d", tt.in, got, tt.med, tt.min, tt.max, tt.n)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		got := Summarize(nil)
		if !math.IsNaN(got.Median) || !math.IsNaN(got.Min) || !math.IsNaN(got.Max) || got.N != 0 {
			t.Errorf("Summarize(nil) = %+v, want NaNs", got)
		}
	})
	t.Run("input untouched", func(t *testing.T) {
		in := []float64{3, 1, 2}
		Summarize(in)
		if in[0] != 3 || in[1] != 1 || in[2] != 2 {
			t.Errorf("Summarize reordered its input: %v", in)
		}
	})
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b, want float64
	}{
		{10, 5, 2},
		{1, 4, 0.25},
		{0, 5, math.NaN()},
		{5, 0, math.NaN()},
		{math.NaN(), 1, math.NaN()},
		{math.Inf(1), 1, math.NaN()},
	}
	for _, tt := range tests {
		got := Ratio(tt.a, tt.b)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("Ratio(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
