package worker

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/monolake-go/monolake/proxy/config"
)

// ChildMain is a worker process's main: args are the flags the master
// passed (after ChildArgs). It returns the process exit code.
func ChildMain(args []string) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	id := fs.Int("id", 0, "worker id")
	cpu := fs.Int("cpu", -1, "CPU to pin to; -1 for none")
	rt := fs.String("runtime", config.RuntimeLegacy, "runtime type")
	source := fs.String("source", "", "config source name")
	inherit := fs.String("inherit", "", "servers of inherited listeners (indexes in the config's order), in fd order")
	tlsStack := fs.String("tls-backend", "", "the TLS backend of every server and upstream (the master's --tls-backend)")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "lowest level logged (the master's --log-level)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ignoreSIGPIPE()
	ready := os.NewFile(fdReady, "ready")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("worker", *id, "pid", os.Getpid())
	fail := func(err error) int {
		fmt.Fprintf(ready, "err %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		ready.Close()
		log.Error("worker failed to start", "err", err)
		return 1
	}

	runtime.GOMAXPROCS(1)
	if *cpu >= 0 {
		if err := pinProcess(*cpu); err != nil {
			return fail(err)
		}
	}
	cf := os.NewFile(fdConfig, "config")
	raw, err := io.ReadAll(io.NewSectionReader(cf, 0, 1<<30))
	cf.Close() // read once: nothing later in the worker needs it
	if err != nil {
		return fail(fmt.Errorf("reading config from master: %w", err))
	}
	cfg, err := config.Parse(*source, raw)
	if err != nil {
		return fail(err)
	}
	sf := os.NewFile(fdSecrets, "secrets")
	sec, err := readSecrets(sf)
	sf.Close()
	if err != nil {
		return fail(fmt.Errorf("reading the secrets from master: %w", err))
	}
	cfg.Runtime.Type = *rt
	// Servers are named by their index: a key may hold any character.
	server := func(index string) (string, error) {
		i, err := strconv.Atoi(index)
		if err != nil || i < 0 || i >= len(cfg.ServerNames) {
			return "", fmt.Errorf("server index %q from master: not in this config", index)
		}
		return cfg.ServerNames[i], nil
	}
	if *tlsStack != "" {
		cfg.SetTLSStack(*tlsStack)
	}
	drv := newDriver(cfg, log)
	inherited := map[string]net.Listener{}
	if *inherit != "" {
		for i, index := range strings.Split(*inherit, ",") {
			key, err := server(index)
			if err != nil {
				return fail(err)
			}
			f := os.NewFile(uintptr(fdFirstLis+i), "listener-"+key)
			// Neither driver's FileListener unlinks a Unix socket file on
			// Close: the master owns it.
			ln, err := drv.FileListener(f)
			f.Close()
			if err != nil {
				return fail(err)
			}
			inherited[key] = ln
		}
	}

	defer startProfile(log)()
	defer startIdleRelease()()
	defer startHeapFloor(cfg.Runtime.GCMinHeap)()
	// Room for the master's two (SIGTERM, then SIGINT to cut: see
	// stopAll) before this goroutine takes the first: os/signal drops
	// what a full channel cannot take.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, stopSigs...)
	signal.Ignore(syscall.SIGHUP) // the master's to answer (keepOnHangup)
	inst, err := startServers(cfg, drv, inherited, fmt.Sprintf("worker %d, pid %d", *id, os.Getpid()), sec, log)
	if err != nil {
		return fail(err)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	reopenLogsOnUSR1(log, stopped) // before "ok": the master may forward one at once
	fmt.Fprintln(ready, "ok")
	ready.Close()
	log.Info("worker up", "cpu", *cpu, "gomaxprocs", runtime.GOMAXPROCS(0))

	// The master holds the write end of this pipe; EOF means it is gone, and
	// a worker without a master drains and exits rather than linger.
	masterGone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.NewFile(fdAlive, "alive"))
		close(masterGone)
	}()
	status := 0
	signals := 0 // taken so far
	select {
	case s := <-sig:
		signals++
		log.Info("draining", "signal", s.String(), "timeout", cfg.Runtime.DrainTimeout)
	case <-masterGone:
		log.Warn("master is gone; draining", "timeout", cfg.Runtime.DrainTimeout)
	case err := <-inst.failed:
		// Exit unsuccessfully once drained: the master starts a new
		// worker with fresh listeners.
		log.Error("draining for a restart", "err", err, "timeout", cfg.Runtime.DrainTimeout)
		status = 1
	}
	// Asked twice to stop (the master passes its operator's second
	// signal on): cut the connections still open, as the drain does at
	// its timeout, so that their access-log lines are still written.
	go func() {
		for ; signals < 2; signals++ {
			select {
			case <-sig:
			case <-stopped:
				return
			}
		}
		log.Warn("asked again: cutting the connections still open")
		inst.cut()
	}()
	cut := inst.drain(cfg.Runtime.DrainTimeout)
	log.Info("worker stopped", "connections_cut", cut)
	return status
}
