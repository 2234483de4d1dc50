//go:build openssl && cgo

package openssl

/*
#cgo CFLAGS: -O2 -Wall -fstack-clash-protection -D_GNU_SOURCE
#cgo LDFLAGS: -lssl -lcrypto -ldl
#cgo noescape mlk_dispatch
#cgo nocallback mlk_dispatch
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "../../csrc/mlk_openssl.h"
*/
import "C"

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/openssl/internal/fastcall"
)

// Available reports that this build has the OpenSSL backend.
const Available = true

// Results of the C record calls (mlk_openssl.h).
const (
	mlkDone     = int(C.MLK_DONE)
	mlkWantRead = int(C.MLK_WANT_READ)
	mlkEOF      = int(C.MLK_EOF)
	mlkErr      = int(C.MLK_ERR)
)

// The context holds as many ticket keys as a rotator does.
var (
	_ [C.MLK_MAXTKEYS - tlsbackend.MaxTicketKeys]byte
	_ [tlsbackend.MaxTicketKeys - C.MLK_MAXTKEYS]byte
)

// handle is one connection's C state; see mlk_openssl.h for its fields.
type handle = *C.struct_mlk_conn

// Version is OpenSSL_version(OPENSSL_VERSION) of the linked libssl.
func Version() string { return C.GoString(C.mlk_openssl_version()) }

func init() { tlsbackend.Register(Name, Backend{}) }

type errBuf [C.MLK_ERRLEN]byte

func (b *errBuf) ptr() *C.char { return (*C.char)(unsafe.Pointer(&b[0])) }

func (b *errBuf) err() error {
	s := b[:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return errors.New("openssl: " + string(s))
}

// ctxRef owns an mlk_ctx (the SSL_CTXs of one Config). It is freed by a
// cleanup on the ServerConfig/ClientConfig that holds it, which every conn
// made from that config keeps reachable: the SSL callbacks use the mlk_ctx.
type ctxRef struct {
	p      *C.struct_mlk_ctx
	once   sync.Once
	cancel func() // stops following the ticket-key rotator
}

func (r *ctxRef) unsubscribe() {
	r.once.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
	})
}

// free runs from a cleanup, which shares the worker's P with everything
// else: like the per-connection calls it goes through call.
func (r *ctxRef) free() {
	r.unsubscribe()
	call(&C.struct_mlk_call{op: C.MLK_OP_CTX_FREE, m: r.p}, nil, nil)
	r.p = nil
}

// bytesPtr is b's data for C, nil when b is empty: call pins only non-empty
// slices, and cgo refuses an unpinned Go pointer.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// newCtx builds the C contexts of a loaded config.
func newCtx(l *tlsbackend.Loaded, c *tlsbackend.Config, server bool) (*ctxRef, error) {
	var o C.struct_mlk_opts
	var eb errBuf
	b2i := func(v bool) C.int {
		if v {
			return 1
		}
		return 0
	}
	o.is_server = b2i(server)
	o.min_version = C.int(l.MinVersion)
	o.max_version = C.int(l.MaxVersion)
	names := make([]string, len(l.CipherSuites))
	for i, id := range l.CipherSuites {
		names[i], _ = tlsbackend.CipherSuiteOpenSSLName(id)
	}
	ciphers := C.CString(strings.Join(names, ":"))
	defer C.free(unsafe.Pointer(ciphers))
	o.ciphers = ciphers
	if server {
		o.verify = C.int(c.ClientAuth)
		o.own_ticket_keys = b2i(c.SessionTickets != nil)
	} else {
		o.verify = b2i(!c.InsecureSkipVerify)
		o.system_roots = b2i(l.Roots == nil)
	}
	o.no_tickets = b2i(c.SessionTicketsDisabled)
	var wire []byte
	for _, p := range c.NextProtos {
		wire = append(wire, byte(len(p)))
		wire = append(wire, p...)
	}
	if len(wire) > 0 {
		cw := C.CBytes(wire)
		defer C.free(cw)
		o.alpn = (*C.uchar)(cw)
		o.alpn_len = C.int(len(wire))
	}
	m := C.mlk_ctx_new(&o, eb.ptr())
	if m == nil {
		return nil, eb.err()
	}
	ref := &ctxRef{p: m}
	fail := func() (*ctxRef, error) {
		err := eb.err()
		ref.free()
		return nil, err
	}
	cas := l.ClientCAsDER
	if !server {
		cas = l.RootsDER
	}
	for _, der := range cas {
		if C.mlk_ctx_add_ca(m, (*C.uchar)(bytesPtr(der)), C.int(len(der)), eb.ptr()) != 0 {
			return fail()
		}
	}
	for _, kp := range l.Certs {
		var chain []byte
		lens := make([]C.int, len(kp.Chain))
		for i, d := range kp.Chain {
			chain = append(chain, d...)
			lens[i] = C.int(len(d))
		}
		if C.mlk_ctx_add_cert(m, (*C.uchar)(bytesPtr(chain)), &lens[0], C.int(len(lens)),
			(*C.uchar)(bytesPtr(kp.PKCS8)), C.int(len(kp.PKCS8)), eb.ptr()) != 0 {
			return fail()
		}
		if !server {
			break // a client presents Certificates[0] only
		}
	}
	if C.mlk_ctx_finish(m, eb.ptr()) != 0 {
		return fail()
	}
	return ref, nil
}

// setTicketKeys installs keys derived from the rotator's secrets.
func (r *ctxRef) setTicketKeys(keys []tlsbackend.TicketKey) {
	if len(keys) > C.MLK_MAXTKEYS { // not from a rotator (MaxTicketKeys)
		keys = keys[:C.MLK_MAXTKEYS]
	}
	ks := make([]C.struct_mlk_tkey, len(keys))
	for i, k := range keys {
		name, aesKey, hmacKey := tlsbackend.DeriveTicketKey(k)
		for j := range name {
			ks[i].name[j] = C.uchar(name[j])
		}
		for j := range aesKey {
			ks[i].aes[j] = C.uchar(aesKey[j])
			ks[i].hmac[j] = C.uchar(hmacKey[j])
		}
	}
	if len(ks) > 0 {
		C.mlk_ctx_set_ticket_keys(r.p, &ks[0], C.int(len(ks)))
	}
}

// newHandle makes the SSL of one connection.
func (r *ctxRef) newHandle(host string, isIP bool, sess []byte) (handle, error) {
	var eb errBuf
	if host == "" && sess == nil {
		a := C.struct_mlk_call{op: C.MLK_OP_NEW, m: r.p, out: unsafe.Pointer(eb.ptr())}
		if call(&a, nil, eb[:]); a.c == nil {
			return nil, eb.err()
		}
		return a.c, nil
	}
	if strings.IndexByte(host, 0) >= 0 {
		// C would read a shorter name, and verify that one.
		return nil, fmt.Errorf("openssl: server name %q contains a NUL byte", host)
	}
	var chost *C.char
	if host != "" {
		chost = C.CString(host)
		defer C.free(unsafe.Pointer(chost))
	}
	ip := C.int(0)
	if isIP {
		ip = 1
	}
	h := C.mlk_conn_new(r.p, chost, ip, (*C.uchar)(bytesPtr(sess)), C.int(len(sess)), eb.ptr())
	runtime.KeepAlive(sess)
	if h == nil {
		return nil, eb.err()
	}
	return h, nil
}

func freeHandle(h handle) { call(&C.struct_mlk_call{op: C.MLK_OP_FREE, c: h}, nil, nil) }

// call makes the per-connection call a (mlk_dispatch), whose in and out
// point into the given slices: through package fastcall, without cgo's
// transition, so with no sysmon wake-up and no hand-off of the P (see its
// doc); else (not linux/amd64, no free stack, or MONOLAKE_OPENSSL_FASTCALL=off)
// as a cgo call, the slices pinned for it.
func call(a *C.struct_mlk_call, in, out []byte) int {
	if useFastCall.Load() && fastcall.Call(unsafe.Pointer(C.mlk_dispatch), unsafe.Pointer(a)) {
		runtime.KeepAlive(in)
		runtime.KeepAlive(out)
		return int(a.ret)
	}
	var pin runtime.Pinner
	if len(in) > 0 {
		pin.Pin(&in[0])
	}
	if len(out) > 0 {
		pin.Pin(&out[0])
	}
	C.mlk_dispatch(a)
	pin.Unpin()
	return int(a.ret)
}

// useFastCall: MONOLAKE_OPENSSL_FASTCALL=off sends every call through cgo,
// a switch for diagnosis (a crash inside OpenSSL then gets cgo's report,
// see package fastcall); TestCallPaths runs both ways.
var useFastCall atomic.Bool

func init() { useFastCall.Store(os.Getenv("MONOLAKE_OPENSSL_FASTCALL") != "off") }

// The record calls. The caller holds the conn's lock and keeps the conn
// alive past the call; in, out and p are Go memory without pointers.

func cHandshake(h handle, in []byte) int {
	return call(&C.struct_mlk_call{op: C.MLK_OP_HANDSHAKE, c: h, in: bytesPtr(in), in_len: C.size_t(len(in))}, in, nil)
}

func cRead(h handle, in, out []byte) int {
	return call(&C.struct_mlk_call{op: C.MLK_OP_READ, c: h, in: bytesPtr(in), in_len: C.size_t(len(in)),
		out: bytesPtr(out), cap: C.size_t(len(out))}, in, out)
}

// cWrite returns the ciphertext bytes put in out, or mlkErr.
func cWrite(h handle, p, out []byte) int {
	return call(&C.struct_mlk_call{op: C.MLK_OP_WRITE, c: h, in: bytesPtr(p), in_len: C.size_t(len(p)),
		out: bytesPtr(out), cap: C.size_t(len(out))}, p, out)
}

func cDrain(h handle, out []byte) int {
	return call(&C.struct_mlk_call{op: C.MLK_OP_DRAIN, c: h, out: bytesPtr(out), cap: C.size_t(len(out))}, nil, out)
}

func cShutdown(h handle) int { return call(&C.struct_mlk_call{op: C.MLK_OP_SHUTDOWN, c: h}, nil, nil) }

func cTrim(h handle) { call(&C.struct_mlk_call{op: C.MLK_OP_TRIM, c: h}, nil, nil) }

// cBIOCaps returns the sizes of the buffers of the SSL's read and write
// BIOs, for tests.
func cBIOCaps(h handle) (r, w int) {
	var cr, cw C.size_t
	C.mlk_bio_caps(h, &cr, &cw)
	return int(cr), int(cw)
}

// OpenSSL's allocator (csrc/mlk_libc.c), for tests: OpenSSL's malloc,
// realloc and free, glibc's usable size of a block and the allocator's
// reading of it (0 for an mmapped block), whether OpenSSL allocates
// through the cache (not in a sanitizer build), the calling thread's cached
// bytes in class i (in all for allocNClass), and the size classes
// (allocNClass for none).
const allocNClass = int(C.MLK_ALLOC_NCLASS)

func cryptoMalloc(n int) unsafe.Pointer { return C.CRYPTO_malloc(C.size_t(n), nil, 0) }

func cryptoRealloc(p unsafe.Pointer, n int) unsafe.Pointer {
	return C.CRYPTO_realloc(p, C.size_t(n), nil, 0)
}

func cryptoFree(p unsafe.Pointer) { C.CRYPTO_free(p, nil, 0) }

func usableSize(p unsafe.Pointer) int  { return int(C.malloc_usable_size(p)) }
func allocUsable(p unsafe.Pointer) int { return int(C.mlk_alloc_usable(p)) }

func allocInstalled() bool  { return C.mlk_alloc_installed() != 0 }
func allocSanitized() bool  { return C.mlk_alloc_sanitized() != 0 }
func allocCached(i int) int { return int(C.mlk_alloc_cached(C.uint(i))) }

func allocClassSize(i int) int { return int(C.mlk_alloc_class_size(C.uint(i))) }
func allocClass(n int) int     { return int(C.mlk_alloc_class(C.size_t(n))) }
func allocFloor(u int) int     { return int(C.mlk_alloc_floor(C.size_t(u))) }

// allocThreadRun runs a C thread that allocates count blocks of n bytes
// through OpenSSL and frees them, frees the blocks of foreign (allocated on
// the caller's thread), and exits; it returns the bytes the thread's lists
// held just before it exited. allocInUse is the bytes malloc(3) has handed
// out, OpenSSL's cached blocks included.
func allocThreadRun(n, count int, foreign []unsafe.Pointer) (kept int, err error) {
	var k C.size_t
	var arr *unsafe.Pointer // C pointers in Go memory, which cgo allows
	if len(foreign) > 0 {
		arr = &foreign[0]
	}
	if e := C.mlk_alloc_thread_run(C.size_t(n), C.int(count), arr, C.int(len(foreign)), &k); e != 0 {
		return 0, syscall.Errno(e)
	}
	return int(k), nil
}

// allocInUse is -1 where glibc has no mallinfo2 (before 2.33).
func allocInUse() int {
	n := C.mlk_alloc_inuse()
	if n == C.SIZE_MAX {
		return -1
	}
	return int(n)
}

// getpid as libraries call it (csrc/mlk_libc.c caches it), whether they are
// bound to that one, and a fork(3) whose child checks it (its exit
// status), for tests.
func cGetpid() int        { return int(C.getpid()) }
func getpidBound() bool   { return C.mlk_getpid_bound() != 0 }
func getpidForkTest() int { return int(C.mlk_getpid_fork()) }

// cPending reports ciphertext waiting for the socket; more: the SSL may
// return plaintext without more ciphertext (buffered plaintext or records,
// possibly only part of one); partial: part of a record is buffered (when
// more is false, or at EOF).
func cPending(h handle) (wpending int, more, partial bool) {
	buffered := h.rpending > 0 || h.has_pending != 0
	return int(h.wpending), h.plain_pending > 0 || buffered, buffered
}

func cErr(h handle) error {
	return errors.New("openssl: " + C.GoString(&h.err[0]))
}

func cState(h handle) (st tlsbackend.ConnectionState, hasPeer bool) {
	st.HandshakeComplete = true
	st.Version = uint16(h.version)
	st.CipherSuite = uint16(h.cipher)
	st.DidResume = h.resumed != 0
	st.NegotiatedProtocol = C.GoStringN(&h.alpn[0], h.alpn_len)
	st.ServerName = C.GoStringN(&h.sni[0], h.sni_len)
	return st, h.has_peer != 0
}

// cTakeSession returns the client session the server last gave, once.
func cTakeSession(h handle) []byte {
	if h.sess_len <= 0 {
		return nil
	}
	b := C.GoBytes(unsafe.Pointer(h.sess), h.sess_len)
	h.sess_len = 0
	return b
}

func cPeerChain(h handle) ([]*x509.Certificate, error) {
	const maxn = 16
	var lens [maxn]C.int
	buf := make([]byte, 8192)
	for {
		n := int(C.mlk_peer_chain(h, (*C.uchar)(bytesPtr(buf)), C.int(len(buf)), &lens[0], maxn))
		if n < 0 {
			buf = make([]byte, -n)
			continue
		}
		certs := make([]*x509.Certificate, 0, n)
		off := 0
		for i := range n {
			l := int(lens[i])
			crt, err := x509.ParseCertificate(buf[off : off+l])
			if err != nil {
				return nil, errors.Join(errors.New("openssl: parsing peer certificate"), err)
			}
			certs = append(certs, crt)
			off += l
		}
		return certs, nil
	}
}

// ipLiteral reports whether a server name is an IP address literal, and
// returns it without the brackets of an IPv6 one ("[::1]" is ::1).
func ipLiteral(name string) (string, bool) {
	bare := strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	return bare, net.ParseIP(bare) != nil
}
