//go:build !(uring && cgo)

package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/monolake-go/monolake/uring"
)

// UringBuilt reports that this build has no io_uring driver (it needs cgo
// and the "uring" tag): NewUring fails with an error wrapping
// errors.ErrUnsupported, and workers use the epoll driver (package net).
const UringBuilt = false

// ErrUringClosed is returned by calls on a closed driver.
var ErrUringClosed = errors.New("netio: io_uring driver closed")

var errNoUring = fmt.Errorf("netio: io_uring driver not built in (build with CGO_ENABLED=1 -tags uring): %w", errors.ErrUnsupported)

// Uring is the stub of the io_uring driver; NewUring never returns one.
type Uring struct{}

// NewUring returns an error wrapping errors.ErrUnsupported.
func NewUring(p UringParams) (*Uring, error) { return nil, errNoUring }

// The methods mirror uring_driver.go, where they are documented; here they
// return errors wrapping errors.ErrUnsupported.

func (d *Uring) Close() error                                  { return errNoUring }
func (d *Uring) Flags() uring.SetupFlags                       { return 0 }
func (d *Uring) Stats() uring.Stats                            { return uring.Stats{} }
func (d *Uring) BuffersOut() int                               { return 0 }
func (d *Uring) RecvBuffers() int                              { return 0 }
func (d *Uring) RecvBufferSize() int                           { return 0 }
func (d *Uring) FileListener(f *os.File) (net.Listener, error) { return nil, errNoUring }
func (d *Uring) Listen(network, address string) (net.Listener, error) {
	return nil, errNoUring
}
func (d *Uring) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	return nil, errNoUring
}
