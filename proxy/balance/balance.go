// Package balance chooses an upstream among several: random, weighted
// random, round robin, first, and least connections.
//
// A Balancer is used by one worker's goroutines and is safe for concurrent
// use. Pick returns the chosen item and a done function that the caller
// calls when it stops using the item (least_conn counts the items in use;
// the others ignore it, but callers always call it).
package balance

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// Policy names, as the config spells them.
const (
	RoundRobin     = "round_robin"
	Random         = "random"
	WeightedRandom = "weighted_random"
	First          = "first"
	LeastConn      = "least_conn"
)

// ErrEmpty is returned by New when there is nothing to choose from.
var ErrEmpty = errors.New("balance: no upstreams with a positive weight")

// Balancer picks one of a fixed set of items.
type Balancer[T any] interface {
	// Pick returns an item and the function to call when done with it.
	Pick() (item T, done func())
	// Len returns the number of items that can be picked.
	Len() int
}

func noop() {}

// New returns a Balancer over items with the given policy. weights[i] is the
// weight of items[i]; a nil weights means 1 each. Items of weight 0 are never
// picked. Round robin and least_conn honour weights too (an item of weight 3
// is picked three times as often as one of weight 1).
func New[T any](policy string, items []T, weights []int) (Balancer[T], error) {
	if weights != nil && len(weights) != len(items) {
		return nil, fmt.Errorf("balance: %d items but %d weights", len(items), len(weights))
	}
	var live []T
	var w []int
	total := 0
	for i, it := range items {
		wt := 1
		if weights != nil {
			wt = weights[i]
		}
		if wt < 0 {
			return nil, fmt.Errorf("balance: negative weight %d", wt)
		}
		if wt == 0 {
			continue
		}
		live = append(live, it)
		w = append(w, wt)
		total += wt
	}
	if len(live) == 0 {
		return nil, ErrEmpty
	}
	switch policy {
	case Random:
		return &random[T]{items: live}, nil
	case WeightedRandom:
		return newWeighted(live, w, total), nil
	case RoundRobin:
		return newRoundRobin(live, w), nil
	case First:
		return &first[T]{items: live}, nil
	case LeastConn:
		lc := &leastConn[T]{items: live, weights: w, active: make([]int64, len(live))}
		lc.releaseFuncs()
		return lc, nil
	}
	return nil, fmt.Errorf("balance: unknown policy %q", policy)
}

type random[T any] struct{ items []T }

func (r *random[T]) Pick() (T, func()) { return r.items[rand.IntN(len(r.items))], noop }
func (r *random[T]) Len() int          { return len(r.items) }
func (r *random[T]) all() []T          { return r.items }

// weighted picks by binary search over cumulative weights.
type weighted[T any] struct {
	items []T
	cum   []int
	total int
}

func newWeighted[T any](items []T, w []int, total int) *weighted[T] {
	cum := make([]int, len(w))
	sum := 0
	for i, x := range w {
		sum += x
		cum[i] = sum
	}
	return &weighted[T]{items: items, cum: cum, total: total}
}

func (b *weighted[T]) Pick() (T, func()) {
	n := rand.IntN(b.total)
	lo, hi := 0, len(b.cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if n < b.cum[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return b.items[lo], noop
}
func (b *weighted[T]) Len() int { return len(b.items) }
func (b *weighted[T]) all() []T { return b.items }

// roundRobin walks a precomputed smooth weighted sequence (nginx's smooth
// weighted round robin), so weights spread evenly instead of in bursts.
type roundRobin[T any] struct {
	items []T
	seq   []int
	next  atomic.Uint64
}

func newRoundRobin[T any](items []T, w []int) *roundRobin[T] {
	total := 0
	for _, x := range w {
		total += x
	}
	// Cap the sequence length; weights with a huge sum fall back to a
	// proportional sequence scaled down.
	const maxSeq = 1 << 16
	if total > maxSeq {
		scaled := make([]int, len(w))
		total = 0
		for i, x := range w {
			scaled[i] = max(1, x*maxSeq/sumInts(w))
			total += scaled[i]
		}
		w = scaled
	}
	cur := make([]int, len(w))
	seq := make([]int, 0, total)
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, best)
	}
	return &roundRobin[T]{items: items, seq: seq}
}

func sumInts(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

func (b *roundRobin[T]) Pick() (T, func()) {
	i := b.next.Add(1) - 1
	return b.items[b.seq[i%uint64(len(b.seq))]], noop
}
func (b *roundRobin[T]) Len() int { return len(b.items) }
func (b *roundRobin[T]) all() []T { return b.items }

type first[T any] struct{ items []T }

func (b *first[T]) Pick() (T, func()) { return b.items[0], noop }
func (b *first[T]) Len() int          { return len(b.items) }
func (b *first[T]) all() []T          { return b.items }

// leastConn picks the item with the fewest picks in use relative to its
// weight; ties go to a random one of the tied, so equal loads spread.
type leastConn[T any] struct {
	mu      sync.Mutex
	items   []T
	weights []int
	active  []int64
	// release[i] ends a pick of item i: made once, so that a pick does not
	// allocate. Callers call it once per pick.
	release []func()
}

// releaseFuncs makes b.release.
func (b *leastConn[T]) releaseFuncs() {
	b.release = make([]func(), len(b.items))
	for i := range b.items {
		b.release[i] = func() {
			b.mu.Lock()
			if b.active[i] > 0 {
				b.active[i]--
			}
			b.mu.Unlock()
		}
	}
}

func (b *leastConn[T]) Pick() (T, func()) {
	b.mu.Lock()
	best, ties := -1, 0
	for i := range b.items {
		if best < 0 {
			best, ties = i, 1
			continue
		}
		// active[i]/w[i] < active[best]/w[best], without division.
		l, r := b.active[i]*int64(b.weights[best]), b.active[best]*int64(b.weights[i])
		switch {
		case l < r:
			best, ties = i, 1
		case l == r:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	b.active[best]++
	b.mu.Unlock()
	return b.items[best], b.release[best]
}
func (b *leastConn[T]) Len() int { return len(b.items) }
func (b *leastConn[T]) all() []T { return b.items }

// PickOther picks an item of b other than not, for a retry after not
// failed: the balancer's own choice if it offers one within a few picks
// (random may repeat itself, first never moves), else the item after not
// among b's (its done does nothing). It reports false when b has no other
// item (or, for a Balancer not made by New, offers none).
func PickOther[T comparable](b Balancer[T], not T) (T, func(), bool) {
	return PickExcept(b, []T{not})
}

// PickExcept is PickOther for several items to avoid (those tried
// already): a failover that goes on until every item was tried, as nginx's
// proxy_next_upstream does. ok is false when none is left.
func PickExcept[T comparable](b Balancer[T], tried []T) (T, func(), bool) {
	var zero T
	if b.Len() <= len(tried) {
		return zero, nil, false
	}
	for range 2 * b.Len() {
		it, done := b.Pick()
		if !slices.Contains(tried, it) {
			return it, done, true
		}
		done()
	}
	a, ok := b.(interface{ all() []T })
	if !ok {
		return zero, nil, false
	}
	for _, it := range a.all() {
		if !slices.Contains(tried, it) {
			return it, noop, true
		}
	}
	return zero, nil, false
}
