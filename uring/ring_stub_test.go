//go:build !(uring && cgo)

package uring

import (
	"errors"
	"syscall"
	"testing"
)

// TestStubUnsupported checks that every call of the stub build that can
// fail does, with an error wrapping errors.ErrUnsupported.
func TestStubUnsupported(t *testing.T) {
	if Available {
		t.Fatal("stub build says Available")
	}
	r := &Ring{}
	calls := []struct {
		name string
		err  func() error
	}{
		{"New", func() error {
			r, err := New(Params{})
			if r != nil {
				t.Error("New returned a Ring")
			}
			return err
		}},
		{"Check", Check},
		{"Probe", func() error {
			p, err := Probe()
			if p != nil {
				t.Error("Probe returned info")
			}
			return err
		}},
		{"Alloc", func() error { _, err := Alloc(4096); return err }},
		{"Free", func() error { return Free(make([]byte, 1)) }},
		{"Ring.Close", r.Close},
		{"Ring.Enter", func() error { _, err := r.Enter(1, 0); return err }},
		{"Ring.RegisterEventfd", func() error { _, err := r.RegisterEventfd(); return err }},
		{"Ring.RegisterBuffers", func() error { return r.RegisterBuffers([][]byte{make([]byte, 8)}) }},
		{"Ring.Probe", func() error { _, err := r.Probe(); return err }},
		{"Ring.NewBufRing", func() error { _, err := r.NewBufRing(0, 4, 64); return err }},
		{"Ring.Connect", func() error { return r.Connect(1, 0, &syscall.SockaddrInet4{}) }},
		{"BufRing.Close", (&BufRing{r: r, ring: make([]byte, 16)}).Close},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.err(); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("%s = %v, want an error wrapping errors.ErrUnsupported", c.name, err)
			}
		})
	}
	// The queueing methods have nothing to report and must not panic.
	r.Nop(1)
	r.Send(1, 0, nil, 0)
	r.RecvMultishot(1, 0, &BufRing{}, 0)
	r.LinkTimeout(1, 0)
	if r.Pending() != 0 || r.Fd() != -1 {
		t.Error("stub Ring reports state")
	}
}
