//go:build openssl && cgo

package openssl

import (
	"net"
	"testing"

	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// testConfigs returns a server config with a certificate for "a.test" and
// a client config that trusts its CA and asks for "a.test".
func testConfigs(t *testing.T) (tlsbackend.ServerConfig, tlsbackend.ClientConfig) {
	t.Helper()
	ca, err := tlstest.NewCA("openssl test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(tlstest.LeafOptions{}, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := Backend{}.NewServerConfig(&tlsbackend.Config{Certificates: []tlsbackend.Certificate{leaf.Certificate()}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := Backend{}.NewClientConfig(&tlsbackend.Config{RootCAPEM: ca.CertPEM, ServerName: "a.test"})
	if err != nil {
		t.Fatal(err)
	}
	return sc, cc
}

// tcpPair returns the two ends of a loopback TCP connection, closed at the
// end of the test.
func tcpPair(t *testing.T) (server, client net.Conn) { return tlstest.TCPPair(t) }
