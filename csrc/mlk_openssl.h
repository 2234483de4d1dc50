/*
 * mlk_openssl.h: the record path and context setup of the OpenSSL TLS
 * backend (package tlsbackend/openssl), over libssl 3 with memory BIOs.
 *
 * Go owns the socket. Per connection one SSL reads ciphertext from a memory
 * BIO (rbio) that Go fills from the socket and writes ciphertext into a
 * memory BIO (wbio) that Go drains to the socket. Each call below does one
 * record-level operation and reports what is left in the BIOs, so a Read or
 * a Write is one cgo call plus the socket syscalls.
 *
 * Thread safety: an mlk_ctx is shared by many connections on many threads
 * (its ticket keys have a lock); an mlk_conn is used by one thread at a
 * time (Go holds a mutex around every call on it).
 */
#ifndef MLK_OPENSSL_H
#define MLK_OPENSSL_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Results of mlk_handshake, mlk_read and mlk_write (mlk_read returns the
 * number of plaintext bytes when positive). */
#define MLK_DONE 0        /* handshake complete / write done */
#define MLK_WANT_READ (-1) /* feed more ciphertext */
#define MLK_EOF (-2)       /* the peer's close_notify */
#define MLK_ERR (-3)       /* failure; the message is in err */

#define MLK_ERRLEN 512
#define MLK_MAXCTX 64
#define MLK_MAXTKEYS 8

struct mlk_opts {
	int is_server;
	int min_version, max_version; /* TLS1_2_VERSION, TLS1_3_VERSION */
	const char *ciphers;          /* TLS 1.2 cipher list */
	int verify;     /* server: 0 none, 1 if given, 2 required; client: 0 skip, 1 verify */
	int system_roots;             /* client: load the default verify paths */
	int no_tickets;               /* no session tickets / no client cache */
	int own_ticket_keys;          /* server: keys come from mlk_ctx_set_ticket_keys */
	const unsigned char *alpn;    /* wire format (length-prefixed), may be NULL */
	int alpn_len;
};

struct mlk_tkey {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

/* A prepared configuration: one SSL_CTX per certificate (ctx[0] is the
 * default), identical but for the certificate, so the SNI callback may
 * switch between them. */
struct mlk_ctx {
	int is_server;
	int nctx;
	SSL_CTX *ctx[MLK_MAXCTX];
	struct mlk_opts o; /* o.ciphers and o.alpn point at the copies below */
	char ciphers[1024];
	unsigned char alpn[1024];
	int alpn_len;
	X509_STORE *store;
	STACK_OF(X509) *cas;

	void *tk_mu; /* pthread_mutex_t */
	int tk_n;
	struct mlk_tkey tk[MLK_MAXTKEYS];
};

/* One connection. Go reads the result fields directly after each call. */
struct mlk_conn {
	SSL *ssl;
	BIO *rbio, *wbio;
	struct mlk_ctx *m;

	/* After every call: */
	size_t wpending;   /* ciphertext waiting in wbio for the socket */
	size_t rpending;   /* unprocessed ciphertext in rbio */
	int plain_pending; /* decrypted bytes buffered in the SSL */
	int has_pending;   /* SSL_has_pending: any record data, even partial */

	/* After the handshake (mlk_handshake returned MLK_DONE): */
	int version, cipher, resumed, has_peer;
	int alpn_len, sni_len;
	char alpn[256];
	char sni[256];

	/* Client: the latest session the server gave (i2d DER, malloc'd);
	 * Go copies it out and sets sess_len to 0. */
	unsigned char *sess;
	int sess_len;

	/* mlk_read: close_notify (MLK_EOF) or an error (MLK_ERR, why in
	 * err) came after the plaintext it returned; the next call
	 * returns it, and has_pending is set until then. */
	int read_end;

	char err[MLK_ERRLEN];
};

const char *mlk_openssl_version(void);

struct mlk_ctx *mlk_ctx_new(const struct mlk_opts *o, char *err);
int mlk_ctx_add_ca(struct mlk_ctx *m, const unsigned char *der, int len, char *err);
/* chain: n DER certificates concatenated, lens[i] bytes each, leaf first;
 * key: PKCS#8 DER. */
int mlk_ctx_add_cert(struct mlk_ctx *m, const unsigned char *chain, const int *lens, int n,
		     const unsigned char *key, int keylen, char *err);
/* Called after the certificates: a client without one gets a bare context. */
int mlk_ctx_finish(struct mlk_ctx *m, char *err);
/* keys: n entries, current first. */
void mlk_ctx_set_ticket_keys(struct mlk_ctx *m, const struct mlk_tkey *keys, int n);
void mlk_ctx_free(struct mlk_ctx *m);

/* host: client only (NULL on a server): the SNI name and the name verified;
 * host_is_ip: verify as an IP address and send no SNI. sess: a session to
 * resume (client), may be NULL. */
struct mlk_conn *mlk_conn_new(struct mlk_ctx *m, const char *host, int host_is_ip,
			      const unsigned char *sess, int sess_len, char *err);
void mlk_conn_free(struct mlk_conn *c);

/* Feeds in[0:in_len] to rbio and advances the handshake. */
int mlk_handshake(struct mlk_conn *c, const void *in, size_t in_len);
/* Feeds in[0:in_len] to rbio and reads up to cap plaintext bytes. */
int mlk_read(struct mlk_conn *c, const void *in, size_t in_len, void *out, size_t cap);
/* Encrypts p[0:n] (all of it) and moves up to cap ciphertext bytes, the
 * wbio's older content first, into out; returns their count or MLK_ERR. */
int mlk_write(struct mlk_conn *c, const void *p, size_t n, void *out, size_t cap);
/* Moves up to cap bytes of wbio into out; returns the count. */
size_t mlk_drain(struct mlk_conn *c, void *out, size_t cap);
/* Queues close_notify in wbio. */
int mlk_shutdown(struct mlk_conn *c);
/* Frees the buffer of each BIO that is empty, once the handshake is over:
 * for a connection going idle. */
void mlk_trim(struct mlk_conn *c);
/* The BIOs' buffer sizes, for tests. */
void mlk_bio_caps(struct mlk_conn *c, size_t *r, size_t *w);
/* Writes the peer's chain, leaf first, into buf (DER, lens[i] bytes each);
 * returns the count, or -(bytes needed) when buf or lens is too small. */
int mlk_peer_chain(struct mlk_conn *c, unsigned char *buf, int cap, int *lens, int maxn);

/*
 * One entry point for the calls made while serving (per connection, and a
 * context's free from its Go cleanup), taking its arguments and
 * result in memory, so that Go can call it on a stack of its own without
 * cgo (tlsbackend/openssl/internal/fastcall): the ops below are the
 * functions of the same name.
 */
enum {
	MLK_OP_HANDSHAKE = 1, /* mlk_handshake(c, in, in_len) */
	MLK_OP_READ,          /* mlk_read(c, in, in_len, out, cap) */
	MLK_OP_WRITE,         /* mlk_write(c, in, in_len, out, cap) */
	MLK_OP_DRAIN,         /* mlk_drain(c, out, cap) */
	MLK_OP_SHUTDOWN,      /* mlk_shutdown(c) */
	MLK_OP_FREE,          /* mlk_conn_free(c) */
	MLK_OP_NEW,           /* c = mlk_conn_new(m, NULL, 0, NULL, 0, out): no name, no session */
	MLK_OP_TRIM,          /* mlk_trim(c) */
	MLK_OP_CTX_FREE,      /* mlk_ctx_free(m) */
};

struct mlk_call {
	int op;
	struct mlk_ctx *m;
	struct mlk_conn *c;
	const void *in;
	size_t in_len;
	void *out;
	size_t cap;
	long long ret;
};

void mlk_dispatch(struct mlk_call *a);

/* OpenSSL's allocator (mlk_libc.c). mlk_alloc_installed: whether OpenSSL
 * allocates through it; mlk_alloc_cached: the bytes the calling thread keeps
 * for reuse in class i, or in all for MLK_ALLOC_NCLASS; the other four
 * expose its size classes (MLK_ALLOC_NCLASS for none) and its reading of a
 * block's usable size to tests. */
#define MLK_ALLOC_NCLASS 48
int mlk_alloc_installed(void);
int mlk_alloc_sanitized(void); /* a sanitizer build: not installed */
size_t mlk_alloc_cached(unsigned i);
size_t mlk_alloc_class_size(unsigned i);
unsigned mlk_alloc_class(size_t n);
unsigned mlk_alloc_floor(size_t u);
size_t mlk_alloc_usable(const void *p);
/* mlk_alloc_thread_run: a thread that allocates count blocks of n bytes
 * through OpenSSL's allocator and frees them, then frees the nforeign
 * blocks of foreign (another thread's), and exits; *kept is what its lists
 * held before it exited. 0 or an errno. mlk_alloc_inuse: the bytes glibc's
 * malloc has handed out (mallinfo2), in every arena, or SIZE_MAX before
 * glibc 2.33. For tests. */
int mlk_alloc_thread_run(size_t n, int count, void **foreign, int nforeign, size_t *kept);
size_t mlk_alloc_inuse(void);

/* getpid, cached (mlk_libc.c), for tests: whether libraries are bound to
 * it, and a fork whose child checks it (its exit status, or -1). */
int mlk_getpid_bound(void);
int mlk_getpid_fork(void);

#endif
