// Package porttest hands tests free loopback TCP addresses to put in a
// config, for a server that binds them itself. It is for tests only.
package porttest

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// The ports are drawn from below Linux's default ephemeral range
// (32768-60999): a bind to port 0 repeats the ports of listeners just
// closed (two listeners of one config were given the same one), and an
// outgoing connection of a test running beside could take a port from
// that range between Free and the server's bind. They stay below the
// fixed ports of the benchmark suite (27000 up) and scripts/rig.sh (29500
// up) too.
const (
	lowPort  = 10000
	highPort = 26999
)

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// Free returns "127.0.0.1:PORT" for a port nothing listened on a moment
// ago, never the same one twice in a process.
func Free(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	var err error
	for range 1000 {
		port := lowPort + rand.IntN(highPort-lowPort+1)
		if used[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err != nil {
			continue // in use
		}
		ln.Close()
		used[port] = true
		return addr
	}
	t.Fatalf("porttest: no free loopback port in %d-%d after 1000 tries (last: %v)", lowPort, highPort, err)
	return ""
}
