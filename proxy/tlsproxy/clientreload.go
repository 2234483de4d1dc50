package tlsproxy

import (
	"log/slog"
	"net"
	"os"
	"slices"
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
	filePoller
	b   tlsbackend.Backend
	cfg tlsbackend.Config
	log *slog.Logger

	cur atomic.Pointer[tlsbackend.ClientConfig]
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
	var files []string
	for _, c := range cfg.Certificates {
		files = append(files, c.CertFile, c.KeyFile)
	}
	r := &ClientReloader{filePoller: newFilePoller(every, append(files, cfg.RootCAFile)...), b: b, cfg: *cfg, log: log}
	r.cfg.Certificates = slices.Clone(cfg.Certificates)
	seen := r.stat() // before the read: a change racing with it is seen later
	cc, err := b.NewClientConfig(&r.cfg)
	if err != nil {
		return nil, err
	}
	r.cur.Store(&cc)
	go r.poll(seen, false, r.try)
	return r, nil
}

// Client wraps c with the config in service.
func (r *ClientReloader) Client(c net.Conn, serverName string) tlsbackend.Conn {
	return (*r.cur.Load()).Client(c, serverName)
}

// Close stops watching and closes the config in service; connections made
// stay usable.
func (r *ClientReloader) Close() error {
	r.close()
	return (*r.cur.Load()).Close()
}

// try loads the files into a new config and swaps it in, or logs why not
// (unless quiet) and reports false.
func (r *ClientReloader) try(quiet bool) bool {
	cc, why := r.load()
	if why != "" {
		if !quiet {
			r.log.Error("tls: upstream client files changed, "+why+"; still using the previous ones (trying again every poll)",
				"cert", r.certFile(), "ca", r.cfg.RootCAFile)
		}
		return false
	}
	old := r.cur.Swap(&cc)
	(*old).Close()
	r.log.Info("tls: upstream client files reloaded", "cert", r.certFile(), "ca", r.cfg.RootCAFile, "backend", r.b.Name())
	return true
}

// load builds a config from the files, or says why it will not serve. The
// client certificate and key are read once, and the validity check looks
// at the very certificate the config holds (as loadFiles does).
func (r *ClientReloader) load() (tlsbackend.ClientConfig, string) {
	cfg := r.cfg
	if len(cfg.Certificates) > 0 && cfg.Certificates[0].CertFile != "" {
		c := cfg.Certificates[0]
		var err error
		if c.CertPEM, err = os.ReadFile(c.CertFile); err == nil {
			c.KeyPEM, err = os.ReadFile(c.KeyFile)
		}
		if err != nil {
			return nil, "but do not load: " + err.Error()
		}
		if why := notValidPEM(c.CertPEM, time.Now()); why != "" {
			return nil, "to a client certificate that " + why
		}
		cfg.Certificates = append([]tlsbackend.Certificate{c}, cfg.Certificates[1:]...)
	}
	cc, err := r.b.NewClientConfig(&cfg)
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
