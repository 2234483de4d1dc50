package balance

import (
	"math"
	"testing"
)

func counts(t *testing.T, b Balancer[string], n int) map[string]int {
	t.Helper()
	c := map[string]int{}
	for range n {
		it, done := b.Pick()
		c[it]++
		done()
	}
	return c
}

func TestDistribution(t *testing.T) {
	items := []string{"a", "b", "c"}
	const n = 30000
	tests := []struct {
		policy  string
		weights []int
		want    map[string]float64 // expected share
		exact   bool               // deterministic policies must hit it exactly
	}{
		{Random, nil, map[string]float64{"a": 1. / 3, "b": 1. / 3, "c": 1. / 3}, false},
		{WeightedRandom, []int{1, 2, 3}, map[string]float64{"a": 1. / 6, "b": 2. / 6, "c": 3. / 6}, false},
		{WeightedRandom, []int{0, 1, 1}, map[string]float64{"b": .5, "c": .5}, false},
		{RoundRobin, nil, map[string]float64{"a": 1. / 3, "b": 1. / 3, "c": 1. / 3}, true},
		{RoundRobin, []int{5, 1, 0}, map[string]float64{"a": 5. / 6, "b": 1. / 6}, true},
		{First, nil, map[string]float64{"a": 1}, true},
		{First, []int{0, 4, 1}, map[string]float64{"b": 1}, true},
		{LeastConn, nil, map[string]float64{"a": 1. / 3, "b": 1. / 3, "c": 1. / 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			b, err := New(tt.policy, items, tt.weights)
			if err != nil {
				t.Fatal(err)
			}
			got := counts(t, b, n)
			for k := range got {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("picked %q, which should never be picked", k)
				}
			}
			for k, share := range tt.want {
				exp := share * n
				if tt.exact {
					if math.Abs(float64(got[k])-exp) > 1 {
						t.Errorf("%s: got %d picks of %q, want %.0f", tt.policy, got[k], k, exp)
					}
					continue
				}
				// 5 standard deviations of a binomial: flaky about never.
				sd := math.Sqrt(n * share * (1 - share))
				if math.Abs(float64(got[k])-exp) > 5*sd+1 {
					t.Errorf("%s: got %d picks of %q, want %.0f±%.0f", tt.policy, got[k], k, exp, 5*sd)
				}
			}
		})
	}
}

func TestRoundRobinSmooth(t *testing.T) {
	b, _ := New(RoundRobin, []string{"a", "b"}, []int{2, 1})
	var seq string
	for range 6 {
		it, _ := b.Pick()
		seq += it
	}
	if seq != "abaaba" {
		t.Fatalf("weighted round robin sequence %q, want abaaba", seq)
	}
}

func TestLeastConnPrefersIdle(t *testing.T) {
	b, _ := New(LeastConn, []string{"a", "b", "c"}, nil)
	held := map[string]func(){}
	for range 3 {
		it, done := b.Pick()
		if _, dup := held[it]; dup {
			t.Fatalf("picked busy %q while another item was idle", it)
		}
		held[it] = done
	}
	held["b"]()
	held["b"]() // done twice must not count twice
	if it, _ := b.Pick(); it != "b" {
		t.Fatalf("picked %q, want b, the only idle item", it)
	}
	// b is now busy again; a, b and c are each held once, so after one more
	// release of a, a must come next.
	held["a"]()
	if it, _ := b.Pick(); it != "a" {
		t.Fatalf("picked %q, want the released a", it)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Random, []string{"a"}, []int{0}); err != ErrEmpty {
		t.Fatalf("all-zero weights: %v", err)
	}
	if _, err := New("bogus", []string{"a"}, nil); err == nil {
		t.Fatal("unknown policy accepted")
	}
	if _, err := New(Random, []string{"a"}, []int{1, 2}); err == nil {
		t.Fatal("mismatched weights accepted")
	}
	if _, err := New(Random, []string{"a", "b"}, []int{1, -1}); err == nil {
		t.Fatal("negative weight accepted")
	}
}

// TestPickOther: every policy offers the other item after a failure, even
// those that would keep offering the failed one (random, first), and none
// when there is no other.
func TestPickOther(t *testing.T) {
	for _, p := range []string{RoundRobin, Random, WeightedRandom, First, LeastConn} {
		b, err := New(p, []string{"a", "b"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			it, done, ok := PickOther(b, "a")
			if !ok || it != "b" {
				t.Fatalf("%s: PickOther(a) = %q, %v; want b", p, it, ok)
			}
			done()
		}
		one, _ := New(p, []string{"a", "b"}, []int{1, 0})
		if _, _, ok := PickOther(one, "a"); ok {
			t.Fatalf("%s: another item offered with only one live", p)
		}
	}
}

// TestPickAllocs: a pick and its release allocate nothing, least_conn
// included (it made a closure and a sync.Once per pick).
func TestPickAllocs(t *testing.T) {
	for _, policy := range []string{RoundRobin, LeastConn, WeightedRandom, Random, First} {
		b, err := New(policy, []string{"a", "b", "c"}, []int{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _, done := b.Pick(); done() }); n != 0 {
			t.Errorf("%s: %v allocations per pick", policy, n)
		}
	}
}

// TestRoundRobinRetryKeepsPlace: a failover pick does not take the next
// request's place, so with [dead, live] every other request, not every
// one, starts on the dead item.
func TestRoundRobinRetryKeepsPlace(t *testing.T) {
	b, _ := New(RoundRobin, []string{"dead", "live"}, nil)
	firstDead := 0
	for range 100 {
		it, done := b.Pick()
		if it == "dead" {
			firstDead++
			done()
			if it, done, _ = PickExcept(b, []string{"dead"}); it != "live" {
				t.Fatalf("failover picked %q", it)
			}
		}
		done()
	}
	if firstDead != 50 {
		t.Fatalf("dead picked first by %d of 100 requests, want 50", firstDead)
	}
}

// TestLeastConnFailover: least_conn's failover picks are its own: the
// least loaded of the untried items, counted while in use. (They went to
// the first untried item in config order, uncounted.)
func TestLeastConnFailover(t *testing.T) {
	b, _ := New(LeastConn, []string{"dead", "a", "b"}, nil)
	c := map[string]int{}
	for range 100 {
		it, done := b.Pick()
		if it == "dead" { // refused
			done()
			it, done, _ = PickExcept(b, []string{"dead"})
		}
		c[it]++
		_ = done // held: requests stay in flight
	}
	if c["a"]+c["b"]+c["dead"] != 100 || c["a"] < 20 || c["b"] < 20 || c["a"]-c["b"] > 1 || c["b"]-c["a"] > 1 {
		t.Fatalf("picks %v; want a and b even (held picks count)", c)
	}
}

// TestLeastConnTiesByWeight: with no pick in use every item ties; the ties
// go by weight, as the weights promise.
func TestLeastConnTiesByWeight(t *testing.T) {
	b, _ := New(LeastConn, []string{"heavy", "light"}, []int{3, 1})
	got := counts(t, b, 8000)
	if got["heavy"] < 5700 || got["heavy"] > 6300 {
		t.Fatalf("weights 3:1 gave %v sequential picks, want about 6000:2000", got)
	}
}

// TestPickFunc: every policy picks among the items skip leaves, its own
// way (round robin in turn, weighted by weight), and reports none left.
func TestPickFunc(t *testing.T) {
	items := []string{"a", "b", "c", "d"}
	skipB := func(s string) bool { return s == "b" }
	for _, p := range []string{RoundRobin, Random, WeightedRandom, First, LeastConn} {
		b, err := New(p, items, []int{1, 1, 2, 1})
		if err != nil {
			t.Fatal(err)
		}
		c := map[string]int{}
		for range 5000 {
			it, done, ok := PickFunc(b, skipB)
			if !ok {
				t.Fatalf("%s: nothing picked", p)
			}
			c[it]++
			done()
		}
		if c["b"] != 0 {
			t.Fatalf("%s: skipped item picked %d times", p, c["b"])
		}
		switch p {
		case First:
			if c["a"] != 5000 {
				t.Fatalf("first: %v", c)
			}
		case Random:
			for _, k := range []string{"a", "c", "d"} {
				if c[k] < 1400 || c[k] > 1950 {
					t.Fatalf("%s: %v, want a, c, d even", p, c)
				}
			}
		default: // weights 1, 2, 1 among a, c, d
			if c["c"] < 2200 || c["c"] > 2800 || c["a"] < 1000 || c["d"] < 1000 {
				t.Fatalf("%s: %v, want a:c:d about 1:2:1", p, c)
			}
		}
		if _, _, ok := PickFunc(b, func(string) bool { return true }); ok {
			t.Fatalf("%s: a pick with every item skipped", p)
		}
	}
}

// TestRoundRobinRetryShares: a retry after a failed item gives its turn to
// the others by weight, not all to the next one in the sequence.
func TestRoundRobinRetryShares(t *testing.T) {
	b, _ := New(RoundRobin, []string{"dead", "b", "c"}, nil)
	c := map[string]int{}
	for range 6000 {
		it, done := b.Pick()
		if it == "dead" {
			done()
			it, done, _ = PickExcept(b, []string{"dead"})
		}
		c[it]++
		done()
	}
	if c["b"] < 2700 || c["c"] < 2700 {
		t.Fatalf("served by %v; want b and c about even", c)
	}
}

// TestPickAvoiding: with every item skipped the pick is the balancer's
// own, and round robin takes one turn, so the items still alternate.
func TestPickAvoiding(t *testing.T) {
	b, _ := New(RoundRobin, []string{"a", "b"}, nil)
	c := map[string]int{}
	for range 100 {
		it, done := PickAvoiding(b, func(string) bool { return true })
		c[it]++
		done()
	}
	if c["a"] != 50 {
		t.Fatalf("all skipped, round robin: %v, want 50/50", c)
	}
	for _, p := range []string{Random, WeightedRandom, First, LeastConn} {
		b, _ := New(p, []string{"a", "b"}, nil)
		for range 20 {
			if it, done := PickAvoiding(b, func(s string) bool { return s == "a" }); it != "b" {
				t.Fatalf("%s: picked skipped %q with b left", p, it)
			} else {
				done()
			}
		}
		it, done := PickAvoiding(b, func(string) bool { return true })
		if it != "a" && it != "b" {
			t.Fatalf("%s: all skipped: %q", p, it)
		}
		done()
	}
}
