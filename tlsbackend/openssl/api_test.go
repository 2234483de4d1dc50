package openssl

import (
	"errors"
	"testing"

	"github.com/monolake-go/monolake/tlsbackend"
)

// Both builds keep one API; this file, built on both sides, checks it.
var (
	_ tlsbackend.Backend = Backend{}
	_ func() string      = Version
	_ bool               = Available
)

func TestBuildSide(t *testing.T) {
	b, err := tlsbackend.Get(Name)
	if !Available {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("Get(%q) = %v, %v; want an error wrapping errors.ErrUnsupported", Name, b, err)
		}
		if _, err := (Backend{}).NewServerConfig(&tlsbackend.Config{}); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("stub NewServerConfig = %v", err)
		}
		t.Skip("openssl backend not in this build (built without cgo/openssl tag)")
	}
	if err != nil {
		t.Fatal(err)
	}
	if v := b.Version(); len(v) < len("OpenSSL 3") || v[:9] != "OpenSSL 3" {
		t.Errorf("Version() = %q, want OpenSSL 3.x", v)
	}
	t.Log(b.Version())
}
