//go:build !(uring && cgo)

package netio

import (
	"context"
	"errors"
	"testing"
)

func TestUringStub(t *testing.T) {
	if UringBuilt {
		t.Fatal("UringBuilt is true in a build without io_uring")
	}
	if err := UringAvailable(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("UringAvailable() = %v, want an error wrapping errors.ErrUnsupported", err)
	}
	d, err := NewUring(UringParams{})
	if d != nil || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("NewUring = %v, %v; want nil and an error wrapping errors.ErrUnsupported", d, err)
	}
	if _, err := d.Listen("tcp", "127.0.0.1:0"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Listen: %v", err)
	}
	if _, err := d.Dial(context.Background(), "tcp", "127.0.0.1:1"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Dial: %v", err)
	}
	if _, err := d.FileListener(nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("FileListener: %v", err)
	}
	if err := d.Close(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Close: %v", err)
	}
}
