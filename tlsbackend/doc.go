// Package tlsbackend defines the TLS contract shared by the proxy's two TLS
// stacks: one Config (certificate chains chosen by SNI with a default, ALPN,
// versions, TLS 1.2 cipher policy, session tickets with rotating keys,
// client-certificate verification, and the client-side fields), one Conn
// contract (net.Conn plus Handshake with a context, ConnectionState,
// close_notify on Close), and a registry of the backends compiled in:
//
//   - gotls: crypto/tls, always built (package tlsbackend/gotls);
//   - openssl: libssl 3 through cgo, built with the tags `openssl` and cgo
//     (package tlsbackend/openssl; `make uring`).
//
// A backend registers itself from its package's init, so a program imports
// the backends it wants (tlsbackend/all imports both) and picks one by name
// with Get. A Config is turned into a ServerConfig or ClientConfig once
// (certificates parsed, contexts built); making a Conn from those is cheap.
//
// One conformance suite (conformance_test.go, tools_test.go) runs against
// every backend compiled in, including each backend's client against the
// other's server and real openssl s_client and curl; tlsbackend/tlstest
// makes the test certificates.
//
// It imports nothing of package proxy nor of package uring, and uses no cgo.
package tlsbackend
