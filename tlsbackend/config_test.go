package tlsbackend

import (
	"slices"
	"testing"
)

// TestLoadCopiesCipherSuites: what Load returns (which a backend keeps for
// its handshakes) shares no list with the Config or DefaultCipherSuites,
// which may change afterwards.
func TestLoadCopiesCipherSuites(t *testing.T) {
	defaults := slices.Clone(DefaultCipherSuites)
	l, err := (&Config{}).Load(false)
	if err != nil {
		t.Fatal(err)
	}
	l.CipherSuites[0] = 0
	if !slices.Equal(DefaultCipherSuites, defaults) {
		DefaultCipherSuites = defaults
		t.Fatal("changing a loaded config's suites changed DefaultCipherSuites")
	}
	c := &Config{CipherSuites: slices.Clone(defaults[:2])}
	l, err = c.Load(false)
	if err != nil {
		t.Fatal(err)
	}
	c.CipherSuites[0] = 0
	if l.CipherSuites[0] != defaults[0] {
		t.Fatal("changing the Config's suites after Load changed the loaded ones")
	}
}
