package tlsproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/server"
	"github.com/monolake-go/monolake/proxy/tlsproxy"
	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// syncBuffer collects log output across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// echoService copies a connection back to itself.
type echoService struct{}

func (echoService) Call(_ context.Context, c net.Conn) (struct{}, error) {
	_, err := io.Copy(c, c)
	return struct{}{}, err
}

// waitFor polls cond every 10ms for up to 15s (generous: the reloader polls
// every 20ms here and waits one more poll for the files to settle).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCertificateReload serves TLS through the Layer with a Reloader and
// replaces the certificate files under it, for each backend: new
// connections get the new certificate, an old connection goes on working,
// and pairs that do not load (garbage, a key that does not match) or have
// expired are logged while the previous certificate stays in service.
func TestCertificateReload(t *testing.T) {
	ca, err := tlstest.NewCA("reload CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	leaf := func() *tlstest.Leaf {
		l, err := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, backend := range backends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			dir := t.TempDir()
			chain, key := dir+"/chain.pem", dir+"/key.pem"
			write := func(name string, data []byte) {
				t.Helper()
				// Write a new file and rename it over the old, as cert
				// managers do; the reloader must not care which way.
				tmp := name + ".tmp"
				if err := os.WriteFile(tmp, data, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, name); err != nil {
					t.Fatal(err)
				}
			}
			first := leaf()
			write(chain, first.CertPEM)
			write(key, first.KeyPEM)

			logs := &syncBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			r, addr := serveReloader(t, &config.TLS{Chain: chain, Key: key, Stack: backend, SessionTickets: true}, tlsproxy.WatchOptions{Every: 20 * time.Millisecond, Log: log})

			// dial connects, checks an echo, and returns the conn with the
			// serial of the certificate it was served.
			dial := func() (*tls.Conn, *bufio.Reader, *big.Int) {
				t.Helper()
				c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "proxy.test"})
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				echo(t, c, br, "hello")
				return c, br, c.ConnectionState().PeerCertificates[0].SerialNumber
			}
			serial := func() *big.Int {
				c, _, s := dial()
				c.Close()
				return s
			}

			old, oldBR, s := dial()
			defer old.Close()
			if s.Cmp(first.Cert.SerialNumber) != 0 {
				t.Fatalf("served serial %v, want %v", s, first.Cert.SerialNumber)
			}

			second := leaf()
			write(chain, second.CertPEM)
			write(key, second.KeyPEM)
			waitFor(t, "the reload", func() bool { return r.Reloads() == 1 })
			if s := serial(); s.Cmp(second.Cert.SerialNumber) != 0 {
				t.Fatalf("after reload: serial %v, want the new %v", s, second.Cert.SerialNumber)
			}
			echo(t, old, oldBR, "old connection still works")

			third := leaf()
			const failed = "do not load; still serving the previous certificate"
			for _, bad := range []struct {
				name       string
				chain, key []byte
			}{
				{"garbage chain", []byte("not a PEM file\n"), second.KeyPEM},
				{"key of another certificate", third.CertPEM, second.KeyPEM},
			} {
				before := logs.count(failed)
				write(chain, bad.chain)
				write(key, bad.key)
				waitFor(t, fmt.Sprintf("the log line for %s", bad.name), func() bool { return logs.count(failed) > before })
				if s := serial(); s.Cmp(second.Cert.SerialNumber) != 0 {
					t.Fatalf("after %s: serial %v, want the previous %v", bad.name, s, second.Cert.SerialNumber)
				}
			}
			// A pair that loads but has expired does not replace the
			// certificate in service either.
			expired, err := ca.Leaf(tlstest.LeafOptions{Expired: true}, "proxy.test")
			if err != nil {
				t.Fatal(err)
			}
			const stale = "has expired"
			write(chain, expired.CertPEM)
			write(key, expired.KeyPEM)
			waitFor(t, "the log line for the expired pair", func() bool { return logs.count(stale) > 0 })
			if s := serial(); s.Cmp(second.Cert.SerialNumber) != 0 {
				t.Fatalf("after the expired pair: serial %v, want the previous %v", s, second.Cert.SerialNumber)
			}
			// A good pair again is picked up.
			write(chain, third.CertPEM)
			write(key, third.KeyPEM)
			waitFor(t, "the second reload", func() bool { return r.Reloads() == 2 })
			if s := serial(); s.Cmp(third.Cert.SerialNumber) != 0 {
				t.Fatalf("after the good pair: serial %v, want %v", s, third.Cert.SerialNumber)
			}
			echo(t, old, oldBR, "old connection still works after two reloads")
		})
	}
}

func echo(t *testing.T, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != msg+"\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
}

// TestTicketsSurviveReload: with shared ticket keys (TicketKeys), a client
// resumes its session after the certificate files were reloaded, while a
// new client gets the new certificate; a Reloader of another server (its
// own keys from the same ratchet) does not resume it.
func TestTicketsSurviveReload(t *testing.T) {
	ca, err := tlstest.NewCA("tickets CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	ratchet := tlsproxy.NewTicketRatchet()
	for _, backend := range backends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			dir := t.TempDir()
			serve := func(name string) (*tlsproxy.Reloader, string, func(*tlstest.Leaf)) {
				chain, key := dir+"/"+name+"-chain.pem", dir+"/"+name+"-key.pem"
				install := func(l *tlstest.Leaf) {
					for file, data := range map[string][]byte{chain: l.CertPEM, key: l.KeyPEM} {
						if err := os.WriteFile(file+".tmp", data, 0o600); err != nil {
							t.Fatal(err)
						}
						if err := os.Rename(file+".tmp", file); err != nil {
							t.Fatal(err)
						}
					}
				}
				l, err := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
				if err != nil {
					t.Fatal(err)
				}
				install(l)
				r, addr := serveReloader(t, &config.TLS{Chain: chain, Key: key, Stack: backend, SessionTickets: true},
					tlsproxy.WatchOptions{Tickets: tlsproxy.TicketKeys(ratchet, name), Every: 20 * time.Millisecond})
				return r, addr, install
			}
			r, addr, install := serve("a")
			_, otherAddr, _ := serve("b")
			cache := tls.NewLRUClientSessionCache(4)
			// dial makes a connection with cache (the client of the
			// session) or none (a new client) and reports whether it
			// resumed and which certificate it holds.
			dial := func(addr string, cache tls.ClientSessionCache) (bool, *big.Int) {
				t.Helper()
				c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "proxy.test", ClientSessionCache: cache})
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				echo(t, c, bufio.NewReader(c), "hello") // reads the TLS 1.3 ticket too
				st := c.ConnectionState()
				return st.DidResume, st.PeerCertificates[0].SerialNumber
			}
			if resumed, _ := dial(addr, cache); resumed {
				t.Fatal("the first connection resumed")
			}
			second, err := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
			if err != nil {
				t.Fatal(err)
			}
			install(second)
			waitFor(t, "the reload", func() bool { return r.Reloads() == 1 })
			if resumed, _ := dial(addr, cache); !resumed {
				t.Error("the session did not resume after the certificate reload")
			}
			if _, s := dial(addr, nil); s.Cmp(second.Cert.SerialNumber) != 0 {
				t.Errorf("a new client got serial %v, want the reloaded %v", s, second.Cert.SerialNumber)
			}
			// The other server: the client's cache is by server name, so
			// it offers server a's ticket there too.
			if resumed, _ := dial(otherAddr, cache); resumed {
				t.Error("server b resumed a session of server a")
			}
		})
	}
}

// serveReloader serves an echo through the TLS layer with a Reloader for
// t on a loopback listener, both closed at cleanup, and returns them.
func serveReloader(tb testing.TB, t *config.TLS, o tlsproxy.WatchOptions) (*tlsproxy.Reloader, string) {
	tb.Helper()
	r, err := tlsproxy.WatchServerConfig(t, nil, o)
	if err != nil {
		tb.Fatal(err)
	}
	srv := server.New(tlsproxy.Layer(r, 0, o.Log)(echoService{}), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() {
		srv.Close()
		r.Close()
	})
	return r, ln.Addr().String()
}

// writePair writes a leaf's chain and key files, each by a rename.
func writePair(t *testing.T, chain, key string, l *tlstest.Leaf) {
	t.Helper()
	for file, data := range map[string][]byte{chain: l.CertPEM, key: l.KeyPEM} {
		if err := os.WriteFile(file+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
}

// servedSerial dials addr and returns the serial of the certificate served.
func servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "proxy.test"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestReloadRetriesUnchangedFiles: a pair refused for a reason that passes
// without the files changing again (here a certificate valid two seconds
// from now, as a CA whose clock runs ahead issues) is tried at every poll,
// and taken once it is valid; it was never looked at again.
func TestReloadRetriesUnchangedFiles(t *testing.T) {
	ca, err := tlstest.NewCA("retry CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, backend := range backends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			dir := t.TempDir()
			chain, key := dir+"/chain.pem", dir+"/key.pem"
			first, _ := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
			writePair(t, chain, key, first)
			logs := &syncBuffer{}
			r, addr := serveReloader(t, &config.TLS{Chain: chain, Key: key, Stack: backend},
				tlsproxy.WatchOptions{Every: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(logs, nil))})
			early, err := ca.Leaf(tlstest.LeafOptions{NotBefore: time.Now().Add(2 * time.Second)}, "proxy.test")
			if err != nil {
				t.Fatal(err)
			}
			writePair(t, chain, key, early)
			waitFor(t, "the not-yet-valid log line", func() bool { return logs.count("is not valid before") > 0 })
			if s := servedSerial(t, addr); s.Cmp(first.Cert.SerialNumber) != 0 {
				t.Fatalf("a not-yet-valid pair is served (serial %v)", s)
			}
			waitFor(t, "the reload once the pair is valid", func() bool { return r.Reloads() == 1 })
			if s := servedSerial(t, addr); s.Cmp(early.Cert.SerialNumber) != 0 {
				t.Fatalf("after the reload: serial %v, want %v", s, early.Cert.SerialNumber)
			}
			if n := logs.count("is not valid before"); n != 1 {
				t.Fatalf("%d log lines for one refused pair, want 1", n)
			}
		})
	}
}

// TestStartOnInvalidFilesServesCopy: a worker (re)started while the files
// hold an expired certificate serves the master's valid copy, as the
// workers already running do, and takes the files once they are valid.
func TestStartOnInvalidFilesServesCopy(t *testing.T) {
	ca, err := tlstest.NewCA("copy CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, backend := range backends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			dir := t.TempDir()
			chain, key := dir+"/chain.pem", dir+"/key.pem"
			good, _ := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
			expired, _ := ca.Leaf(tlstest.LeafOptions{Expired: true}, "proxy.test")
			writePair(t, chain, key, expired)
			r, addr := serveReloader(t, &config.TLS{Chain: chain, Key: key, Stack: backend}, tlsproxy.WatchOptions{
				Every: 20 * time.Millisecond, Fallback: &tlsbackend.Certificate{CertPEM: good.CertPEM, KeyPEM: good.KeyPEM}})
			if s := servedSerial(t, addr); s.Cmp(good.Cert.SerialNumber) != 0 {
				t.Fatalf("serial %v served, want the master's valid copy %v", s, good.Cert.SerialNumber)
			}
			renewed, _ := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
			writePair(t, chain, key, renewed)
			waitFor(t, "the reload of the renewed pair", func() bool { return r.Reloads() == 1 })
			if s := servedSerial(t, addr); s.Cmp(renewed.Cert.SerialNumber) != 0 {
				t.Fatalf("serial %v served, want the renewed %v", s, renewed.Cert.SerialNumber)
			}
		})
	}
}

// TestReloadSameSizeAndTime: a pair replaced by one of the same sizes
// whose files keep the old modification time (cp -p, rsync -a, tar) is
// reloaded; the poll compared size and modification time only and missed
// it.
func TestReloadSameSizeAndTime(t *testing.T) {
	ca, err := tlstest.NewCA("stamp CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chain, key := dir+"/chain.pem", dir+"/key.pem"
	then := time.Now().Add(-time.Hour).Truncate(time.Second)
	// install writes l's files padded to 2000 bytes, dated then, each
	// renamed into place.
	install := func(l *tlstest.Leaf) {
		for file, data := range map[string][]byte{chain: l.CertPEM, key: l.KeyPEM} {
			data = append(append([]byte(nil), data...), bytes.Repeat([]byte("\n"), 2000-len(data))...)
			if err := os.WriteFile(file+".tmp", data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(file+".tmp", then, then); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(file+".tmp", file); err != nil {
				t.Fatal(err)
			}
		}
	}
	first, _ := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
	install(first)
	r, addr := serveReloader(t, &config.TLS{Chain: chain, Key: key, Stack: backends(t)[0]},
		tlsproxy.WatchOptions{Every: 20 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	second, _ := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
	install(second)
	waitFor(t, "the reload", func() bool { return r.Reloads() == 1 })
	if s := servedSerial(t, addr); s.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("after the reload: serial %v, want %v", s, second.Cert.SerialNumber)
	}
}
