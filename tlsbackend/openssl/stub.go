//go:build !(openssl && cgo)

package openssl

import (
	"errors"
	"fmt"

	"github.com/monolake-go/monolake/tlsbackend"
)

// Available reports that this build has no OpenSSL backend.
const Available = false

// ErrNotBuilt is returned by the stub Backend: the package was built
// without cgo or the openssl tag.
var ErrNotBuilt = fmt.Errorf("openssl: not in this build (built without cgo/openssl tag): %w", errors.ErrUnsupported)

// The stub registers the name as missing, so that tlsbackend.Get("openssl")
// explains why instead of calling it unknown.
func init() { tlsbackend.RegisterMissing(Name, "built without cgo/openssl tag") }

// Version is empty in this build.
func Version() string { return "" }

// Backend keeps the API of the cgo build; its constructors return
// ErrNotBuilt. It is not registered.
type Backend struct{}

var _ tlsbackend.Backend = Backend{}

func (Backend) Name() string    { return Name }
func (Backend) Version() string { return "" }

func (Backend) NewServerConfig(*tlsbackend.Config) (tlsbackend.ServerConfig, error) {
	return nil, ErrNotBuilt
}

func (Backend) NewClientConfig(*tlsbackend.Config) (tlsbackend.ClientConfig, error) {
	return nil, ErrNotBuilt
}
