package httpproxy

import (
	"testing"

	"github.com/monolake-go/monolake/proxy/netio"
)

// testDriver is the I/O driver the proxy under test runs on: epoll, or the
// one netio.TestRuntimeEnv names (make test runs these tests both ways).
func testDriver(t testing.TB) netio.Driver {
	t.Helper()
	d, err := netio.DriverForTests()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
