package porttest

import (
	"net"
	"testing"
)

// TestFreeNeverRepeats asks for many addresses in a row: none may be
// handed out twice (CI once saw two listeners of one config given the same
// port by a bind to port 0), and each must be free to listen on.
func TestFreeNeverRepeats(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	for i := range n {
		addr := Free(t)
		if seen[addr] {
			t.Fatalf("address %d, %s, was handed out before", i, addr)
		}
		seen[addr] = true
	}
	addr := Free(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s from Free: %v", addr, err)
	}
	ln.Close()
}
