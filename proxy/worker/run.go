package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/monolake-go/monolake/proxy/accesslog"
	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/demo"
	"github.com/monolake-go/monolake/proxy/netio"
)

// Options says how to run a config.
type Options struct {
	Config *config.Config
	Log    *slog.Logger

	// Exe and ChildArgs start a worker: Exe ChildArgs... followed by the
	// worker's own flags. The monolake binary passes itself and "worker".
	Exe       string
	ChildArgs []string
	// ChildEnv is added to each worker's environment.
	ChildEnv []string

	// Ready, when set, is closed once every server is serving.
	Ready chan<- struct{}
}

// Run runs cfg until SIGTERM or SIGINT (or ctx is done), then drains and
// returns nil. With Runtime.Workers == 0 it serves in this process;
// otherwise this process is the master of that many worker processes.
func Run(ctx context.Context, o Options) error {
	cfg := o.Config
	if o.Log == nil {
		o.Log = slog.Default()
	}
	ignoreSIGPIPE()
	returned := make(chan struct{})
	defer close(returned)
	ctx, force := stopSignals(ctx, returned)
	keepOnHangup(o.Log, returned)

	if err := tcpPortsFree(cfg); err != nil {
		return err
	}
	var d *demo.Server
	if cfg.Demo != nil {
		ln, err := listen(cfg.Demo.Listener, false)
		if err != nil {
			return fmt.Errorf("demo upstream: %w", err)
		}
		d = demo.Start(ln, o.Log.With("component", "demo"))
		defer d.Close()
		o.Log.Info("demo upstream serving", "listener", cfg.Demo.Listener.String())
	}
	if cfg.Runtime.Workers == 0 {
		return runSingle(ctx, o, force)
	}
	return runMaster(ctx, o, force)
}

// stopSigs end the proxy gracefully: SIGTERM, SIGINT, and SIGQUIT, nginx's
// graceful stop (Go's default for it, a goroutine dump and exit 2,
// skipped the drain and left Unix socket files behind).
var stopSigs = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT}

// stopSignals returns ctx cancelled by the first SIGTERM, SIGINT or SIGQUIT, and a
// channel closed by the next one (or by the first after the caller
// cancelled ctx): the operator who asks twice does not wait for the drain.
// One handler takes both, so a second signal sent at once is not lost. It
// stops taking signals once returned is closed.
func stopSignals(parent context.Context, returned <-chan struct{}) (context.Context, <-chan struct{}) {
	ctx, cancel := context.WithCancel(parent)
	force := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, stopSigs...)
	go func() {
		defer signal.Stop(sigs)
		defer cancel()
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		case <-returned:
			return
		}
		select {
		case <-sigs:
			close(force)
		case <-returned:
		}
	}()
	return ctx, force
}

// ignoreSIGPIPE makes a write to a pipe nobody reads fail with EPIPE
// instead of ending the process. Go ends a program whose write to its
// standard output or error finds the pipe's reader gone: the log reader
// (a tee, a log shipper restarting) would take the master and every
// worker down with it, with no drain. Lines that cannot be written are
// lost; the proxy serves on, as nginx does.
func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }

// keepOnHangup takes SIGHUP until returned is closed. nginx reloads its
// configuration on it; here that is not implemented yet, and Go's default
// (exit, skipping the cleanup that removes Unix socket files) would take
// the proxy down with the terminal it was started from. So it says so and
// goes on. Workers ignore the signal (child.go).
func keepOnHangup(log *slog.Logger, returned <-chan struct{}) {
	onSignal(syscall.SIGHUP, returned, func() {
		log.Warn("SIGHUP: reloading the configuration is not supported yet; still running with the one loaded at start")
	})
}

// reopenLogsOnUSR1 reopens this process's access-log files on every
// SIGUSR1 until returned is closed, as nginx does: logrotate's create mode
// renames a log and signals, and the lines go to a new file at the path.
// In a worker and in a single process; the master forwards the signal.
func reopenLogsOnUSR1(log *slog.Logger, returned <-chan struct{}) {
	onSignal(syscall.SIGUSR1, returned, func() {
		if err := accesslog.ReopenAll(); err != nil {
			log.Error("SIGUSR1: reopening the access logs", "err", err)
		} else {
			log.Info("SIGUSR1: access logs reopened")
		}
	})
}

// onSignal runs f, in a goroutine of its own, for every sig until returned
// is closed.
func onSignal(sig os.Signal, returned <-chan struct{}, f func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, sig)
	go func() {
		defer signal.Stop(c)
		for {
			select {
			case <-c:
				f()
			case <-returned:
				return
			}
		}
	}()
}

// tcpPortsFree fails if another socket listens on a TCP server's address.
// Workers bind with SO_REUSEPORT, which lets a process join the listeners
// another of the same user has on an address: a second instance started
// by mistake (the same config run twice) would take a share of the
// first's connections, silently. nginx, binding without it, refuses to
// start; so does this. The check binds and closes a socket without
// SO_REUSEPORT (with SO_REUSEADDR, so that connections of an earlier run
// in TIME_WAIT do not count).
func tcpPortsFree(cfg *config.Config) error {
	for _, key := range cfg.ServerNames {
		s := cfg.Servers[key]
		if s.Listener.Type != config.TypeSocket {
			continue
		}
		if _, port, err := net.SplitHostPort(s.Listener.Value); err == nil && port == "0" {
			continue // each worker gets a port of its own
		}
		ln, err := net.Listen("tcp", s.Listener.Value)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("%s: %s: listening on %s: address already in use: another process listens there (another monolake?)", cfg.Source, s.Where(s.Line), s.Listener.Value)
			}
			return fmt.Errorf("%s: %s: %w", cfg.Source, s.Where(s.Line), err)
		}
		ln.Close()
	}
	return nil
}

func listen(l config.Listener, reuse bool) (net.Listener, error) {
	if l.Type == config.TypeUnix {
		ln, err := netio.ListenUnix(l.Value)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return ln, nil
	}
	if reuse {
		return netio.ListenTCP(context.Background(), l.Value)
	}
	return net.Listen("tcp", l.Value)
}

func runSingle(ctx context.Context, o Options, force <-chan struct{}) error {
	runtime.GOMAXPROCS(1)
	defer startProfile(o.Log)()
	defer startIdleRelease()()
	defer startHeapFloor(o.Config.Runtime.GCMinHeap)()
	inst, err := startServers(o.Config, newDriver(o.Config, o.Log), nil, fmt.Sprintf("pid %d", os.Getpid()), &secrets{Tickets: newTickets()}, o.Log)
	if err != nil {
		return err
	}
	stopped := make(chan struct{})
	defer close(stopped)
	reopenLogsOnUSR1(o.Log, stopped)
	o.Log.Info("running in one process", "pid", os.Getpid(), "gomaxprocs", 1)
	if o.Ready != nil {
		close(o.Ready)
	}
	select {
	case <-ctx.Done():
	case err = <-inst.failed: // no master to restart it: stop with the error
		o.Log.Error("stopping", "err", err)
	}
	o.Log.Info("stopping: draining connections", "timeout", o.Config.Runtime.DrainTimeout)
	drained := make(chan int, 1)
	go func() { drained <- inst.drain(o.Config.Runtime.DrainTimeout) }()
	select {
	case cut := <-drained:
		o.Log.Info("stopped", "connections_cut", cut)
	case <-force:
		o.Log.Warn("asked again: stopping without waiting for the drain")
		inst.cut() // the drain then ends and closes the rest, unless a
		// service ignores its context: do not wait for that long
		t := time.NewTimer(cutUnwind)
		select {
		case <-drained:
		case <-t.C:
		}
		t.Stop()
	}
	return err
}
