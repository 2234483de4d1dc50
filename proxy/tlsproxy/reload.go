package tlsproxy

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/tlsbackend"
)

// DefaultReloadInterval is how often a Reloader looks at its files.
const DefaultReloadInterval = time.Second

// Reloader is a tlsbackend.ServerConfig that follows a server's certificate
// chain and key files: a goroutine stats both every interval (see
// fileStamp; no inotify), and once a change has held still for one more
// interval (so a chain and key written one after the other are read as a
// pair), builds a new backend ServerConfig from them and swaps it in for
// new connections. Connections already made keep the config they were made
// with. A new pair that does not load (unreadable, mismatched key, not PEM)
// is logged and the previous one stays in service; the next change of
// either file is tried again.
//
// Session tickets survive a reload when the Reloader was given ticket keys
// (a resumed session keeps the certificate it was made with, as in
// nginx); without, each config has the backend's own keys, so they do not.
//
// Server may be called from any goroutine; it costs one atomic load more
// than the backend's own.
type Reloader struct {
	filePoller
	t       config.TLS
	alpn    []string
	tickets *tlsbackend.TicketKeyRotator
	log     *slog.Logger

	cur atomic.Pointer[tlsbackend.ServerConfig]
}

var _ tlsbackend.ServerConfig = (*Reloader)(nil)

// WatchOptions are the optional parts of WatchServerConfig.
type WatchOptions struct {
	// Tickets is as for ServerConfig; while the Reloader is open it keeps
	// a ratchet's rotator (tlsbackend.NewRatchetTicketKeyRotator) following
	// the clock.
	Tickets *tlsbackend.TicketKeyRotator
	// Fallback, when the files do not load at the start, is served
	// instead (the last pair the master read that loaded), with a
	// warning; the files are followed and used once they load.
	Fallback *tlsbackend.Certificate
	// Every is the polling interval (0: DefaultReloadInterval).
	Every time.Duration
	Log   *slog.Logger // nil discards
}

// WatchServerConfig is ServerConfig that follows the files as Reloader
// says. The first load happens now; its error is returned unless
// o.Fallback loads instead.
func WatchServerConfig(t *config.TLS, alpn []string, o WatchOptions) (*Reloader, error) {
	every, log, tickets := o.Every, o.Log, o.Tickets
	if every <= 0 {
		every = DefaultReloadInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{filePoller: newFilePoller(every, t.Chain, t.Key), t: *t, alpn: alpn, tickets: tickets, log: log}
	seen := r.stat() // before the read: a change racing with it is seen later
	sc, chain, err := loadFiles(t, alpn, tickets)
	fallback := false
	if err != nil && o.Fallback != nil {
		fb, ferr := serverConfig(t, *o.Fallback, alpn, tickets)
		if ferr != nil {
			return nil, errors.Join(err, fmt.Errorf("the master's copy: %w", ferr))
		}
		log.Warn("tls: certificate files do not load; serving the last pair the master read, until they do",
			"chain", t.Chain, "key", t.Key, "err", err)
		sc, err, fallback = fb, nil, true
	}
	if err != nil {
		return nil, err
	}
	if !fallback {
		if why := notValidPEM(chain, time.Now()); why != "" {
			// Workers already running keep the master's copy rather
			// than take such a pair; a worker (re)started now serves it
			// too, not what they refuse.
			if fb, ferr := fallbackConfig(o.Fallback, t, alpn, tickets); ferr == nil {
				log.Warn("tls: certificate files hold a certificate that "+why+"; serving the last pair the master read, until they hold a valid one",
					"chain", t.Chain)
				sc.Close()
				sc, fallback = fb, true
			} else {
				log.Warn("tls: serving a certificate that "+why, "chain", t.Chain)
			}
		}
	}
	r.cur.Store(&sc)
	// The ticket keys follow the clock for as long as the files are
	// watched.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		r.poll(seen, fallback, r.try)
	}()
	if tickets != nil {
		go tickets.Follow(ctx)
	}
	return r, nil
}

// fallbackConfig builds the server config of the master's copy, if there
// is one and it is valid now.
func fallbackConfig(fb *tlsbackend.Certificate, t *config.TLS, alpn []string, tickets *tlsbackend.TicketKeyRotator) (tlsbackend.ServerConfig, error) {
	if fb == nil {
		return nil, errors.New("no copy")
	}
	if why := notValidPEM(fb.CertPEM, time.Now()); why != "" {
		return nil, errors.New("the copy " + why)
	}
	return serverConfig(t, *fb, alpn, tickets)
}

// Server wraps c with the current config.
func (r *Reloader) Server(c net.Conn) tlsbackend.Conn { return (*r.cur.Load()).Server(c) }

// Close stops watching and closes the current config; connections made
// stay usable.
func (r *Reloader) Close() error {
	r.close()
	return (*r.cur.Load()).Close()
}

// loadFiles reads t's chain and key once and builds the server config
// from those bytes, returning the chain's bytes too: the validity check
// looks at the very certificate the config holds, not at a second read a
// writer may have changed in between.
func loadFiles(t *config.TLS, alpn []string, tickets *tlsbackend.TicketKeyRotator) (tlsbackend.ServerConfig, []byte, error) {
	chain, err1 := os.ReadFile(t.Chain)
	key, err2 := os.ReadFile(t.Key)
	if err1 != nil || err2 != nil {
		// The backend reads the files and says why, in its words.
		sc, err := ServerConfig(t, alpn, tickets)
		if err == nil { // they came back meanwhile: the next poll sees it
			sc.Close()
			err = fmt.Errorf("tls (%s): %w", t.Stack, errors.Join(err1, err2))
		}
		return nil, nil, err
	}
	sc, err := serverConfig(t, tlsbackend.Certificate{CertFile: t.Chain, KeyFile: t.Key, CertPEM: chain, KeyPEM: key}, alpn, tickets)
	return sc, chain, err
}

// notValidPEM says why the first certificate of a chain's PEM text is not
// valid at now ("has expired on ...", "is not valid before ..."), or ""
// when it is, or when it does not parse (the config built from it would
// not have loaded).
func notValidPEM(b []byte, now time.Time) string {
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return ""
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return ""
		}
		return NotValidAt(leaf, now)
	}
}

// NotValidAt says why cert is not valid at now ("has expired (...)", "is
// not valid before ..."), or "" when it is. Reloads and the master's copy
// of a pair (which a worker started later serves) judge by it alike.
func NotValidAt(cert *x509.Certificate, now time.Time) string {
	switch {
	case now.After(cert.NotAfter):
		return "has expired (" + cert.NotAfter.UTC().Format(time.RFC3339) + ")"
	case now.Before(cert.NotBefore):
		return "is not valid before " + cert.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// fileStamp is what a poll compares: a file's size, modification time,
// identity (device and inode) and change time, or that it could not be
// stat'ed. The modification time and size alone miss a file replaced by
// one of the same size whose time was kept (cp -p, rsync -a, tar): the
// rename gives another inode, and writing in place a new change time.
type fileStamp struct {
	mod      time.Time
	size     int64
	dev, ino uint64
	ctime    syscall.Timespec
	missing  bool
}

func statFile(name string) fileStamp {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{missing: true}
	}
	fs := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		fs.dev, fs.ino, fs.ctime = uint64(st.Dev), st.Ino, st.Ctim
	}
	return fs
}

// filePoller is what both reloaders share: files stat'ed every interval by
// a goroutine (poll) until close, and a count of the configs swapped in.
type filePoller struct {
	files   []string // "" for none: never changes
	every   time.Duration
	reloads atomic.Uint64

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func newFilePoller(every time.Duration, files ...string) filePoller {
	return filePoller{files: files, every: every, stop: make(chan struct{}), done: make(chan struct{})}
}

// Reloads counts the configs swapped in since the first (for tests and
// metrics).
func (p *filePoller) Reloads() uint64 { return p.reloads.Load() }

// stat stamps every file.
func (p *filePoller) stat() []fileStamp {
	s := make([]fileStamp, len(p.files))
	for i, f := range p.files {
		if f != "" {
			s[i] = statFile(f)
		}
	}
	return s
}

// close stops poll and waits for it to return.
func (p *filePoller) close() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}

// poll stats the files every interval until close, and calls try once a
// change (from seen, the stamps of the files in service) has held still
// for one more interval, so that files written one after the other are
// read as a set. While retry (the files in service are not the ones
// watched, a fallback, or the last try failed) it calls try at every
// interval, changed or not, quiet when nothing changed: what kept them
// from loading (a permission, a passing I/O error, too many open files, a
// certificate valid a few seconds from now) may pass without the files
// changing again. try reports whether it swapped a new config in.
func (p *filePoller) poll(seen []fileStamp, retry bool, try func(quiet bool) bool) {
	defer close(p.done)
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	var pending []fileStamp
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		s := p.stat()
		same := slices.Equal(s, seen)
		switch {
		case retry && same:
			pending = nil
		case same:
			pending = nil
			continue
		case pending == nil || !slices.Equal(pending, s):
			pending = s // changed: wait for it to hold still
			continue
		}
		seen, pending = s, nil
		if retry = !try(retry && same); !retry {
			p.reloads.Add(1)
		}
	}
}

// try loads the files into a new config and swaps it in, or logs why not
// (unless quiet) and reports false.
func (r *Reloader) try(quiet bool) bool {
	sc, chain, err := loadFiles(&r.t, r.alpn, r.tickets)
	if err != nil {
		if !quiet {
			r.log.Error("tls: certificate files changed but do not load; still serving the previous certificate (trying again every poll)",
				"chain", r.t.Chain, "key", r.t.Key, "err", err)
		}
		return false
	}
	if why := notValidPEM(chain, time.Now()); why != "" {
		// A restored backup, a renewal that rewrote old files: the
		// certificate in service is kept, as the master keeps its
		// copy (refreshCerts).
		if !quiet {
			r.log.Error("tls: certificate files changed to a certificate that "+why+"; still serving the previous one (trying again every poll)",
				"chain", r.t.Chain)
		}
		sc.Close()
		return false
	}
	old := r.cur.Swap(&sc)
	// A Server call that loaded old just before the swap may still be
	// using it: both backends allow that after Close (Close only stops
	// following the ticket-key rotator).
	(*old).Close()
	r.log.Info("tls: certificate reloaded", "chain", r.t.Chain, "key", r.t.Key, "backend", r.t.Stack)
	return true
}
