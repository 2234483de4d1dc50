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
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		client.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		server.Close()
		client.Close()
	})
	return server, client
}
