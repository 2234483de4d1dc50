// Package openssl is the OpenSSL (libssl 3) backend of tlsbackend,
// registered as "openssl". It is built with cgo and the build tag
// `openssl` (`make uring`); otherwise a stub registers the name as missing,
// so that tlsbackend.Get("openssl") says why, and Available is false.
//
// The binding is our own, in csrc/mlk_openssl.{h,c}, rather than
// github.com/libp2p/go-openssl: that fork has no server-side ALPN selection
// and moves every record through Go-callback BIOs. Here each connection's
// SSL sits between two memory BIOs that Go fills from and drains to the
// net.Conn, so a Read or a Write is one C call plus its socket syscalls,
// and no C code ever calls back into Go. On linux/amd64 those calls skip
// cgo's transition (package internal/fastcall): with one P per worker, cgo
// calls woke Go's sysmon after every idle spell and handed the P to another
// thread during each handshake step. MONOLAKE_OPENSSL_FASTCALL=off sends
// every call through cgo.
package openssl

// Name is the registry name.
const Name = "openssl"
