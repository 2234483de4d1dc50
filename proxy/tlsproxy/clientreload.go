package tlsproxy

import (
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/monolake-go/monolake/tlsbackend"
)

// ClientReloader is a tlsbackend.ClientConfig that follows the files its
// config names (the client certificate and key presented to mTLS
// upstreams, the CA file servers are verified against) as a Reloader
// follows a server's: it stats them every interval and, once a change has
// held still for one more, builds a new client config from them and swaps
// it in for new connections. Connections already made keep theirs. Files
// that do not load, or a client certificate not valid now, are logged and
// the config in service stays, tried again at every poll. The new config
// starts with an empty session cache.
type ClientReloader struct {
	b     tlsbackend.Backend
	cfg   tlsbackend.Config
	files []string
	log   *slog.Logger
	every time.Duration

	cur     atomic.Pointer[tlsbackend.ClientConfig]
	reloads atomic.Uint64

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

var _ tlsbackend.ClientConfig = (*ClientReloader)(nil)

// WatchClientConfig builds b's client config from cfg now (its error is
// returned) and follows cfg's files from then on (every 0:
// DefaultReloadInterval; log nil discards). cfg is copied.
func WatchClientConfig(b tlsbackend.Backend, cfg *tlsbackend.Config, every time.Duration, log *slog.Logger) (*ClientReloader, error) {
	if every <= 0 {
		every = DefaultReloadInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &ClientReloader{b: b, cfg: *cfg, log: log, every: every, stop: make(chan struct{}), done: make(chan struct{})}
	r.cfg.Certificates = slices.Clone(cfg.Certificates)
	for _, c := range r.cfg.Certificates {
		r.files = append(r.files, c.CertFile, c.KeyFile)
	}
	r.files = append(r.files, r.cfg.RootCAFile)
	seen := r.stat() // before the read: a change racing with it is seen later
	cc, err := b.NewClientConfig(&r.cfg)
	if err != nil {
		return nil, err
	}
	r.cur.Store(&cc)
	go r.watch(seen)
	return r, nil
}

// Client wraps c with the config in service.
func (r *ClientReloader) Client(c net.Conn, serverName string) tlsbackend.Conn {
	return (*r.cur.Load()).Client(c, serverName)
}

// Reloads counts the configs swapped in since the first.
func (r *ClientReloader) Reloads() uint64 { return r.reloads.Load() }

// Close stops watching and closes the config in service; connections made
// stay usable.
func (r *ClientReloader) Close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	return (*r.cur.Load()).Close()
}

// stat stamps every file the config names ("" for none: a fixed stamp).
func (r *ClientReloader) stat() []fileStamp {
	s := make([]fileStamp, len(r.files))
	for i, f := range r.files {
		if f != "" {
			s[i] = statFile(f)
		}
	}
	return s
}

func (r *ClientReloader) watch(seen []fileStamp) {
	defer close(r.done)
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	var pending []fileStamp
	retry := false
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		s := r.stat()
		switch {
		case retry && slices.Equal(s, seen):
			pending = nil // try again; say nothing unless it works
		case slices.Equal(s, seen):
			pending = nil
			continue
		case pending == nil || !slices.Equal(pending, s):
			pending = s // changed: wait for it to hold still
			continue
		}
		quiet := retry && slices.Equal(s, seen)
		seen, pending = s, nil
		cc, why := r.load()
		if why != "" {
			if !quiet {
				r.log.Error("tls: upstream client files changed, "+why+"; still using the previous ones (trying again every poll)",
					"cert", r.certFile(), "ca", r.cfg.RootCAFile)
			}
			retry = true
			continue
		}
		retry = false
		old := r.cur.Swap(&cc)
		(*old).Close()
		r.reloads.Add(1)
		r.log.Info("tls: upstream client files reloaded", "cert", r.certFile(), "ca", r.cfg.RootCAFile, "backend", r.b.Name())
	}
}

// load builds a config from the files, or says why it will not serve.
func (r *ClientReloader) load() (tlsbackend.ClientConfig, string) {
	if f := r.certFile(); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, "but do not load: " + err.Error()
		}
		if why := notValidPEM(b, time.Now()); why != "" {
			return nil, "to a client certificate that " + why
		}
	}
	cc, err := r.b.NewClientConfig(&r.cfg)
	if err != nil {
		return nil, "but do not load: " + err.Error()
	}
	return cc, ""
}

func (r *ClientReloader) certFile() string {
	if len(r.cfg.Certificates) == 0 {
		return ""
	}
	return r.cfg.Certificates[0].CertFile
}
