//go:build ignore

/*
 * mlk_openssl.c: memory-BIO record path, contexts, SNI, ALPN, session
 * tickets over libssl 3. See mlk_openssl.h. Compiled into package
 * tlsbackend/openssl by tlsbackend/openssl/mlk_openssl_shim.c. The build
 * constraint above stops go from treating csrc/ as a package of its own
 * (a C compiler reads that line as a comment). See csrc/README.md.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "mlk_openssl.h"

const char *mlk_openssl_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}

/* mlk_errq writes what, then the drained error queue, then the certificate
 * verification result if it failed and was enforced, into err. With
 * verification off OpenSSL still records a failed result: quoting it on
 * every later error would point at the certificate for, say, a bad record
 * MAC. */
static void mlk_errq(char *err, const char *what, SSL *ssl)
{
	size_t off;
	unsigned long e;
	char buf[256];
	const char *sep = ": ";

	off = (size_t)snprintf(err, MLK_ERRLEN, "%s", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		if (off < MLK_ERRLEN - 1)
			off += (size_t)snprintf(err + off, MLK_ERRLEN - off, "%s%s", sep, buf);
		sep = "; ";
	}
	if (ssl && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE) {
		long v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK && off < MLK_ERRLEN - 1)
			off += (size_t)snprintf(err + off, MLK_ERRLEN - off, " (certificate: %s)",
						X509_verify_cert_error_string(v));
	}
}

/* ---- callbacks ---- */

/* SNI: the first context whose leaf is valid for the name, else keep the
 * default; the same rule as tlsbackend.Loaded.SelectCertificate. */
static int mlk_sni_cb(SSL *s, int *al, void *arg)
{
	struct mlk_ctx *m = arg;
	const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
	int i;

	(void)al;
	if (!name || m->nctx < 2)
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; i < m->nctx; i++) {
		X509 *leaf = SSL_CTX_get0_certificate(m->ctx[i]);
		if (leaf && X509_check_host(leaf, name, 0,
					    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
						    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
					    NULL) == 1) {
			if (SSL_get_SSL_CTX(s) != m->ctx[i])
				SSL_set_SSL_CTX(s, m->ctx[i]);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

static int mlk_alpn_has(const unsigned char *l, unsigned int n, const char *p)
{
	size_t pl = strlen(p);
	unsigned int i = 0;

	while (i < n) {
		unsigned int k = l[i];
		if (k == pl && i + 1 + k <= n && memcmp(l + i + 1, p, pl) == 0)
			return 1;
		i += 1 + k;
	}
	return 0;
}

/* ALPN: the server's order wins; no overlap fails the handshake, except
 * that an http/1.1 client of an h2 server gets no protocol (crypto/tls). */
static int mlk_alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	struct mlk_ctx *m = arg;
	unsigned char *o = NULL;
	unsigned char ol = 0;

	(void)s;
	if (SSL_select_next_proto(&o, &ol, m->alpn, (unsigned)m->alpn_len, in, inlen) ==
	    OPENSSL_NPN_NEGOTIATED) {
		*out = o;
		*outlen = ol;
		return SSL_TLSEXT_ERR_OK;
	}
	if (mlk_alpn_has(m->alpn, (unsigned)m->alpn_len, "h2") && mlk_alpn_has(in, inlen, "http/1.1"))
		return SSL_TLSEXT_ERR_NOACK;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Session tickets with the keys Go sets (AES-256-CBC + HMAC-SHA256, the
 * RFC 5077 layout OpenSSL uses). Returns 2 on decryption with an old key so
 * that OpenSSL issues a fresh ticket. */
static int mlk_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
			 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct mlk_ctx *m = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
	struct mlk_tkey k;
	int i, idx = -1, ret;
	char digest[] = "SHA256";
	OSSL_PARAM params[3];

	pthread_mutex_lock(m->tk_mu);
	if (enc) {
		if (m->tk_n > 0) {
			k = m->tk[0];
			idx = 0;
		}
	} else {
		for (i = 0; i < m->tk_n; i++)
			if (memcmp(m->tk[i].name, key_name, 16) == 0) {
				k = m->tk[i];
				idx = i;
				break;
			}
	}
	pthread_mutex_unlock(m->tk_mu);
	if (idx < 0)
		return 0; /* enc: no ticket; dec: unknown key, full handshake */
	ret = -1;
	if (enc) {
		memcpy(key_name, k.name, 16);
		if (RAND_bytes(iv, 16) <= 0)
			goto out;
	}
	if (!EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv, enc))
		goto out;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[2] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(hctx, params))
		goto out;
	ret = (enc || idx == 0) ? 1 : 2;
out:
	/* the copy of the keys goes on every path: fastcall stacks persist */
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* Client: keep the latest session, serialized, for Go to cache. */
static int mlk_new_sess_cb(SSL *s, SSL_SESSION *sess)
{
	struct mlk_conn *c = SSL_get_app_data(s);
	unsigned char *buf, *p;
	int n;

	if (!c)
		return 0;
	n = i2d_SSL_SESSION(sess, NULL);
	if (n <= 0)
		return 0;
	buf = malloc((size_t)n);
	if (!buf)
		return 0;
	p = buf;
	i2d_SSL_SESSION(sess, &p);
	free(c->sess);
	c->sess = buf;
	c->sess_len = n;
	return 0; /* we keep no reference to sess */
}

/* ---- contexts ---- */

/* mlk_sid_ctx names a server's client-certificate policy (verify mode and
 * client CAs) as its session ID context. OpenSSL resumes a session only
 * under the context it was issued in, and checks the context, not the
 * policy: with one context for all, a ticket issued where no client
 * certificate was asked for would resume, certificate-less, on a server
 * sharing the ticket keys that requires one. */
static int mlk_sid_ctx(struct mlk_ctx *m, int mode, unsigned char out[32])
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char tag[4] = {'m', 'l', 'k', (unsigned char)mode};
	unsigned int n = 0;
	int i, ok;

	if (!h)
		return 0;
	ok = EVP_DigestInit_ex(h, EVP_sha256(), NULL) && EVP_DigestUpdate(h, tag, sizeof(tag));
	for (i = 0; ok && i < sk_X509_num(m->cas); i++) {
		unsigned char *der = NULL;
		int len = i2d_X509(sk_X509_value(m->cas, i), &der);

		ok = len > 0 && EVP_DigestUpdate(h, der, (size_t)len);
		OPENSSL_free(der);
	}
	ok = ok && EVP_DigestFinal_ex(h, out, &n) && n == 32;
	EVP_MD_CTX_free(h);
	return ok;
}

static SSL_CTX *mlk_new_child(struct mlk_ctx *m, char *err)
{
	const struct mlk_opts *o = &m->o;
	SSL_CTX *ctx;
	uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
	int i;

	ctx = SSL_CTX_new(m->is_server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		mlk_errq(err, "SSL_CTX_new", NULL);
		return NULL;
	}
	if (o->no_tickets)
		opts |= SSL_OP_NO_TICKET;
	SSL_CTX_set_options(ctx, opts);
	/* Idle connections give their record buffers back, as nginx does.
	 * The chain sent is the one configured, as crypto/tls sends it: no
	 * chain built from the store at every handshake (an X509_STORE_CTX
	 * and a verification per connection in the profile). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
	if (!SSL_CTX_set_min_proto_version(ctx, o->min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, o->max_version)) {
		mlk_errq(err, "setting versions", NULL);
		goto fail;
	}
	if (o->ciphers[0] && !SSL_CTX_set_cipher_list(ctx, o->ciphers)) {
		mlk_errq(err, "setting TLS 1.2 ciphers", NULL);
		goto fail;
	}
	/* crypto/tls's TLS 1.3 order on AES hardware, so both backends agree. */
	if (!SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256")) {
		mlk_errq(err, "setting TLS 1.3 ciphersuites", NULL);
		goto fail;
	}
	if (!SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384")) {
		mlk_errq(err, "setting groups", NULL);
		goto fail;
	}
	SSL_CTX_set1_cert_store(ctx, m->store);
	SSL_CTX_set_app_data(ctx, m);
	if (m->is_server) {
		int mode = SSL_VERIFY_NONE;
		unsigned char sid[32];

		/* Stateless tickets only: no server-side cache to grow. With
		 * tickets off, none at all: OpenSSL would still send TLS 1.3
		 * tickets that no cache can resume. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(ctx, o->no_tickets ? 0 : 1);
		SSL_CTX_set_tlsext_servername_callback(ctx, mlk_sni_cb);
		SSL_CTX_set_tlsext_servername_arg(ctx, m);
		if (m->alpn_len > 0)
			SSL_CTX_set_alpn_select_cb(ctx, mlk_alpn_cb, m);
		if (o->own_ticket_keys && !o->no_tickets)
			SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, mlk_ticket_cb);
		if (o->verify == 1)
			mode = SSL_VERIFY_PEER;
		else if (o->verify == 2)
			mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, mode, NULL);
		if (!mlk_sid_ctx(m, mode, sid) || !SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid))) {
			mlk_errq(err, "setting the session ID context", NULL);
			goto fail;
		}
		for (i = 0; i < sk_X509_num(m->cas); i++)
			if (!SSL_CTX_add_client_CA(ctx, sk_X509_value(m->cas, i))) {
				mlk_errq(err, "adding client CA name", NULL);
				goto fail;
			}
	} else {
		SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
		if (!o->no_tickets) {
			SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
			SSL_CTX_sess_set_new_cb(ctx, mlk_new_sess_cb);
		}
		if (m->alpn_len > 0 && SSL_CTX_set_alpn_protos(ctx, m->alpn, (unsigned)m->alpn_len) != 0) {
			mlk_errq(err, "setting ALPN", NULL);
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct mlk_ctx *mlk_ctx_new(const struct mlk_opts *o, char *err)
{
	struct mlk_ctx *m;

	ERR_clear_error();
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, MLK_ERRLEN, "out of memory");
		return NULL;
	}
	m->is_server = o->is_server;
	m->o = *o;
	if (o->ciphers) {
		if (strlen(o->ciphers) >= sizeof(m->ciphers)) {
			snprintf(err, MLK_ERRLEN, "cipher list too long");
			free(m);
			return NULL;
		}
		strcpy(m->ciphers, o->ciphers);
	}
	m->o.ciphers = m->ciphers;
	if (o->alpn_len > (int)sizeof(m->alpn)) {
		snprintf(err, MLK_ERRLEN, "ALPN list too long");
		free(m);
		return NULL;
	}
	if (o->alpn_len > 0)
		memcpy(m->alpn, o->alpn, (size_t)o->alpn_len);
	m->alpn_len = o->alpn_len;
	m->o.alpn = m->alpn;
	m->tk_mu = malloc(sizeof(pthread_mutex_t));
	m->store = X509_STORE_new();
	m->cas = sk_X509_new_null();
	if (!m->tk_mu || !m->store || !m->cas) {
		mlk_errq(err, "allocating context", NULL);
		free(m->tk_mu);
		X509_STORE_free(m->store);
		sk_X509_free(m->cas);
		free(m);
		return NULL;
	}
	pthread_mutex_init(m->tk_mu, NULL);
	/* Every configured CA is a trust anchor, as in crypto/tls's pools:
	 * a chain may end at an intermediate, not only at a self-signed root. */
	X509_STORE_set_flags(m->store, X509_V_FLAG_PARTIAL_CHAIN);
	if (!m->is_server && o->system_roots && !X509_STORE_set_default_paths(m->store)) {
		mlk_errq(err, "loading system roots", NULL);
		mlk_ctx_free(m);
		return NULL;
	}
	return m;
}

int mlk_ctx_add_ca(struct mlk_ctx *m, const unsigned char *der, int len, char *err)
{
	const unsigned char *p = der;
	X509 *x;

	ERR_clear_error();
	x = d2i_X509(NULL, &p, len);
	if (!x) {
		mlk_errq(err, "parsing CA certificate", NULL);
		return -1;
	}
	if (!X509_STORE_add_cert(m->store, x) || !sk_X509_push(m->cas, x)) {
		mlk_errq(err, "adding CA certificate", NULL);
		X509_free(x);
		return -1;
	}
	return 0;
}

int mlk_ctx_add_cert(struct mlk_ctx *m, const unsigned char *chain, const int *lens, int n,
		     const unsigned char *key, int keylen, char *err)
{
	SSL_CTX *ctx;
	const unsigned char *p = chain;
	EVP_PKEY *pk;
	int i;

	ERR_clear_error();
	if (m->nctx >= MLK_MAXCTX) {
		snprintf(err, MLK_ERRLEN, "more than %d certificates", MLK_MAXCTX);
		return -1;
	}
	ctx = mlk_new_child(m, err);
	if (!ctx)
		return -1;
	for (i = 0; i < n; i++) {
		const unsigned char *q = p;
		X509 *x = d2i_X509(NULL, &q, lens[i]);
		if (!x) {
			mlk_errq(err, "parsing certificate", NULL);
			goto fail;
		}
		p += lens[i];
		if (i == 0) {
			int ok = SSL_CTX_use_certificate(ctx, x);
			X509_free(x);
			if (!ok) {
				mlk_errq(err, "using certificate", NULL);
				goto fail;
			}
		} else if (!SSL_CTX_add0_chain_cert(ctx, x)) {
			X509_free(x);
			mlk_errq(err, "adding chain certificate", NULL);
			goto fail;
		}
	}
	p = key;
	pk = d2i_AutoPrivateKey(NULL, &p, keylen);
	if (!pk) {
		mlk_errq(err, "parsing private key", NULL);
		goto fail;
	}
	i = SSL_CTX_use_PrivateKey(ctx, pk);
	EVP_PKEY_free(pk);
	if (!i || !SSL_CTX_check_private_key(ctx)) {
		mlk_errq(err, "using private key", NULL);
		goto fail;
	}
	m->ctx[m->nctx++] = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return -1;
}

int mlk_ctx_finish(struct mlk_ctx *m, char *err)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if (m->nctx > 0)
		return 0;
	if (m->is_server) {
		snprintf(err, MLK_ERRLEN, "a server needs a certificate");
		return -1;
	}
	ctx = mlk_new_child(m, err);
	if (!ctx)
		return -1;
	m->ctx[m->nctx++] = ctx;
	return 0;
}

void mlk_ctx_set_ticket_keys(struct mlk_ctx *m, const struct mlk_tkey *keys, int n)
{
	if (n > MLK_MAXTKEYS)
		n = MLK_MAXTKEYS;
	pthread_mutex_lock(m->tk_mu);
	memcpy(m->tk, keys, (size_t)n * sizeof(*keys));
	if (n < m->tk_n)
		OPENSSL_cleanse(m->tk + n, (size_t)(m->tk_n - n) * sizeof(*keys));
	m->tk_n = n;
	pthread_mutex_unlock(m->tk_mu);
}

void mlk_ctx_free(struct mlk_ctx *m)
{
	int i;

	if (!m)
		return;
	for (i = 0; i < m->nctx; i++)
		SSL_CTX_free(m->ctx[i]);
	X509_STORE_free(m->store);
	sk_X509_pop_free(m->cas, X509_free);
	pthread_mutex_destroy(m->tk_mu);
	free(m->tk_mu);
	OPENSSL_cleanse(m->tk, sizeof(m->tk));
	free(m);
}

/* ---- connections ---- */

struct mlk_conn *mlk_conn_new(struct mlk_ctx *m, const char *host, int host_is_ip,
			      const unsigned char *sess, int sess_len, char *err)
{
	struct mlk_conn *c;

	ERR_clear_error();
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, MLK_ERRLEN, "out of memory");
		return NULL;
	}
	c->m = m;
	c->ssl = SSL_new(m->ctx[0]);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (!c->ssl || !c->rbio || !c->wbio) {
		mlk_errq(err, "SSL_new", NULL);
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		SSL_free(c->ssl);
		free(c);
		return NULL;
	}
	SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns both now */
	SSL_set_app_data(c->ssl, c);
	if (m->is_server) {
		SSL_set_accept_state(c->ssl);
		return c;
	}
	SSL_set_connect_state(c->ssl);
	if (host && *host) {
		int ok = 1;
		if (host_is_ip) {
			if (m->o.verify)
				ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
		} else {
			ok = SSL_set_tlsext_host_name(c->ssl, host);
			if (ok && m->o.verify) {
				/* names from SANs only, as crypto/tls: a certificate
				 * without them does not match by its CN */
				SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
						  X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
				ok = SSL_set1_host(c->ssl, host);
			}
		}
		if (!ok) {
			mlk_errq(err, "setting server name", NULL);
			mlk_conn_free(c);
			return NULL;
		}
	}
	if (sess && sess_len > 0) {
		const unsigned char *p = sess;
		SSL_SESSION *ss = d2i_SSL_SESSION(NULL, &p, sess_len);
		if (ss) {
			if (SSL_SESSION_is_resumable(ss))
				SSL_set_session(c->ssl, ss);
			SSL_SESSION_free(ss);
		}
		ERR_clear_error();
	}
	return c;
}

void mlk_conn_free(struct mlk_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	free(c->sess);
	free(c);
}

static void mlk_pending(struct mlk_conn *c)
{
	c->wpending = BIO_ctrl_pending(c->wbio);
	c->rpending = BIO_ctrl_pending(c->rbio);
	c->plain_pending = SSL_pending(c->ssl);
	c->has_pending = SSL_has_pending(c->ssl) || c->read_end != 0;
}

/*
 * A memory BIO keeps the largest buffer it ever held: one 64 KiB write
 * leaves the connection 87 KiB of C memory, and an idle connection would
 * keep it for the rest of its life. mlk_trim, for a connection going idle,
 * replaces each empty BIO that holds a buffer by a new one (the SSL frees
 * the old), once the handshake is over. A busy connection keeps its
 * buffers: replacing them after every record would cost a malloc, a
 * memset and, for writes of several records, reallocations per write.
 */
static size_t mlk_bio_cap(BIO *b)
{
	BUF_MEM *bm = NULL;

	BIO_get_mem_ptr(b, &bm);
	return bm ? bm->max : 0;
}

void mlk_trim(struct mlk_conn *c)
{
	BIO *b;

	if (!SSL_is_init_finished(c->ssl))
		return;
	if (BIO_ctrl_pending(c->rbio) == 0 && mlk_bio_cap(c->rbio) > 0 &&
	    (b = BIO_new(BIO_s_mem())) != NULL) {
		SSL_set0_rbio(c->ssl, b);
		c->rbio = b;
	}
	if (BIO_ctrl_pending(c->wbio) == 0 && mlk_bio_cap(c->wbio) > 0 &&
	    (b = BIO_new(BIO_s_mem())) != NULL) {
		SSL_set0_wbio(c->ssl, b);
		c->wbio = b;
	}
}

void mlk_bio_caps(struct mlk_conn *c, size_t *r, size_t *w)
{
	*r = mlk_bio_cap(c->rbio);
	*w = mlk_bio_cap(c->wbio);
}

static int mlk_feed(struct mlk_conn *c, const void *in, size_t in_len)
{
	if (in_len == 0)
		return 0;
	if (in_len > INT_MAX || BIO_write(c->rbio, in, (int)in_len) != (int)in_len) {
		mlk_errq(c->err, "buffering ciphertext", NULL);
		return -1;
	}
	return 0;
}

static void mlk_state(struct mlk_conn *c)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;
	const char *sni;
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);

	c->version = SSL_version(c->ssl);
	c->cipher = ci ? SSL_CIPHER_get_protocol_id(ci) : 0;
	c->resumed = SSL_session_reused(c->ssl);
	c->has_peer = SSL_get0_peer_certificate(c->ssl) != NULL;
	SSL_get0_alpn_selected(c->ssl, &p, &n);
	if (n >= sizeof(c->alpn))
		n = 0;
	if (n)
		memcpy(c->alpn, p, n);
	c->alpn_len = (int)n;
	sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	n = sni ? (unsigned)strlen(sni) : 0;
	if (n >= sizeof(c->sni))
		n = 0;
	if (n)
		memcpy(c->sni, sni, n);
	c->sni_len = (int)n;
}

int mlk_handshake(struct mlk_conn *c, const void *in, size_t in_len)
{
	int r, ret;

	ERR_clear_error();
	if (mlk_feed(c, in, in_len) < 0)
		return MLK_ERR;
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		mlk_state(c);
		ret = MLK_DONE;
	} else if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ) {
		ret = MLK_WANT_READ;
	} else {
		mlk_errq(c->err, "handshake", c->ssl);
		ret = MLK_ERR;
	}
	mlk_pending(c);
	return ret;
}

int mlk_read(struct mlk_conn *c, const void *in, size_t in_len, void *out, size_t cap)
{
	int r, ret;

	ERR_clear_error();
	if (c->read_end)
		return c->read_end; /* for MLK_ERR, c->err holds why */
	if (mlk_feed(c, in, in_len) < 0)
		return MLK_ERR;
	if (cap > INT_MAX)
		cap = INT_MAX;
	r = SSL_read(c->ssl, out, (int)cap);
	if (r > 0) {
		/*
		 * One SSL_read yields one record at most: go on while records
		 * are at hand (no read-ahead: what the read BIO holds is the
		 * next records'), so that a reader is given everything
		 * that came (and can tell a short read from a drained conn).
		 * What ends the loop other than WANT_READ (close_notify, an
		 * error) is the next call's result, read_end, which counts
		 * as pending meanwhile.
		 */
		ret = r;
		while ((size_t)ret < cap && BIO_ctrl_pending(c->rbio) > 0 &&
		       (r = SSL_read(c->ssl, (char *)out + ret, (int)(cap - (size_t)ret))) > 0)
			ret += r;
		if (r <= 0) {
			switch (SSL_get_error(c->ssl, r)) {
			case SSL_ERROR_WANT_READ:
				break;
			case SSL_ERROR_ZERO_RETURN:
				c->read_end = MLK_EOF;
				break;
			default:
				mlk_errq(c->err, "read", c->ssl);
				c->read_end = MLK_ERR;
			}
		}
	} else {
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			ret = MLK_WANT_READ;
			break;
		case SSL_ERROR_ZERO_RETURN:
			ret = MLK_EOF;
			break;
		default:
			mlk_errq(c->err, "read", c->ssl);
			ret = MLK_ERR;
		}
	}
	mlk_pending(c);
	return ret;
}

size_t mlk_drain(struct mlk_conn *c, void *out, size_t cap)
{
	int n = 0;

	if (cap > INT_MAX)
		cap = INT_MAX;
	if (BIO_ctrl_pending(c->wbio) > 0 && cap > 0)
		n = BIO_read(c->wbio, out, (int)cap);
	c->wpending = BIO_ctrl_pending(c->wbio);
	return n > 0 ? (size_t)n : 0;
}

int mlk_write(struct mlk_conn *c, const void *p, size_t n, void *out, size_t cap)
{
	int r;

	ERR_clear_error();
	if (n > INT_MAX)
		n = INT_MAX;
	r = SSL_write(c->ssl, p, (int)n);
	if (r <= 0) {
		mlk_errq(c->err, "write", c->ssl);
		mlk_pending(c);
		return MLK_ERR;
	}
	return (int)mlk_drain(c, out, cap);
}

int mlk_shutdown(struct mlk_conn *c)
{
	int r;

	/*
	 * After a fatal error (an alert sent or received) the state machine is
	 * back "in init" and SSL_shutdown fails: there is no close_notify to
	 * send, which is not a failure of Close.
	 */
	if (SSL_in_init(c->ssl))
		return MLK_DONE;
	ERR_clear_error();
	r = SSL_shutdown(c->ssl);
	mlk_pending(c);
	if (r < 0) {
		mlk_errq(c->err, "shutdown", c->ssl);
		return MLK_ERR;
	}
	return MLK_DONE;
}

int mlk_peer_chain(struct mlk_conn *c, unsigned char *buf, int cap, int *lens, int maxn)
{
	X509 *leaf = SSL_get0_peer_certificate(c->ssl);
	STACK_OF(X509) *sk = SSL_get_peer_cert_chain(c->ssl);
	X509 *all[64];
	int n = 0, i, total = 0, off = 0;

	if (!leaf)
		return 0;
	all[n++] = leaf;
	for (i = 0; sk && i < sk_X509_num(sk) && n < 64 && n < maxn; i++) {
		X509 *x = sk_X509_value(sk, i);
		if (X509_cmp(x, leaf) != 0)
			all[n++] = x;
	}
	for (i = 0; i < n; i++) {
		lens[i] = i2d_X509(all[i], NULL);
		if (lens[i] <= 0)
			return 0;
		total += lens[i];
	}
	if (total > cap)
		return -total;
	for (i = 0; i < n; i++) {
		unsigned char *p = buf + off;
		i2d_X509(all[i], &p);
		off += lens[i];
	}
	return n;
}

void mlk_dispatch(struct mlk_call *a)
{
	switch (a->op) {
	case MLK_OP_HANDSHAKE:
		a->ret = mlk_handshake(a->c, a->in, a->in_len);
		break;
	case MLK_OP_READ:
		a->ret = mlk_read(a->c, a->in, a->in_len, a->out, a->cap);
		break;
	case MLK_OP_WRITE:
		a->ret = mlk_write(a->c, a->in, a->in_len, a->out, a->cap);
		break;
	case MLK_OP_DRAIN:
		a->ret = (long long)mlk_drain(a->c, a->out, a->cap);
		break;
	case MLK_OP_SHUTDOWN:
		a->ret = mlk_shutdown(a->c);
		break;
	case MLK_OP_FREE:
		mlk_conn_free(a->c);
		a->ret = 0;
		break;
	case MLK_OP_NEW:
		a->c = mlk_conn_new(a->m, NULL, 0, NULL, 0, a->out);
		a->ret = 0;
		break;
	case MLK_OP_TRIM:
		mlk_trim(a->c);
		a->ret = 0;
		break;
	case MLK_OP_CTX_FREE:
		mlk_ctx_free(a->m);
		a->ret = 0;
		break;
	default:
		a->ret = MLK_ERR;
	}
}
