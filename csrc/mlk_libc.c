//go:build ignore

/*
 * mlk_libc.c: two things OpenSSL asks of libc, made cheaper for a proxy.
 *
 * 1. The allocator OpenSSL uses. libssl and libcrypto allocate and free a
 * few hundred blocks per TLS handshake, and with SSL_MODE_RELEASE_BUFFERS a
 * record buffer of some 17 KiB whenever a conn's reads or writes start
 * again after it emptied them. glibc serves blocks above its tcache's 1 KiB
 * from its bins, consolidating and unlinking chunks on the way: about 6 % of
 * the CPU of a proxy doing handshakes.
 *
 * This keeps the blocks OpenSSL frees in per-thread lists by size class (48
 * classes up to 64 KiB) and hands them out again; only a miss calls malloc,
 * for the class's size. Every block is glibc's own, so a block OpenSSL
 * hands to code that frees it with free(3), or one malloc'd elsewhere that
 * reaches OPENSSL_free, is still right. A freed block goes to the class its
 * usable size covers, so it always fits what that class asks. That size is
 * read from the size field of glibc's chunk header, just before the block:
 * malloc_usable_size(3) also reads the next chunk's header to check that the
 * block is in use, a cache miss that cost a third of what the cache saves.
 * At start a few blocks are checked against malloc_usable_size; on a libc
 * whose blocks do not match (not glibc), OpenSSL stays on malloc(3).
 * A thread keeps at most MLK_CLASS_CAP bytes and MLK_CLASS_COUNT blocks per
 * class, and MLK_THREAD_CAP bytes in all; the rest goes back to free(3),
 * and a thread's lists are freed when it exits.
 * MONOLAKE_OPENSSL_MALLOC=libc in the environment leaves OpenSSL on
 * malloc(3), for valgrind, which a cache would blind; so does a build with
 * AddressSanitizer or MemorySanitizer (MLK_SANITIZED), whose redzones and
 * shadow the header read would trip.
 *
 * 2. getpid. OpenSSL 3's random generator checks for a fork before each
 * use by comparing getpid() with the pid it saw last: three system calls a
 * handshake (the server random, the key share, the signature's nonce),
 * which glibc no longer caches. The getpid defined here, which the linker
 * binds libcrypto's calls to in this executable, asks the kernel once and
 * again only in the child of a fork(3) (pthread_atfork). Go's own fork and
 * exec does not run C code between the two.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "mlk_openssl.h"

#define MLK_SMALL 16                    /* classes 16, 32, ..., 256 */
#define MLK_LARGE_MAX (64 * 1024)       /* beyond: malloc and free */
#define MLK_NCLASS MLK_ALLOC_NCLASS      /* 16 small, then 4 per doubling to 64 KiB */
#define MLK_CLASS_CAP (1024 * 1024)
#define MLK_CLASS_COUNT 4096 /* blocks per class: a 16-byte one is a 32-byte chunk */
#define MLK_THREAD_CAP (8 * 1024 * 1024)

struct mlk_cache {
	void *head[MLK_NCLASS];
	uint32_t count[MLK_NCLASS];
	size_t bytes;
	int state; /* 0 new, 1 registered for the exit drain, 2 exiting */
};

static __thread struct mlk_cache mlk_tc __attribute__((tls_model("initial-exec")));
static pthread_key_t mlk_key;
static int mlk_installed;

/* mlk_class_size is the size of class i. */
static size_t mlk_class_size(unsigned i)
{
	unsigned b, k;

	if (i < 16)
		return (size_t)(i + 1) * MLK_SMALL;
	b = 8 + (i - 16) / 4;
	k = (i - 16) % 4 + 1;
	return ((size_t)1 << b) + (size_t)k * ((size_t)1 << (b - 2));
}

static unsigned mlk_log2(size_t n) { return 63 - (unsigned)__builtin_clzl(n); }

/* mlk_floor is the largest class a block of usable size u holds, or
 * MLK_NCLASS when u is a quarter or more past the largest class. */
static unsigned mlk_floor(size_t u)
{
	unsigned b, i;

	if (u < MLK_SMALL)
		return MLK_NCLASS;
	if (u < 256)
		return (unsigned)(u / MLK_SMALL - 1);
	b = mlk_log2(u);
	if (b > 16)
		return MLK_NCLASS;
	i = 16 + (b - 8) * 4 + (unsigned)((u - ((size_t)1 << b)) >> (b - 2)) - 1;
	return i < MLK_NCLASS ? i : MLK_NCLASS;
}

/* mlk_class is the smallest class that holds n bytes (n <= MLK_LARGE_MAX):
 * the one after the largest that n - 1 bytes would hold. */
static unsigned mlk_class(size_t n) { return n <= MLK_SMALL ? 0 : mlk_floor(n - 1) + 1; }

#if defined(__SANITIZE_ADDRESS__)
#define MLK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define MLK_SANITIZED 1
#endif
#endif
#ifndef MLK_SANITIZED
#define MLK_SANITIZED 0
#endif

/* mlk_header is the size field of glibc's chunk header, just before the
 * block: the chunk's size, and flags in the low 3 bits (IS_MMAPPED 0x2). */
static size_t mlk_header(const void *p)
{
	/* Through an integer: the compiler would warn of a read before the
	 * block malloc returned, which is glibc's header. */
	return *(const size_t *)((uintptr_t)p - sizeof(size_t));
}

/* mlk_usable is the usable size of a block from glibc's malloc, or 0 for
 * one it mmapped: the chunk's size less its size field. */
static size_t mlk_usable(const void *p)
{
	size_t h = mlk_header(p);

	if (h & 2)
		return 0;
	return (h & ~(size_t)7) - sizeof(size_t);
}

static void mlk_cache_drain(struct mlk_cache *c)
{
	unsigned i;
	void *p;

	for (i = 0; i < MLK_NCLASS; i++) {
		while ((p = c->head[i]) != NULL) {
			c->head[i] = *(void **)p;
			free(p);
		}
		c->count[i] = 0;
	}
	c->bytes = 0;
}

static void mlk_thread_exit(void *arg)
{
	struct mlk_cache *c = arg;

	c->state = 2;
	mlk_cache_drain(c);
}

static void *mlk_malloc(size_t n, const char *file, int line)
{
	struct mlk_cache *c = &mlk_tc;
	unsigned i;
	void *p;

	(void)file;
	(void)line;
	if (n > MLK_LARGE_MAX)
		return malloc(n);
	i = mlk_class(n);
	p = c->head[i];
	if (p == NULL)
		return malloc(mlk_class_size(i));
	c->head[i] = *(void **)p;
	c->count[i]--;
	c->bytes -= mlk_class_size(i);
	return p;
}

static void mlk_free(void *p, const char *file, int line)
{
	struct mlk_cache *c = &mlk_tc;
	unsigned i;
	size_t sz;

	(void)file;
	(void)line;
	if (p == NULL)
		return;
	i = mlk_floor(mlk_usable(p));
	if (i >= MLK_NCLASS || c->state == 2)
		goto out;
	sz = mlk_class_size(i);
	if (c->count[i] >= MLK_CLASS_COUNT || (size_t)(c->count[i] + 1) * sz > MLK_CLASS_CAP ||
	    c->bytes + sz > MLK_THREAD_CAP)
		goto out;
	if (c->state == 0) {
		if (pthread_setspecific(mlk_key, c) != 0)
			goto out;
		c->state = 1;
	}
	*(void **)p = c->head[i];
	c->head[i] = p;
	c->count[i]++;
	c->bytes += sz;
	return;
out:
	free(p);
}

static void *mlk_realloc(void *p, size_t n, const char *file, int line)
{
	size_t u;
	void *q;

	if (p == NULL)
		return mlk_malloc(n, file, line);
	if (n == 0) {
		mlk_free(p, file, line);
		return NULL;
	}
	u = mlk_usable(p);
	if (u == 0)
		u = malloc_usable_size(p);
	if (n <= u && n >= u / 2)
		return p;
	q = mlk_malloc(n, file, line);
	if (q == NULL)
		return NULL;
	memcpy(q, p, n < u ? n : u);
	mlk_free(p, file, line);
	return q;
}

/* Installed before main, ahead of OpenSSL's first allocation (after it,
 * CRYPTO_set_mem_functions refuses). */
__attribute__((constructor)) static void mlk_alloc_install(void)
{
	static const size_t sizes[] = {1, 24, 100, 1000, 5000, 20000, 70000};
	const char *env = getenv("MONOLAKE_OPENSSL_MALLOC");
	size_t i, u;
	void *p;
	int ok = 1;

	if (MLK_SANITIZED || (env != NULL && strcmp(env, "libc") == 0))
		return;
	/* An mmapped block's chunk has a header of two fields, and goes back
	 * to free(3) anyway; a lowered mmap threshold may make any but the
	 * smallest one. */
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && ok; i++) {
		if ((p = malloc(sizes[i])) == NULL)
			return;
		u = mlk_usable(p);
		if (u == 0)
			ok = i > 0 && (mlk_header(p) & ~(size_t)7) - 2 * sizeof(size_t) == malloc_usable_size(p);
		else
			ok = u == malloc_usable_size(p);
		free(p);
	}
	if (!ok)
		return;
	if (pthread_key_create(&mlk_key, mlk_thread_exit) != 0)
		return;
	mlk_installed = CRYPTO_set_mem_functions(mlk_malloc, mlk_realloc, mlk_free);
}

int mlk_alloc_installed(void) { return mlk_installed; }

int mlk_alloc_sanitized(void) { return MLK_SANITIZED; }

size_t mlk_alloc_cached(unsigned i)
{
	return i < MLK_NCLASS ? (size_t)mlk_tc.count[i] * mlk_class_size(i) : mlk_tc.bytes;
}

size_t mlk_alloc_class_size(unsigned i) { return i < MLK_NCLASS ? mlk_class_size(i) : 0; }

unsigned mlk_alloc_class(size_t n) { return n <= MLK_LARGE_MAX ? mlk_class(n) : MLK_NCLASS; }

unsigned mlk_alloc_floor(size_t u) { return mlk_floor(u); }

size_t mlk_alloc_usable(const void *p) { return mlk_usable(p); }

struct mlk_thread_run {
	size_t n;
	int count;
	void **foreign;
	int nforeign;
	size_t kept;
	int err;
};

static void *mlk_thread_run_body(void *arg)
{
	struct mlk_thread_run *r = arg;
	void **ps = malloc((size_t)r->count * sizeof(void *));
	int i;

	if (ps == NULL) {
		r->err = ENOMEM;
		return NULL;
	}
	for (i = 0; i < r->count; i++)
		ps[i] = CRYPTO_malloc(r->n, NULL, 0);
	for (i = 0; i < r->count; i++)
		CRYPTO_free(ps[i], NULL, 0);
	free(ps);
	for (i = 0; i < r->nforeign; i++)
		CRYPTO_free(r->foreign[i], NULL, 0);
	r->kept = mlk_tc.bytes;
	return NULL;
}

int mlk_alloc_thread_run(size_t n, int count, void **foreign, int nforeign, size_t *kept)
{
	struct mlk_thread_run r = {n, count, foreign, nforeign, 0, 0};
	pthread_t t;
	int err;

	if ((err = pthread_create(&t, NULL, mlk_thread_run_body, &r)) != 0)
		return err;
	if ((err = pthread_join(t, NULL)) != 0)
		return err;
	*kept = r.kept;
	return r.err;
}

size_t mlk_alloc_inuse(void)
{
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
	return mallinfo2().uordblks;
#else
	return (size_t)-1;
#endif
}

/* ---- getpid ---- */

static pid_t mlk_pid;

static void mlk_pid_forget(void) { __atomic_store_n(&mlk_pid, 0, __ATOMIC_RELAXED); }

pid_t getpid(void)
{
	pid_t p = __atomic_load_n(&mlk_pid, __ATOMIC_RELAXED);

	if (p == 0) {
		p = (pid_t)syscall(SYS_getpid);
		__atomic_store_n(&mlk_pid, p, __ATOMIC_RELAXED);
	}
	return p;
}

__attribute__((constructor)) static void mlk_pid_install(void) { pthread_atfork(NULL, NULL, mlk_pid_forget); }

/* mlk_getpid_bound: whether a library calling getpid gets the one above. */
int mlk_getpid_bound(void) { return dlsym(RTLD_DEFAULT, "getpid") == (void *)getpid; }

/* mlk_getpid_fork: forks; the child exits 0 if getpid there is the kernel's
 * pid of the child, else 1. Returns the child's exit status, or -1. */
int mlk_getpid_fork(void)
{
	int st;
	pid_t c;

	(void)getpid(); /* the parent's, cached */
	c = fork();
	if (c < 0)
		return -1;
	if (c == 0)
		_exit(getpid() == (pid_t)syscall(SYS_getpid) && getpid() != getppid() ? 0 : 1);
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}
