// Package csrc holds the C helpers that the cgo packages (uring and the
// OpenSSL TLS backend) compile in: liburing's static inline hot-path
// functions wrapped for one call per loop round, and the OpenSSL additions
// (server-side ALPN selection, memory BIOs). Every C symbol carries the
// project prefix "mlk_". Until those land it holds only this file.
package csrc
