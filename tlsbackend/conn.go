package tlsbackend

import (
	"context"
	"crypto/x509"
	"net"
)

// Conn is a TLS connection of either backend.
//
// As net.Conn: Read and Write may be called from two goroutines at once
// (one reader, one writer); deadlines apply to the underlying conn. The
// handshake runs on the first Read or Write if Handshake was not called.
// Close sends close_notify (when the handshake completed) and then closes
// the underlying conn; a peer's close_notify makes Read return io.EOF, and
// so does a plain TCP close at a record boundary (as crypto/tls does); a
// close inside a record is io.ErrUnexpectedEOF.
type Conn interface {
	net.Conn

	// Handshake runs the handshake if it has not run. When ctx ends
	// before the handshake completes, the underlying conn is closed and
	// the error wraps ctx.Err() (context.DeadlineExceeded for a deadline).
	// Safe to call more than once; later calls return the first result.
	Handshake(ctx context.Context) error

	// ConnectionState describes the connection; before the handshake
	// completes only HandshakeComplete (false) is set.
	ConnectionState() ConnectionState

	// CloseWrite sends close_notify without closing the conn, for a
	// half-close; the conn stays readable.
	CloseWrite() error

	// NetConn is the underlying conn. Reading or writing it directly
	// corrupts the TLS stream.
	NetConn() net.Conn
}

// ConnectionState is what a handshake negotiated.
type ConnectionState struct {
	HandshakeComplete  bool
	Version            uint16 // VersionTLS12 or VersionTLS13
	CipherSuite        uint16 // IANA ID, as crypto/tls
	NegotiatedProtocol string // ALPN result; "" when none
	// ServerName: on a server, the SNI name the client sent ("" if none);
	// on a client, the name it sent.
	ServerName string
	DidResume  bool
	// PeerCertificates is the chain the peer sent, leaf first; empty when
	// the peer sent none. On a resumed connection it is the chain of the
	// original session where the backend keeps it.
	PeerCertificates []*x509.Certificate
}

// ServerConfig is a Config prepared for serving: certificates parsed and
// contexts built once, so that Server costs little per connection. It is
// safe for concurrent use.
type ServerConfig interface {
	// Server wraps an accepted conn; the handshake runs later.
	Server(c net.Conn) Conn
	// Close releases what the config holds (it stops following the
	// ticket-key rotator); conns already made stay usable.
	Close() error
}

// ClientConfig is a Config prepared for dialling, with its session cache.
// It is safe for concurrent use.
type ClientConfig interface {
	// Client wraps a dialled conn. serverName overrides Config.ServerName
	// for this conn ("" keeps it); it is both the SNI sent and the name the
	// certificate is verified against (an IP address is verified against
	// the certificate's IP SANs and not sent as SNI).
	Client(c net.Conn, serverName string) Conn
	Close() error
}

// Backend is a TLS implementation.
type Backend interface {
	// Name is the registry name, e.g. "gotls".
	Name() string
	// Version describes the implementation, e.g. "OpenSSL 3.0.13 30 Jan 2024".
	Version() string
	NewServerConfig(c *Config) (ServerConfig, error)
	NewClientConfig(c *Config) (ClientConfig, error)
}
