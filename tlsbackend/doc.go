// Package tlsbackend will define the TLS contract shared by the proxy's two
// TLS stacks: one config type (certificates chosen by SNI, ALPN, versions,
// session resumption, client verification), one conn contract (handshake,
// ALPN and version negotiated, peer certificates, close_notify), and a
// registry of the backends compiled in: gotls (crypto/tls, always) and
// openssl (libssl 3 through cgo, with `make uring`).
//
// It imports nothing of package proxy.
package tlsbackend
