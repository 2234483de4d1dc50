// Package worker runs the proxy: a master process that spawns one pinned
// worker process per core and restarts those that die, and the workers that
// bind their listeners (SO_REUSEPORT) and serve. With zero workers the whole
// proxy runs in one process, for tests, embedding and development.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/server"
)

// instance is one process's set of running servers.
type instance struct {
	log     *slog.Logger
	drv     netio.Driver
	servers []*running
	// failed receives the first error that stopped a server accepting
	// (not a stop): the worker then ends, so that it is restarted.
	failed chan error
}

type running struct {
	cfg  *config.Server
	srv  *server.Server
	svc  server.ConnService
	ln   net.Listener
	done chan error
}

// startServers builds a service per configured server and serves it on its
// listener. inherited maps a server key to a listener the caller bound
// (Unix sockets from the master); other servers bind their own TCP
// listener with SO_REUSEPORT. sec holds the session-ticket secret, shared
// by every process of the proxy, and the master's copies of certificates.
// On error nothing is left running.
func startServers(cfg *config.Config, drv netio.Driver, inherited map[string]net.Listener, worker string, sec *secrets, log *slog.Logger) (*instance, error) {
	inst := &instance{log: log, drv: drv, failed: make(chan error, 1)}
	limit := server.NewConnLimit(cfg.Runtime.MaxConns) // shared by the servers
	for _, key := range cfg.ServerNames {
		s := cfg.Servers[key]
		svc, err := buildService(s, worker, sec, drv.Dial, log.With("server", key))
		if err != nil {
			inst.close()
			return nil, err
		}
		ln := inherited[key]
		if ln == nil {
			ln, err = drv.Listen(s.Listener.Network(), s.Listener.Value)
			if err != nil {
				proxy.CloseService(svc)
				inst.close()
				return nil, fmt.Errorf("server %q: %w", key, err)
			}
		}
		r := &running{cfg: s, svc: svc, ln: ln, done: make(chan error, 1), srv: server.New(svc, log.With("server", key))}
		r.srv.SetConnLimit(limit)
		inst.servers = append(inst.servers, r)
	}
	for _, r := range inst.servers {
		go func() {
			err := r.srv.Serve(r.ln)
			if err != nil {
				select {
				case inst.failed <- fmt.Errorf("server %q stopped accepting: %w", r.cfg.Key, err):
				default:
				}
			}
			r.done <- err
		}()
		log.Info("serving", "server", r.cfg.Key, "proxy_type", r.cfg.ProxyType, "listener", r.cfg.Listener.String(), "runtime", drv.Name())
	}
	return inst, nil
}

// cutUnwind bounds the wait for connections closed at the drain timeout to
// return from their services.
const cutUnwind = 2 * time.Second

// drain stops accepting and waits for connections in flight, up to timeout;
// then it closes what is left. It reports how many connections it cut.
func (inst *instance) drain(timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	cut := 0
	for _, r := range inst.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := r.srv.ActiveConns()
			if err := r.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
				mu.Lock()
				cut += r.srv.ActiveConns()
				mu.Unlock()
				inst.log.Warn("drain timeout: closing connections still open", "server", r.cfg.Key, "was_active", n, "timeout", timeout)
				r.srv.Close()
				// Let the cut connections unwind, so that their access-log
				// lines are written before the service closes the log.
				t := time.NewTimer(cutUnwind)
				select {
				case <-r.srv.Drained():
				case <-t.C:
				}
				t.Stop()
			}
			proxy.CloseService(r.svc)
		}()
	}
	wg.Wait()
	inst.drv.Close()
	return cut
}

// cut closes every connection of every server, as the drain does at its
// timeout; a drain in progress then finishes.
func (inst *instance) cut() {
	for _, r := range inst.servers {
		r.srv.Close()
	}
}

// close stops everything at once. It also closes each listener itself: a
// server whose Serve has not run yet (startServers failing on a later one)
// does not know it, and a bound listener nobody accepts from would take
// its share of the port's connections and never answer them.
func (inst *instance) close() {
	for _, r := range inst.servers {
		r.srv.Close()
		r.ln.Close()
		proxy.CloseService(r.svc)
	}
	inst.drv.Close()
}

// newDriver sets up the I/O runtime the config asks for, logging once why
// it fell back to epoll when io_uring cannot be used.
func newDriver(cfg *config.Config, log *slog.Logger) netio.Driver {
	d, reason := netio.NewDriver(cfg.Runtime.Type, netio.UringParams{
		Entries:    uint32(cfg.Runtime.Entries),
		SQPollIdle: cfg.Runtime.SQPollIdle,
		BufCount:   cfg.Runtime.RecvBuffers,
		BufSize:    cfg.Runtime.RecvBufferSize,
	})
	if reason != "" {
		log.Warn("io_uring runtime unavailable; using epoll", "reason", reason)
	}
	log.Info("runtime", "driver", d.Name())
	return d
}
