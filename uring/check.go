package uring

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Check reports whether io_uring can be used here for the proxy, and if not,
// why, in an error wrapping the cause (a syscall.Errno, or
// errors.ErrUnsupported in builds without io_uring). The driver calls it
// once to choose between io_uring and the netpoller and logs the reason.
//
// It reads kernel.io_uring_disabled, sets up a small ring (seccomp profiles
// answer ENOSYS or EPERM here), completes a nop round trip and probes that
// every opcode in ProxyOps exists. About ten syscalls.
func Check() error {
	if !Available {
		return errUnsupported
	}
	disabled := readSysctl("kernel/io_uring_disabled")
	if disabled == "2" {
		return unavailable("disabled by sysctl kernel.io_uring_disabled=2", syscall.EPERM)
	}
	r, err := New(Params{Entries: 4})
	if err != nil {
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			return unavailable("setting up a ring", err)
		}
		switch errno {
		case syscall.ENOSYS:
			return unavailable("io_uring_setup(2) is not implemented: a kernel without io_uring, or a seccomp filter (container runtimes' default profiles) answering ENOSYS", errno)
		case syscall.EPERM, syscall.EACCES:
			if disabled == "1" {
				return unavailable("kernel.io_uring_disabled=1 and the process is neither privileged nor in kernel.io_uring_group", errno)
			}
			return unavailable("io_uring_setup(2) denied by a seccomp filter or an LSM", errno)
		case syscall.ENOMEM:
			return unavailable(fmt.Sprintf("not enough locked memory for a ring (RLIMIT_MEMLOCK %s); raise ulimit -l", memlock()), errno)
		}
		return unavailable("setting up a ring", err)
	}
	defer r.Close()
	r.Nop(1)
	cqes, err := r.Enter(1, time.Second)
	switch {
	case err != nil:
		return unavailable("a nop round trip failed", err)
	case len(cqes) != 1 || cqes[0].UserData != 1 || cqes[0].Res != 0:
		return unavailable("a nop did not complete within 1s", syscall.ETIMEDOUT)
	}
	p, err := r.Probe()
	if err != nil {
		return unavailable("probing opcodes", err)
	}
	if m := p.Missing(ProxyOps...); len(m) > 0 {
		return unavailable(fmt.Sprintf("the kernel lacks opcodes %v (Linux 6.0 or later has them all)", m), syscall.EOPNOTSUPP)
	}
	return nil
}

// Probe sets up a small ring, reports what the kernel supports and closes
// it. A Ring has the same method for its own kernel.
func Probe() (*ProbeInfo, error) {
	r, err := New(Params{Entries: 4})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Probe()
}

func unavailable(reason string, err error) error {
	return fmt.Errorf("uring: io_uring unavailable: %s: %w", reason, err)
}

func readSysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func memlock() string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(8 /* RLIMIT_MEMLOCK */, &lim); err != nil {
		return "unknown"
	}
	if lim.Cur == ^uint64(0) {
		return "unlimited"
	}
	return fmt.Sprintf("%d KiB", lim.Cur>>10)
}
