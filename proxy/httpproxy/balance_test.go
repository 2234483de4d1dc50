package httpproxy

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// threeUpstreams starts three echo upstreams and returns them and a route
// over them with the given balancer and weights.
func threeUpstreams(t *testing.T, lb string, weights ...int) ([]*echoUpstream, string) {
	var ups []*echoUpstream
	var eps []string
	for i := range 3 {
		u := newEchoUpstream(t, fmt.Sprint("u", i))
		ups = append(ups, u)
		w := 1
		if weights != nil {
			w = weights[i]
		}
		eps = append(eps, fmt.Sprintf("{ endpoint = { type = \"socket\", value = %q }, weight = %d }", u.addr(), w))
	}
	r := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nload_balancer = %q\nupstreams = [%s]\n", lb, strings.Join(eps, ", "))
	return ups, r
}

func TestBalancers(t *testing.T) {
	const n = 600
	for _, tc := range []struct {
		lb      string
		weights []int
		check   func(t *testing.T, seq []string)
	}{
		{"round_robin", nil, func(t *testing.T, seq []string) {
			for i := 3; i < len(seq); i++ {
				if seq[i] != seq[i-3] {
					t.Fatalf("request %d went to %s, request %d to %s: not a cycle: %v", i, seq[i], i-3, seq[i-3], seq[:9])
				}
			}
			if seq[0] == seq[1] || seq[1] == seq[2] || seq[0] == seq[2] {
				t.Fatalf("first three %v", seq[:3])
			}
		}},
		{"random", nil, binomial(n, map[string]float64{"u0": 1. / 3, "u1": 1. / 3, "u2": 1. / 3})},
		{"weighted_random", []int{1, 2, 3}, binomial(n, map[string]float64{"u0": 1. / 6, "u1": 2. / 6, "u2": 3. / 6})},
		{"first", nil, func(t *testing.T, seq []string) {
			for i, s := range seq {
				if s != "u0" {
					t.Fatalf("request %d went to %s", i, s)
				}
			}
		}},
	} {
		t.Run("lb="+tc.lb, func(t *testing.T) {
			_, r := threeUpstreams(t, tc.lb, tc.weights...)
			p := startProxy(t, serverTOML("", r), Options{})
			c := client(t)
			seq := make([]string, n)
			for i := range seq {
				resp, body := do(t, c, "GET", "http://"+p.Addr+"/x", "", nil, nil)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				seq[i] = resp.Header.Get("X-Upstream")
			}
			tc.check(t, seq)
		})
	}
}

// binomial checks each name's count is within 5 standard deviations of
// its expectation.
func binomial(n int, p map[string]float64) func(t *testing.T, seq []string) {
	return func(t *testing.T, seq []string) {
		counts := map[string]int{}
		for _, s := range seq {
			counts[s]++
		}
		for name, pi := range p {
			mean := float64(n) * pi
			sd := math.Sqrt(float64(n) * pi * (1 - pi))
			if d := math.Abs(float64(counts[name]) - mean); d > 5*sd {
				t.Errorf("%s got %d of %d, want %.0f ± %.0f", name, counts[name], n, mean, 5*sd)
			}
		}
		if len(counts) != len(p) {
			t.Errorf("counts %v", counts)
		}
	}
}

// TestLeastConn holds requests on two upstreams; every further request must
// go to the idle third.
func TestLeastConn(t *testing.T) {
	ups, r := threeUpstreams(t, "least_conn")
	arrived := make(chan string, 10)
	release := make(chan struct{})
	for _, u := range ups {
		name := u.Name
		inner := u.Server.Config.Handler
		u.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/slow" {
				arrived <- name
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}
			inner.ServeHTTP(w, req)
		})
	}
	p := startProxy(t, serverTOML("", r), Options{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	busy := map[string]bool{}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, client(t), "GET", "http://"+p.Addr+"/slow", "", nil, nil)
		}()
		select {
		case name := <-arrived:
			busy[name] = true
		case <-time.After(5 * time.Second):
			t.Fatal("slow request did not arrive")
		}
	}
	if len(busy) != 2 {
		t.Fatalf("both slow requests went to %v", busy)
	}
	c := client(t)
	for i := range 30 {
		resp, _ := do(t, c, "GET", "http://"+p.Addr+"/fast", "", nil, nil)
		if name := resp.Header.Get("X-Upstream"); busy[name] {
			t.Fatalf("fast request %d went to busy %s", i, name)
		}
	}
}
