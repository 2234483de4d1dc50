package tlsbackend

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

var registry struct {
	mu       sync.Mutex
	backends map[string]Backend
	missing  map[string]string // name → why it is not in this build
}

// Register makes b available under name. A backend package calls it from
// its init. It panics if name is registered twice.
func Register(name string, b Backend) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, dup := registry.backends[name]; dup {
		panic("tlsbackend: Register called twice for " + name)
	}
	if registry.backends == nil {
		registry.backends = map[string]Backend{}
	}
	registry.backends[name] = b
	delete(registry.missing, name)
}

// RegisterMissing records that the backend name exists but is not compiled
// into this build, and why; Get then says so. A backend package's stub
// calls it from its init.
func RegisterMissing(name, why string) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, ok := registry.backends[name]; ok {
		return
	}
	if registry.missing == nil {
		registry.missing = map[string]string{}
	}
	registry.missing[name] = why
}

// ErrUnknownBackend is wrapped by Get's error for a name no package
// registered.
var ErrUnknownBackend = errors.New("tlsbackend: unknown backend")

// Get returns the backend registered under name. For a backend that exists
// but is not in this build the error wraps errors.ErrUnsupported, e.g.
//
//	tlsbackend: backend "openssl" is not in this build (built without cgo/openssl tag); available: gotls
func Get(name string) (Backend, error) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if b, ok := registry.backends[name]; ok {
		return b, nil
	}
	avail := strings.Join(namesLocked(), ", ")
	if why, ok := registry.missing[name]; ok {
		return nil, unsupportedError(fmt.Sprintf("tlsbackend: backend %q is not in this build (%s); available: %s", name, why, avail))
	}
	return nil, fmt.Errorf("%w %q; available: %s", ErrUnknownBackend, name, avail)
}

func namesLocked() []string {
	names := make([]string, 0, len(registry.backends))
	for n := range registry.backends {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Names lists the backends compiled in, sorted, each with its version, as
// "gotls (crypto/tls, go1.26.8)" and "openssl (OpenSSL 3.0.13 30 Jan 2024)":
// the line `monolake version` prints.
func Names() []string {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	names := namesLocked()
	for i, n := range names {
		names[i] = n + " (" + registry.backends[n].Version() + ")"
	}
	return names
}

// Available lists the names of the backends compiled in, sorted.
func Available() []string {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return namesLocked()
}

// unsupportedError is a message wrapping errors.ErrUnsupported without
// repeating its text.
type unsupportedError string

func (e unsupportedError) Error() string { return string(e) }
func (e unsupportedError) Unwrap() error { return errors.ErrUnsupported }
