//go:build uring && cgo

// Command ceiling is a measuring probe, not a proxy to deploy: the cheapest
// HTTP/1.1 keep-alive reverse proxy this project's ring can make, for
// telling how much of a request's CPU Monolake's own design costs. One loop
// on one ring serves every connection, driven by completions: no goroutine
// per connection, no channels, no deadlines, no Service onion, no pool. It
// adds what the suite's Monolake and nginx add (X-Forwarded-For, -Proto,
// -Host and X-Request-Id upstream, X-Request-Id back) and knows only what
// the rig sends: requests that arrive whole in one receive, without a body
// and not pipelined, and Content-Length responses; anything else closes the
// connection. Each client connection gets its own upstream connection,
// dialled at its first request with a blocking connect(2). An accept that
// fails (out of descriptors) is logged and armed again at once.
//
// It takes Monolake's command line, so that scripts/abtest.sh can run it as
// BINARY:RUNTIME beside nginx or Monolake:
//
//	go build -tags 'uring openssl' -o /tmp/ceiling ./bench/cmd/ceiling
//	scripts/abtest.sh -p /1k uring /tmp/ceiling:uring
//
// It reads the listener and the first route's first upstream of the first
// server in the config, and runs the loop in a child process (abtest
// measures the proxy's child, as Monolake's worker). CEILING_SINGLE_ISSUER=1
// sets the ring up with SINGLE_ISSUER and DEFER_TASKRUN (the loop is the
// ring's only thread); CEILING_IDLE=epoll makes an idle loop sleep in
// epoll_wait(2) on the ring's descriptor, as Monolake's driver sleeps in Go's
// netpoller, instead of in a waiting io_uring_enter(2).
//
// What it measured (2026-12-03, the 2-core AMD EPYC VM of the suite's runs
// 26-29, 50 connections, 1 KiB, 12-16 rounds of scripts/abtest.sh each):
// per worker CPU-second 1.19 of nginx's, and 0.97-1.06 of Monolake's (the
// build of bd61a38, before the last review's fixes), with
// either way of sleeping, with CEILING_SINGLE_ISSUER, at 0 B and at 200
// connections. Its user space is 13 % of its CPU against Monolake's 32 %,
// but it spends nearly as much more in the kernel: with less to do per
// completion it enters the ring for fewer completions at a time and sleeps
// more often, and on this VM every system call costs about 1.1 us.
// README.md (Benchmarks) has the figures.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
)

// childEnv marks the child process that runs the loop.
const childEnv = "CEILING_CHILD"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var path string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--config" || args[i] == "-config" {
			path = args[i+1]
		}
	}
	if len(args) == 0 || args[0] != "run" || path == "" {
		return fmt.Errorf("usage: ceiling run --config FILE [--runtime uring]")
	}
	listen, upstream, err := addresses(path)
	if err != nil {
		return err
	}
	if os.Getenv(childEnv) == "" {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd.Run()
	}
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	ln, err := listenFd(listen)
	if err != nil {
		return err
	}
	p, err := newProbe(ln, upstream, os.Getenv("CEILING_SINGLE_ISSUER") == "1", os.Getenv("CEILING_IDLE") == "epoll")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ceiling: port %d to port %d, ring %v\n", listen.Port, upstream.Port, p.ring.Flags())
	return p.serve(nil)
}

// addresses returns the listener and the upstream of the first server.
func addresses(path string) (listen, upstream *syscall.SockaddrInet4, err error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.ServerNames) == 0 {
		return nil, nil, fmt.Errorf("%s: no server", path)
	}
	s := cfg.Servers[cfg.ServerNames[0]]
	if len(s.Routes) == 0 || len(s.Routes[0].Upstreams) == 0 {
		return nil, nil, fmt.Errorf("%s: server %s has no route with an upstream", path, s.Key)
	}
	if listen, err = inet4(s.Listener.Value); err != nil {
		return nil, nil, err
	}
	if upstream, err = inet4(s.Routes[0].Upstreams[0].Endpoint.Address()); err != nil {
		return nil, nil, err
	}
	return listen, upstream, nil
}

func inet4(hostport string) (*syscall.SockaddrInet4, error) {
	a, err := net.ResolveTCPAddr("tcp4", hostport)
	if err != nil {
		return nil, err
	}
	sa := &syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	return sa, nil
}

// listenFd returns a listening socket on sa.
func listenFd(sa *syscall.SockaddrInet4) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	if err := syscall.Listen(fd, 4096); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}

// idleWait bounds a waiting enter, so that serve sees its stop channel.
const idleWait = 50 * time.Millisecond
