package bench

import (
	"slices"
	"testing"
)

func TestSplitCPUs(t *testing.T) {
	tests := []struct {
		cpus        []int
		maxW        int
		proxy, load []int
	}{
		{[]int{0, 1}, 1, []int{0, 1}, []int{1}},
		{[]int{0, 1}, 2, []int{0, 1}, []int{1}},
		{[]int{0}, 1, []int{0}, []int{0}},
		{[]int{0, 1, 2, 3, 4, 5, 6, 7}, 4, []int{0, 1, 2, 3, 4, 5, 6, 7}, []int{4, 5, 6, 7}},
		{[]int{0, 1, 2, 3, 4, 5, 6, 7}, 8, []int{0, 1, 2, 3, 4, 5, 6, 7}, []int{6, 7}},
	}
	for _, tt := range tests {
		p, l := SplitCPUs(tt.cpus, tt.maxW)
		if !slices.Equal(p, tt.proxy) || !slices.Equal(l, tt.load) {
			t.Errorf("SplitCPUs(%v, %d) = %v, %v; want %v, %v", tt.cpus, tt.maxW, p, l, tt.proxy, tt.load)
		}
	}
	if got := ProxyCPUs([]int{0, 1}, 0); !slices.Equal(got, []int{0}) {
		t.Errorf("ProxyCPUs(w=0) = %v", got)
	}
	if got := ProxyCPUs([]int{0, 1}, 4); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("ProxyCPUs(w=4) = %v", got)
	}
	if !Overlaps([]int{0, 1}, []int{1}) || Overlaps([]int{0}, []int{1}) {
		t.Error("Overlaps wrong")
	}
}

func TestParseCPUs(t *testing.T) {
	got, err := ParseCPUs("0-2, 5,7-7")
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 5, 7}) {
		t.Errorf("ParseCPUs = %v, %v", got, err)
	}
	if FormatCPUs(got) != "0,1,2,5,7" {
		t.Errorf("FormatCPUs = %q", FormatCPUs(got))
	}
	for _, bad := range []string{"", "a", "3-1", "-1"} {
		if _, err := ParseCPUs(bad); err == nil {
			t.Errorf("ParseCPUs(%q) succeeded", bad)
		}
	}
}

func TestHeadlineWorkers(t *testing.T) {
	tests := []struct {
		ws, pool, load []int
		want           int
	}{
		{[]int{1, 2}, []int{0, 1}, []int{1}, 1},
		{[]int{2, 1}, []int{0, 1}, []int{1}, 1},
		{[]int{2}, []int{0, 1}, []int{1}, 2},
		{[]int{1, 2, 4, 8}, []int{0, 1, 2, 3, 4, 5, 6, 7}, []int{4, 5, 6, 7}, 4},
	}
	for _, tt := range tests {
		if got := HeadlineWorkers(tt.ws, tt.pool, tt.load); got != tt.want {
			t.Errorf("HeadlineWorkers(%v, %v, %v) = %d, want %d", tt.ws, tt.pool, tt.load, got, tt.want)
		}
	}
}
