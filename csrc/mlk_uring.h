/*
 * mlk_uring.h: the C half of package uring (see csrc/README.md).
 *
 * liburing's hot path (io_uring_get_sqe, io_uring_prep_*, the CQ ring walk)
 * is static inline, so Go cannot call it directly without one cgo call per
 * operation. mlk_ring_enter takes a whole batch of operation descriptors that
 * Go wrote into C memory, prepares one SQE per descriptor, submits them, waits
 * if asked, and copies the harvested CQEs into a C array Go reads: one cgo
 * call per loop round. Every symbol carries the "mlk_" prefix; every function
 * that can fail returns 0 or -errno.
 */
#ifndef MLK_URING_H
#define MLK_URING_H

#include <stdint.h>
#include <liburing.h>

/* Operation kinds of struct mlk_op.opcode. Keep in step with uring/ops_cgo.go. */
enum {
	MLK_OP_NOP = 0,
	MLK_OP_ACCEPT,       /* fd, flags = accept4 flags */
	MLK_OP_ACCEPT_MULTI, /* fd, flags = accept4 flags */
	MLK_OP_RECV,         /* fd, addr/len = buffer, flags = msg flags */
	MLK_OP_RECV_MULTI,   /* fd, buf_index = buffer group, flags = msg flags */
	MLK_OP_SEND,         /* fd, addr/len = buffer, flags = msg flags */
	MLK_OP_SEND_ZC,      /* fd, addr/len, flags = msg flags; fixed buffer if MLK_F_FIXED */
	MLK_OP_CONNECT,      /* fd, the sockaddr in the parallel mlk_addr slot, len = its size */
	MLK_OP_SPLICE,       /* fd -> fd2, off/off2 (-1: none), len, flags = splice flags */
	MLK_OP_CLOSE,        /* fd */
	MLK_OP_SHUTDOWN,     /* fd, flags = how */
	MLK_OP_CANCEL,       /* addr = target user_data, flags = IORING_ASYNC_CANCEL_* */
	MLK_OP_CANCEL_FD,    /* fd, flags = IORING_ASYNC_CANCEL_* */
	MLK_OP_TIMEOUT,      /* off = nanoseconds, len = completion count, flags = IORING_TIMEOUT_* */
	MLK_OP_LINK_TIMEOUT, /* off = nanoseconds, flags = IORING_TIMEOUT_*; follows a linked op */
	MLK_OP_POLL_ADD,     /* fd, flags = poll mask (POLLIN, POLLOUT, ...); one-shot */
	MLK_OP_SENDMSG,      /* fd, addr = struct msghdr *, flags = msg flags */
	MLK_OP_LAST
};

/* mlk_op.mlk_flags */
#define MLK_F_FIXED 1u /* SEND_ZC: addr/len lie in registered buffer buf_index */

/*
 * One queued operation, written by Go into C memory (64 bytes). Go mirrors
 * this layout through cgo; uring's tests check the size.
 */
struct mlk_op {
	uint64_t user_data;
	uint64_t addr;
	int64_t off;
	int64_t off2;
	uint32_t len;
	int32_t fd;
	int32_t fd2;
	uint32_t flags;
	uint16_t buf_index;
	uint8_t opcode;
	uint8_t sqe_flags;
	uint32_t mlk_flags;
	uint64_t pad;
};

/* A socket address for MLK_OP_CONNECT, parallel to the op array. */
struct mlk_addr {
	unsigned char b[128];
};

/* A harvested completion; same layout as struct io_uring_cqe without CQE32. */
struct mlk_cqe {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

/*
 * Per-SQE-slot memory the kernel reads while preparing a request (timespecs,
 * socket addresses). A slot is reused only after the kernel has consumed the
 * SQE of the same index, and the kernel copies these during prep, so they
 * never need to outlive that.
 */
union mlk_side {
	struct __kernel_timespec ts;
	struct mlk_addr sa;
};

struct mlk_ring {
	struct io_uring ring;
	union mlk_side *side; /* sq.ring_entries slots */

	/* The batch: owned by Go between calls, read by mlk_ring_enter. */
	struct mlk_op *ops;
	struct mlk_addr *addrs;

	/* Harvest array, cqcap entries, filled by mlk_ring_enter. */
	struct mlk_cqe *cqes;
	unsigned cqcap;

	/* Results of the last mlk_ring_enter. */
	unsigned consumed; /* ops turned into SQEs (the rest stay queued) */
	unsigned ncqe;     /* CQEs copied into cqes */
	int evfd;          /* registered eventfd or -1 */

	/* What mlk_ring_prep asks the caller's io_uring_enter(2) to do. */
	unsigned enter_submit;
	unsigned enter_flags;

	/* Counters for the caller's statistics. */
	uint64_t calls;    /* mlk_ring_enter calls */
	uint64_t enters;   /* io_uring_enter(2) calls made (or likely made) by them */
	uint64_t sqes;     /* SQEs prepared */
	uint64_t cqes_seen;
};

int mlk_ring_init(struct mlk_ring *r, unsigned entries, unsigned cq_entries,
		  unsigned flags, unsigned sq_thread_idle_ms, unsigned cqcap);
void mlk_ring_exit(struct mlk_ring *r);
int mlk_ring_enter(struct mlk_ring *r, unsigned nops, unsigned wait_nr,
		   int64_t timeout_ns);
int mlk_ring_prep(struct mlk_ring *r, unsigned nops);
void mlk_ring_harvest(struct mlk_ring *r);
int mlk_ring_register_eventfd(struct mlk_ring *r, int fd);
int mlk_ring_register_buffers(struct mlk_ring *r, const struct iovec *iov,
			      unsigned n);
int mlk_ring_register_buf_ring(struct mlk_ring *r, void *ring_mem,
			       unsigned entries, unsigned bgid);
int mlk_ring_unregister_buf_ring(struct mlk_ring *r, unsigned bgid);
int mlk_probe(struct mlk_ring *r, unsigned char *ops, unsigned n);
void mlk_prep_sqe(struct mlk_ring *r, struct io_uring_sqe *out);
unsigned mlk_ring_flags(struct mlk_ring *r);
unsigned mlk_ring_features(struct mlk_ring *r);
unsigned mlk_ring_sq_entries(struct mlk_ring *r);
unsigned mlk_ring_cq_entries(struct mlk_ring *r);

#endif /* MLK_URING_H */
