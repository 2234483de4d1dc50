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

func (r *random[T]) pickSkip(skip func(T) bool, _ bool) (T, func(), bool) {
	return drawSkip(r.items, nil, skip)
}

// weighted picks by binary search over cumulative weights.
type weighted[T any] struct {
	items []T
	w     []int
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
	return &weighted[T]{items: items, w: w, cum: cum, total: total}
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

func (b *weighted[T]) pickSkip(skip func(T) bool, _ bool) (T, func(), bool) {
	return drawSkip(b.items, b.w, skip)
}

// drawSkip draws one of the items skip leaves, by weight (w nil: 1 each).
func drawSkip[T any](items []T, w []int, skip func(T) bool) (T, func(), bool) {
	weight := func(i int) int {
		if w == nil {
			return 1
		}
		return w[i]
	}
	total := 0
	for i, it := range items {
		if !skip(it) {
			total += weight(i)
		}
	}
	var zero T
	if total == 0 {
		return zero, nil, false
	}
	n := rand.IntN(total)
	for i, it := range items {
		if skip(it) {
			continue
		}
		if n < weight(i) {
			return it, noop, true
		}
		n -= weight(i)
	}
	return zero, nil, false
}

// roundRobin walks a precomputed smooth weighted sequence (nginx's smooth
// weighted round robin), so weights spread evenly instead of in bursts.
type roundRobin[T any] struct {
	items []T
	w     []int // the weights seq was made of
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
	return &roundRobin[T]{items: items, w: w, seq: seq}
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

// pickSkip takes the item at the next request's place in the sequence if
// it is not skipped. A skipped item's turn goes to one of the others drawn
// by weight, so they keep their shares among themselves (the next in the
// sequence would take it all). A retry takes no place (the next request
// would start where the failed one did) and draws among the others.
func (b *roundRobin[T]) pickSkip(skip func(T) bool, retry bool) (T, func(), bool) {
	if retry {
		return drawSkip(b.items, b.w, skip)
	}
	it, done := b.pickAvoiding(skip)
	return it, done, !skip(it)
}

// pickAvoiding is pickSkip for a new pick that, when every item is
// skipped, returns the item of its turn: one turn taken either way.
func (b *roundRobin[T]) pickAvoiding(skip func(T) bool) (T, func()) {
	i := b.next.Add(1) - 1
	it := b.items[b.seq[i%uint64(len(b.seq))]]
	if !skip(it) {
		return it, noop
	}
	if other, done, ok := drawSkip(b.items, b.w, skip); ok {
		return other, done
	}
	return it, noop
}

type first[T any] struct{ items []T }

func (b *first[T]) Pick() (T, func()) { return b.items[0], noop }
func (b *first[T]) Len() int          { return len(b.items) }

func (b *first[T]) pickSkip(skip func(T) bool, _ bool) (T, func(), bool) {
	for _, it := range b.items {
		if !skip(it) {
			return it, noop, true
		}
	}
	var zero T
	return zero, nil, false
}

// leastConn picks the item with the fewest picks in use relative to its
// weight; ties go to one of the tied at random, in proportion to their
// weights, so equal loads spread as the weights say.
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
	it, done, _ := b.pickSkip(nil, false)
	return it, done
}

func (b *leastConn[T]) pickSkip(skip func(T) bool, _ bool) (T, func(), bool) {
	b.mu.Lock()
	best, tied := -1, 0 // tied: the weight of the items tied with best
	for i, it := range b.items {
		if skip != nil && skip(it) {
			continue
		}
		if best < 0 {
			best, tied = i, b.weights[i]
			continue
		}
		// active[i]/w[i] < active[best]/w[best], without division.
		l, r := b.active[i]*int64(b.weights[best]), b.active[best]*int64(b.weights[i])
		switch {
		case l < r:
			best, tied = i, b.weights[i]
		case l == r:
			tied += b.weights[i]
			if rand.IntN(tied) < b.weights[i] {
				best = i
			}
		}
	}
	if best < 0 {
		b.mu.Unlock()
		var zero T
		return zero, nil, false
	}
	b.active[best]++
	b.mu.Unlock()
	return b.items[best], b.release[best], true
}
func (b *leastConn[T]) Len() int { return len(b.items) }

// skipPicker is a Balancer of this package: it picks among the items a
// predicate leaves, in its own way. retry says the pick replaces one that
// failed: round robin then does not move on a place.
type skipPicker[T any] interface {
	pickSkip(skip func(T) bool, retry bool) (T, func(), bool)
}

// PickFunc picks an item for which skip is false, the balancer's way among
// those (round robin walks on to the next one, least_conn compares those
// only, weighted random draws among their weights). ok is false when skip
// holds for every item; skip must not block.
func PickFunc[T any](b Balancer[T], skip func(T) bool) (T, func(), bool) {
	return pickSkip(b, skip, false)
}

func pickSkip[T any](b Balancer[T], skip func(T) bool, retry bool) (T, func(), bool) {
	if sp, ok := b.(skipPicker[T]); ok {
		return sp.pickSkip(skip, retry)
	}
	// Not ours: its own picks, a few times.
	for range 2 * b.Len() {
		it, done := b.Pick()
		if !skip(it) {
			return it, done, true
		}
		done()
	}
	var zero T
	return zero, nil, false
}

// PickOther picks an item of b other than not, for a retry after not
// failed. It reports false when b has no other item (or, for a Balancer not
// made by New, offers none within a few picks).
func PickOther[T comparable](b Balancer[T], not T) (T, func(), bool) {
	return PickExcept(b, []T{not})
}

// PickExcept is PickOther for several items to avoid (those tried
// already): a failover that goes on until every item was tried, as nginx's
// proxy_next_upstream does. ok is false when none is left.
func PickExcept[T comparable](b Balancer[T], tried []T) (T, func(), bool) {
	return PickExceptFunc(b, tried, func(T) bool { return false })
}

// PickAvoiding picks as PickFunc does, and when skip holds for every item
// makes the balancer's own pick instead: it never fails. Round robin takes
// one turn either way.
//
// The balancer's own pick comes first, as cheap as a plain Pick while
// nothing is skipped; only when it falls on a skipped item is the pick
// made again among the others, which gives each the share it would have
// were the skipped ones gone.
func PickAvoiding[T any](b Balancer[T], skip func(T) bool) (T, func()) {
	if rr, ok := b.(*roundRobin[T]); ok {
		return rr.pickAvoiding(skip)
	}
	it, done := b.Pick()
	if !skip(it) {
		return it, done
	}
	done()
	if it, done, ok := PickFunc(b, skip); ok {
		return it, done
	}
	return b.Pick()
}

// PickExceptFunc is PickExcept that also avoids the items skip names
// (those marked down, say): ok is false when only those are left.
func PickExceptFunc[T comparable](b Balancer[T], tried []T, skip func(T) bool) (T, func(), bool) {
	if b.Len() <= len(tried) {
		var zero T
		return zero, nil, false
	}
	return pickSkip(b, func(it T) bool { return skip(it) || slices.Contains(tried, it) }, true)
}
