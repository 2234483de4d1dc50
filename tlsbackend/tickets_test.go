package tlsbackend

import (
	"slices"
	"testing"
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
