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

// TestTicketRatchet: copies of one ratchet advanced apart agree on the keys
// of each period; keys move along the window at each turn; a secret that
// left the window is gone from the state; labels do not share keys; a
// clock gone back moves nothing.
func TestTicketRatchet(t *testing.T) {
	const period = time.Hour
	base := NewTicketRatchet(period, 2)
	t0 := time.Unix(0, base.Index*int64(period)).Add(period / 2)
	a, b := base.Clone(), base.Clone()
	a.Advance(t0.Add(3 * period))
	for i := 1; i <= 3; i++ {
		b.Advance(t0.Add(time.Duration(i) * period)) // one turn at a time
	}
	if !slices.Equal(a.Keys("s"), b.Keys("s")) || a.Index != base.Index+3 {
		t.Fatal("copies advanced apart disagree")
	}
	k0, k1 := base.Keys("s"), base.Clone()
	k1.Advance(t0.Add(period))
	// One period on: the next key is current, the current one the newest
	// older one.
	if keys := k1.Keys("s"); keys[0] != k0[1] || keys[2] != k0[0] || keys[3] != k0[2] || len(keys) != 4 {
		t.Errorf("after a turn: %x\nfrom %x", keys, k0)
	}
	for _, s := range a.Secrets {
		if slices.Contains(base.Secrets, s) {
			t.Error("a secret three periods old is still in the state")
		}
	}
	if slices.ContainsFunc(base.Keys("other"), func(k TicketKey) bool { return slices.Contains(k0, k) }) {
		t.Error("two labels share a key")
	}
	back := a.Clone()
	back.Advance(t0)
	if back.Index != a.Index {
		t.Error("a clock gone back moved the ratchet")
	}
	if other := NewTicketRatchet(period, 2); slices.Equal(other.Keys("s"), k0) {
		t.Error("two new ratchets share keys")
	}
}

// TestFollow: a ratchet's rotator moves to the next period's keys at the
// boundary and tells its subscribers.
func TestFollow(t *testing.T) {
	const period = time.Second
	r := NewRatchetTicketKeyRotator(NewTicketRatchet(period, 1), "s")
	updates := make(chan []TicketKey, 16)
	defer r.Subscribe(func(k []TicketKey) { updates <- k })()
	prev := <-updates // the keys at Subscribe
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Follow(ctx); close(done) }()
	for range 2 {
		select {
		case k := <-updates:
			// The next period's key is current now, unless the test was
			// held up past a whole period.
			if k[0] != prev[1] && k[2] != prev[1] {
				t.Errorf("keys after a boundary are not the next period's")
			}
			prev = k
		case <-time.After(5 * time.Second):
			t.Fatal("no rotation within 5s with a 1s period")
		}
	}
	cancel()
	<-done
	NewTicketKeyRotator(1).Follow(ctx) // not a ratchet's: returns at once
}

// TestTicketKeysCapped: no rotator holds more than MaxTicketKeys keys (the
// openssl backend's room), so both backends accept the same tickets.
func TestTicketKeysCapped(t *testing.T) {
	r := NewTicketKeyRotator(20)
	for range 20 {
		r.Rotate()
	}
	if n := len(r.Keys()); n != MaxTicketKeys {
		t.Errorf("rotator asked to keep 20 holds %d keys, want %d", n, MaxTicketKeys)
	}
	if n := len(NewRatchetTicketKeyRotator(NewTicketRatchet(time.Hour, 20), "s").Keys()); n != MaxTicketKeys {
		t.Errorf("ratchet rotator keeping 20 older periods holds %d keys, want %d", n, MaxTicketKeys)
	}
	big := NewTicketRatchet(time.Hour, 0)
	big.Secrets = make([]TicketKey, 12) // a state written by hand
	if n := len(big.Keys("s")); n != MaxTicketKeys {
		t.Errorf("ratchet with 12 secrets gives %d keys, want %d", n, MaxTicketKeys)
	}
}
