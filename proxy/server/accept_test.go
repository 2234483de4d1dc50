package server

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// TestAcceptErrorsRetried: the errors accept(2) hands on from a pending
// connection that failed (and resource limits) are retried; others end
// Serve.
func TestAcceptErrorsRetried(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		retry bool
	}{
		{syscall.EMFILE, true}, {syscall.EPROTO, true}, {syscall.EPERM, true},
		{syscall.ENETUNREACH, true}, {syscall.ECONNRESET, true},
		{syscall.EBADF, false}, {syscall.EINVAL, false},
	} {
		err := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", tc.errno)}
		if got := isTemporary(err); got != tc.retry {
			t.Errorf("%v: retried %v, want %v", tc.errno, got, tc.retry)
		}
		// Only resource shortages wait before the next accept.
		if got, want := connectionFailed(err), tc.retry && tc.errno != syscall.EMFILE; got != want {
			t.Errorf("%v: retried at once %v, want %v", tc.errno, got, want)
		}
	}
}
