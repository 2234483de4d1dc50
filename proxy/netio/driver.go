package netio

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
)

// Driver is a worker's network I/O: where its listeners and upstream
// connections come from. The epoll driver is Go's own netpoller; the
// io_uring driver runs them on one ring per worker.
type Driver interface {
	// Name is "epoll" or "io_uring".
	Name() string
	Listen(network, addr string) (net.Listener, error)
	// FileListener turns an inherited listening socket into a listener.
	FileListener(f *os.File) (net.Listener, error)
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	Close() error
}

// ForceEpollEnv, set to any non-empty value, makes NewDriver choose epoll
// whatever the config says.
const ForceEpollEnv = "MONOLAKE_FORCE_EPOLL"

// Runtime names as the config spells them.
const (
	RuntimeIOUring = "io_uring"
	RuntimeEpoll   = "legacy"
)

// NewDriver returns the driver for runtime. When io_uring is asked for but
// cannot be used (not in this build, blocked by seccomp, disabled by sysctl,
// memlock), it returns the epoll driver and the reason, for the caller to
// log once.
func NewDriver(runtime string, p UringParams) (d Driver, fallback string) {
	if runtime != RuntimeIOUring {
		return Epoll(), ""
	}
	if os.Getenv(ForceEpollEnv) != "" {
		return Epoll(), ForceEpollEnv + " is set"
	}
	if !UringBuilt {
		return Epoll(), "io_uring is not in this build (build with `make uring`)"
	}
	if err := UringAvailable(); err != nil {
		return Epoll(), err.Error()
	}
	u, err := NewUring(p)
	if err != nil {
		return Epoll(), fmt.Sprintf("setting up the ring: %v", err)
	}
	return uringDriver{u}, ""
}

// Epoll returns the driver on Go's netpoller.
func Epoll() Driver { return epollDriver{} }

type epollDriver struct{}

func (epollDriver) Name() string { return RuntimeEpoll }

func (epollDriver) Listen(network, addr string) (net.Listener, error) {
	if network == "unix" {
		ln, err := ListenUnix(addr)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return ln, nil
	}
	return ListenTCP(context.Background(), addr)
}

func (epollDriver) FileListener(f *os.File) (net.Listener, error) { return FromFile(f) }

func (epollDriver) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (epollDriver) Close() error { return nil }

type uringDriver struct{ *Uring }

func (uringDriver) Name() string { return RuntimeIOUring }

// TestRuntimeEnv names the runtime the proxy packages' tests run on:
// unset means epoll; "io_uring" makes them use the io_uring driver, and a
// machine where it cannot be set up then fails the tests instead of
// quietly testing epoll. `make test` runs the proxy tests both ways.
const TestRuntimeEnv = "MONOLAKE_TEST_RUNTIME"

var (
	testDriverOnce sync.Once
	testDriver     Driver
	testDriverErr  error
)

// DriverForTests returns the driver TestRuntimeEnv asks for, one per
// process, or an error saying why it cannot be had.
func DriverForTests() (Driver, error) {
	rt := os.Getenv(TestRuntimeEnv)
	if rt == "" {
		return Epoll(), nil
	}
	testDriverOnce.Do(func() {
		var reason string
		testDriver, reason = NewDriver(rt, UringParams{})
		if reason != "" {
			testDriverErr = fmt.Errorf("%s=%s: %s", TestRuntimeEnv, rt, reason)
		}
	})
	return testDriver, testDriverErr
}
