package worker

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/tlsproxy"
	"github.com/monolake-go/monolake/tlsbackend"
)

// secrets is what the master hands each worker it starts besides the
// config, in a sealed memfd (fdSecrets): unlike an argument or the
// environment, it is not shown by ps nor passed on to other children.
type secrets struct {
	// Tickets is the ratchet every worker's session-ticket keys derive
	// from, so that a client resumes on any worker (tlsproxy.TicketKeys);
	// the master advances its own before handing a copy over.
	Tickets *tlsbackend.TicketRatchet `json:"tickets"`
	// Certs holds, by server key, the last certificate chain and key the
	// master read that loaded. A worker started while the files do not
	// load (being rewritten, or broken) serves these and follows the files
	// until they load again, instead of failing to start.
	Certs map[string]certPair `json:"certs,omitempty"`

	// bad holds, by server key, why its files last failed to load (the
	// master's own bookkeeping, not sent): a warning is logged once per
	// new reason.
	bad map[string]string
}

type certPair struct {
	Chain []byte `json:"chain"`
	Key   []byte `json:"key"`
}

// newTickets returns a new ticket ratchet.
func newTickets() *tlsbackend.TicketRatchet { return tlsproxy.NewTicketRatchet() }

// refreshCerts reads each TLS server's chain and key and keeps the pairs
// that load and are valid now (another pair replaces no copy); a
// pair that does not load keeps the previous copy, with a warning the
// first time for each reason. The master calls it before it starts a
// worker and every refreshEvery, so the copy follows renewals.
func (s *secrets) refreshCerts(cfg *config.Config, log *slog.Logger) {
	if s.Certs == nil {
		s.Certs, s.bad = map[string]certPair{}, map[string]string{}
	}
	for _, k := range cfg.ServerNames {
		t := cfg.Servers[k].TLS
		if t == nil {
			continue
		}
		chain, err := os.ReadFile(t.Chain)
		var key []byte
		if err == nil {
			key, err = os.ReadFile(t.Key)
		}
		var pair tls.Certificate
		if err == nil {
			pair, err = tls.X509KeyPair(chain, key)
		}
		if err != nil {
			if _, ok := s.Certs[k]; ok && s.bad[k] != err.Error() {
				log.Warn("certificate files do not load; a worker started now serves the last pair that did",
					"server", k, "chain", t.Chain, "key", t.Key, "err", err)
			}
			s.bad[k] = err.Error()
			continue
		}
		delete(s.bad, k)
		// A pair that is not valid now (expired, or not yet valid: put in
		// place early) replaces no copy, as the workers' reloads keep
		// what they serve then.
		if pair.Leaf != nil && tlsproxy.NotValidAt(pair.Leaf, time.Now()) != "" {
			if _, ok := s.Certs[k]; ok {
				continue
			}
		}
		s.Certs[k] = certPair{Chain: chain, Key: key}
	}
}

// refreshEvery is how often the master re-reads the certificate files.
const refreshEvery = 30 * time.Second

// file writes s into a sealed memfd for a worker to inherit.
func (s *secrets) file() (*os.File, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return sealedFile("monolake-secrets", b)
}

// readSecrets reads what file wrote.
func readSecrets(f *os.File) (*secrets, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<26))
	if err != nil {
		return nil, err
	}
	var s secrets
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if t := s.Tickets; t == nil || t.Period <= 0 || len(t.Secrets) == 0 {
		return nil, errors.New("decoding: no ticket ratchet")
	}
	return &s, nil
}

// fallback returns the master's copy of server key's certificate, nil
// without one.
func (s *secrets) fallback(key string) *tlsbackend.Certificate {
	p, ok := s.Certs[key]
	if !ok {
		return nil
	}
	return &tlsbackend.Certificate{CertPEM: p.Chain, KeyPEM: p.Key}
}
