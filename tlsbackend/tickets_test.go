package tlsbackend

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestTicketKeyRotator(t *testing.T) {
	r := NewTicketKeyRotator(2)
	var got [][]TicketKey
	cancel := r.Subscribe(func(k []TicketKey) { got = append(got, k) })
	first := r.Keys()
	if len(first) != 1 || len(got) != 1 || !slices.Equal(got[0], first) {
		t.Fatalf("initial keys %d, notified %v", len(first), got)
	}
	r.Rotate()
	r.Rotate()
	keys := r.Keys()
	if len(keys) != 2 || slices.Contains(keys, first[0]) {
		t.Errorf("after two rotations with keep=2: %d keys, first key kept: %v", len(keys), slices.Contains(keys, first[0]))
	}
	if len(got) != 3 || !slices.Equal(got[2], keys) {
		t.Errorf("subscriber saw %d updates", len(got))
	}
	shared := []TicketKey{{1}, {2}, {3}}
	r.SetKeys(shared)
	if k := r.Keys(); !slices.Equal(k, shared[:2]) {
		t.Errorf("SetKeys kept %v", k)
	}
	cancel()
	r.Rotate()
	if len(got) != 4 {
		t.Errorf("subscriber called after cancel: %d updates", len(got))
	}
	n1, a1, h1 := DeriveTicketKey(TicketKey{1})
	n2, a2, h2 := DeriveTicketKey(TicketKey{2})
	if n1 == n2 || a1 == a2 || h1 == h2 || [32]byte(a1) == h1 {
		t.Error("derived ticket keys collide")
	}
}

func TestEpochTicketKeys(t *testing.T) {
	const period = time.Hour
	secret := TicketKey{1}
	t0 := time.Unix(0, 0).Add(1000*period + period/2)
	k0 := EpochTicketKeys(secret, period, 2, t0)
	if len(k0) != 4 {
		t.Fatalf("%d keys, want current, next and 2 older", len(k0))
	}
	if !slices.Equal(k0, EpochTicketKeys(secret, period, 2, t0.Add(period/2-1))) {
		t.Error("keys changed within a period")
	}
	k1 := EpochTicketKeys(secret, period, 2, t0.Add(period/2))
	k2 := EpochTicketKeys(secret, period, 2, t0.Add(period+period/2))
	// One period on: the next key is current, the current one the
	// newest older one, and the next is the one current a period later.
	if want := []TicketKey{k0[1], k2[0], k0[0], k0[2]}; !slices.Equal(k1, want) {
		t.Errorf("after a boundary: %x\nwant %x", k1, want)
	}
	if other := EpochTicketKeys(TicketKey{2}, period, 2, t0); slices.ContainsFunc(other, func(k TicketKey) bool { return slices.Contains(k0, k) }) {
		t.Error("two secrets share a key")
	}
	before := EpochTicketKeys(secret, period, 2, time.Now())
	r := NewSharedTicketKeyRotator(secret, period, 2)
	after := EpochTicketKeys(secret, period, 2, time.Now())
	if k := r.Keys(); !slices.Equal(k, before) && !slices.Equal(k, after) {
		t.Error("a new shared rotator does not hold the current period's keys")
	}
}

// TestFollow: a shared rotator moves to the next period's keys at the
// boundary and tells its subscribers.
func TestFollow(t *testing.T) {
	const period = time.Second
	secret := TicketKey{3}
	r := NewSharedTicketKeyRotator(secret, period, 1)
	updates := make(chan []TicketKey, 16)
	defer r.Subscribe(func(k []TicketKey) { updates <- k })()
	prev := <-updates // the keys at Subscribe
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Follow(ctx); close(done) }()
	for range 2 {
		select {
		case k := <-updates:
			// The next period's key is current now, unless the test
			// was held up past a whole period.
			if k[0] != prev[1] && !slices.Equal(k, EpochTicketKeys(secret, period, 1, time.Now())) {
				t.Errorf("keys after a boundary are not the next period's")
			}
			prev = k
		case <-time.After(5 * time.Second):
			t.Fatal("no rotation within 5s with a 1s period")
		}
	}
	cancel()
	<-done
	NewTicketKeyRotator(1).Follow(ctx) // not shared: returns at once
}
