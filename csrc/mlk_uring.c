//go:build ignore

/*
 * mlk_uring.c: batched submission and completion over liburing 2.3.
 * See mlk_uring.h. Compiled into package uring by uring/mlk_uring_shim.c.
 * The build constraint above stops go from treating csrc/ as a package of
 * its own (a C compiler reads that line as a comment). See csrc/README.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mlk_uring.h"

int mlk_ring_init(struct mlk_ring *r, unsigned entries, unsigned cq_entries,
		  unsigned flags, unsigned sq_thread_idle_ms, unsigned cqcap)
{
	struct io_uring_params p;
	int ret;

	memset(r, 0, sizeof(*r));
	r->evfd = -1;
	memset(&p, 0, sizeof(p));
	p.flags = flags;
	if (cq_entries) {
		p.flags |= IORING_SETUP_CQSIZE;
		p.cq_entries = cq_entries;
	}
	if (flags & IORING_SETUP_SQPOLL)
		p.sq_thread_idle = sq_thread_idle_ms;
	ret = io_uring_queue_init_params(entries, &r->ring, &p);
	if (ret < 0)
		return ret;
	r->side = calloc(r->ring.sq.ring_entries, sizeof(*r->side));
	if (cqcap == 0)
		cqcap = r->ring.cq.ring_entries;
	r->cqes = calloc(cqcap, sizeof(*r->cqes));
	if (!r->side || !r->cqes) {
		free(r->side);
		free(r->cqes);
		io_uring_queue_exit(&r->ring);
		memset(r, 0, sizeof(*r));
		return -ENOMEM;
	}
	r->cqcap = cqcap;
	return 0;
}

void mlk_ring_exit(struct mlk_ring *r)
{
	if (r->evfd >= 0)
		io_uring_unregister_eventfd(&r->ring);
	io_uring_queue_exit(&r->ring);
	free(r->side);
	free(r->cqes);
	r->side = NULL;
	r->cqes = NULL;
}

static void mlk_ts(struct __kernel_timespec *ts, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

static void mlk_prep(struct mlk_ring *r, struct io_uring_sqe *sqe,
		     const struct mlk_op *op, const struct mlk_addr *addr)
{
	union mlk_side *side = &r->side[sqe - r->ring.sq.sqes];
	void *buf = (void *)(uintptr_t)op->addr;

	switch (op->opcode) {
	case MLK_OP_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, NULL, NULL, (int)op->flags);
		break;
	case MLK_OP_ACCEPT_MULTI:
		io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL,
					       (int)op->flags);
		break;
	case MLK_OP_RECV:
		io_uring_prep_recv(sqe, op->fd, buf, op->len, (int)op->flags);
		break;
	case MLK_OP_RECV_MULTI:
		io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0,
					     (int)op->flags);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = op->buf_index;
		break;
	case MLK_OP_SEND:
		io_uring_prep_send(sqe, op->fd, buf, op->len, (int)op->flags);
		break;
	case MLK_OP_SENDMSG:
		io_uring_prep_sendmsg(sqe, op->fd, (const struct msghdr *)buf,
				      (unsigned)op->flags);
		break;
	case MLK_OP_SEND_ZC:
		if (op->mlk_flags & MLK_F_FIXED)
			io_uring_prep_send_zc_fixed(sqe, op->fd, buf, op->len,
						    (int)op->flags, 0,
						    op->buf_index);
		else
			io_uring_prep_send_zc(sqe, op->fd, buf, op->len,
					      (int)op->flags, 0);
		break;
	case MLK_OP_CONNECT:
		memcpy(&side->sa, addr, sizeof(side->sa));
		io_uring_prep_connect(sqe, op->fd,
				      (const struct sockaddr *)&side->sa,
				      (socklen_t)op->len);
		break;
	case MLK_OP_SPLICE:
		io_uring_prep_splice(sqe, op->fd, op->off, op->fd2, op->off2,
				     op->len, op->flags);
		break;
	case MLK_OP_CLOSE:
		io_uring_prep_close(sqe, op->fd);
		break;
	case MLK_OP_SHUTDOWN:
		io_uring_prep_shutdown(sqe, op->fd, (int)op->flags);
		break;
	case MLK_OP_CANCEL:
		io_uring_prep_cancel64(sqe, op->addr, (int)op->flags);
		break;
	case MLK_OP_CANCEL_FD:
		io_uring_prep_cancel_fd(sqe, op->fd, op->flags);
		break;
	case MLK_OP_TIMEOUT:
		mlk_ts(&side->ts, op->off);
		io_uring_prep_timeout(sqe, &side->ts, op->len, op->flags);
		break;
	case MLK_OP_LINK_TIMEOUT:
		mlk_ts(&side->ts, op->off);
		io_uring_prep_link_timeout(sqe, &side->ts, op->flags);
		break;
	case MLK_OP_POLL_ADD:
		io_uring_prep_poll_add(sqe, op->fd, op->flags);
		break;
	default: /* MLK_OP_NOP and anything unknown (Go never queues those) */
		io_uring_prep_nop(sqe);
		break;
	}
	sqe->flags |= op->sqe_flags;
	io_uring_sqe_set_data64(sqe, op->user_data);
}

/*
 * For tests: the SQE mlk_prep writes for ops[0], built in SQE slot 0 of a
 * ring that has not submitted anything yet, copied to out.
 */
void mlk_prep_sqe(struct mlk_ring *r, struct io_uring_sqe *out)
{
	struct io_uring_sqe *sqe = &r->ring.sq.sqes[0];

	memset(sqe, 0, sizeof(*sqe));
	mlk_prep(r, sqe, &r->ops[0], &r->addrs[0]);
	*out = *sqe;
	memset(sqe, 0, sizeof(*sqe));
}

/* Copy ready CQEs into r->cqes after the r->ncqe already there. */
static void mlk_harvest(struct mlk_ring *r)
{
	struct io_uring *ring = &r->ring;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, n = r->ncqe;

	io_uring_for_each_cqe(ring, head, cqe) {
		if (n == r->cqcap)
			break;
		seen++;
		/* liburing's internal timeout on kernels without EXT_ARG */
		if (cqe->user_data == LIBURING_UDATA_TIMEOUT)
			continue;
		r->cqes[n].user_data = cqe->user_data;
		r->cqes[n].res = cqe->res;
		r->cqes[n].flags = cqe->flags;
		n++;
	}
	io_uring_cq_advance(ring, seen);
	r->cqes_seen += n - r->ncqe;
	r->ncqe = n;
}

static int mlk_cq_needs_flush(struct mlk_ring *r)
{
	return IO_URING_READ_ONCE(*r->ring.sq.kflags) &
	       (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN);
}

/* Would io_uring_submit enter the kernel? Only for the statistics. */
static int mlk_submit_enters(struct mlk_ring *r)
{
	struct io_uring *ring = &r->ring;

	if (mlk_cq_needs_flush(r))
		return 1;
	if (ring->sq.sqe_tail == *ring->sq.ktail &&
	    io_uring_sq_ready(ring) == 0)
		return 0;
	if (!(ring->flags & IORING_SETUP_SQPOLL))
		return 1;
	return (IO_URING_READ_ONCE(*ring->sq.kflags) &
		IORING_SQ_NEED_WAKEUP) != 0;
}

/*
 * Submit what the SQ ring holds so that need entries are free. Without
 * SQPOLL one submit consumes everything; with it, wait for the poller
 * thread (IORING_ENTER_SQ_WAIT), which may take a few rounds.
 */
static int mlk_make_room(struct mlk_ring *r, unsigned need)
{
	struct io_uring *ring = &r->ring;
	int ret, tries;

	for (tries = 0; tries < 1000; tries++) {
		r->enters += mlk_submit_enters(r);
		ret = io_uring_submit(ring);
		if (ret < 0 && ret != -EINTR)
			return ret;
		if (io_uring_sq_space_left(ring) >= need)
			return 0;
		if (!(ring->flags & IORING_SETUP_SQPOLL))
			return -EBUSY;
		r->enters++;
		ret = io_uring_sqring_wait(ring);
		if (ret < 0 && ret != -EINTR)
			return ret;
		if (io_uring_sq_space_left(ring) >= need)
			return 0;
	}
	return -EBUSY;
}

/*
 * Turn ops[0:nops] into SQEs (submitting early only when the SQ ring is
 * full). Sets r->consumed; returns 0 or a negative errno.
 */
static int mlk_prep_batch(struct mlk_ring *r, unsigned nops)
{
	struct io_uring *ring = &r->ring;
	unsigned i = 0;
	int ret = 0;

	while (i < nops) {
		const struct mlk_op *op = &r->ops[i];
		/* a linked op and its link timeout go into one submission */
		unsigned need = (op->sqe_flags & IOSQE_IO_LINK) ? 2 : 1;
		struct io_uring_sqe *sqe;

		if (io_uring_sq_space_left(ring) < need) {
			ret = mlk_make_room(r, need);
			if (ret < 0)
				break;
			/* make room in the CQ ring for what comes next */
			mlk_harvest(r);
		}
		sqe = io_uring_get_sqe(ring);
		mlk_prep(r, sqe, op, &r->addrs[i]);
		i++;
		if (need == 2 && i < nops) {
			sqe = io_uring_get_sqe(ring);
			mlk_prep(r, sqe, &r->ops[i], &r->addrs[i]);
			i++;
		}
	}
	r->sqes += i;
	r->consumed = i;
	return ret;
}

int mlk_ring_enter(struct mlk_ring *r, unsigned nops, unsigned wait_nr,
		   int64_t timeout_ns)
{
	struct io_uring *ring = &r->ring;
	int ret;

	r->calls++;
	r->ncqe = 0;
	ret = mlk_prep_batch(r, nops);
	if (ret < 0)
		goto out;

	if (wait_nr > r->ncqe) {
		unsigned want = wait_nr - r->ncqe;

		r->enters++;
		if (timeout_ns > 0) {
			struct __kernel_timespec ts;
			struct io_uring_cqe *cqe;

			mlk_ts(&ts, timeout_ns);
			ret = io_uring_submit_and_wait_timeout(ring, &cqe, want,
							       &ts, NULL);
		} else {
			ret = io_uring_submit_and_wait(ring, want);
		}
	} else {
		r->enters += mlk_submit_enters(r);
		ret = io_uring_submit(ring);
	}
	/* a timeout or a signal ends the wait; the caller sees what arrived */
	if (ret == -ETIME || ret == -EINTR || ret > 0)
		ret = 0;
out:
	mlk_harvest(r);
	if (r->ncqe == 0 && mlk_cq_needs_flush(r)) {
		r->enters++;
		io_uring_get_events(ring);
		mlk_harvest(r);
	}
	return ret;
}

/*
 * The first half of a round that does not wait: prepare the batch, publish
 * the new SQEs to the kernel (the SQ tail), harvest the CQEs already posted,
 * and work out whether io_uring_enter(2) is needed and with what. liburing
 * 2.3 has no public call that publishes without entering, so this does what
 * io_uring(7) describes: advance the SQ tail with a release store; with
 * SQPOLL, enter only to wake a sleeping poller thread.
 *
 * Returns 1 when the caller must enter with r->enter_submit and
 * r->enter_flags, 0 when not, or a negative errno from preparing.
 */
int mlk_ring_prep(struct mlk_ring *r, unsigned nops)
{
	struct io_uring *ring = &r->ring;
	struct io_uring_sq *sq = &ring->sq;
	unsigned tail, submit, flags = 0;
	int ret;

	r->calls++;
	r->ncqe = 0;
	ret = mlk_prep_batch(r, nops);
	tail = sq->sqe_tail;
	if (sq->sqe_head != tail) {
		sq->sqe_head = tail;
		io_uring_smp_store_release(sq->ktail, tail);
	}
	submit = tail - io_uring_smp_load_acquire(sq->khead);
	mlk_harvest(r);
	if (ret < 0)
		return ret;

	if (ring->flags & IORING_SETUP_SQPOLL) {
		/* the poller takes the SQEs; wake it if it sleeps */
		io_uring_smp_mb();
		if (IO_URING_READ_ONCE(*sq->kflags) & IORING_SQ_NEED_WAKEUP)
			flags |= IORING_ENTER_SQ_WAKEUP;
		submit = 0;
	}
	if (mlk_cq_needs_flush(r))
		flags |= IORING_ENTER_GETEVENTS;
	r->enter_submit = submit;
	r->enter_flags = flags;
	if (submit == 0 && flags == 0)
		return 0;
	r->enters++;
	return 1;
}

/* The second half, after the caller's io_uring_enter(2): harvest. */
void mlk_ring_harvest(struct mlk_ring *r)
{
	mlk_harvest(r);
}

int mlk_ring_register_eventfd(struct mlk_ring *r, int fd)
{
	int ret;

	if (r->evfd >= 0) {
		io_uring_unregister_eventfd(&r->ring);
		r->evfd = -1;
	}
	ret = io_uring_register_eventfd(&r->ring, fd);
	if (ret < 0)
		return ret;
	r->evfd = fd;
	return 0;
}

int mlk_ring_register_buffers(struct mlk_ring *r, const struct iovec *iov,
			      unsigned n)
{
	return io_uring_register_buffers(&r->ring, iov, n);
}

int mlk_ring_register_buf_ring(struct mlk_ring *r, void *ring_mem,
			       unsigned entries, unsigned bgid)
{
	struct io_uring_buf_reg reg;

	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)ring_mem;
	reg.ring_entries = entries;
	reg.bgid = (uint16_t)bgid;
	return io_uring_register_buf_ring(&r->ring, &reg, 0);
}

int mlk_ring_unregister_buf_ring(struct mlk_ring *r, unsigned bgid)
{
	return io_uring_unregister_buf_ring(&r->ring, (int)bgid);
}

/* Fills ops[i] = 1 for each supported opcode i < n; returns last_op + 1. */
int mlk_probe(struct mlk_ring *r, unsigned char *ops, unsigned n)
{
	struct io_uring_probe *p;
	unsigned i;
	int last;

	p = io_uring_get_probe_ring(&r->ring);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		ops[i] = (unsigned char)io_uring_opcode_supported(p, (int)i);
	last = p->last_op;
	io_uring_free_probe(p);
	return last + 1;
}

unsigned mlk_ring_flags(struct mlk_ring *r) { return r->ring.flags; }
unsigned mlk_ring_features(struct mlk_ring *r) { return r->ring.features; }
unsigned mlk_ring_sq_entries(struct mlk_ring *r) { return r->ring.sq.ring_entries; }
unsigned mlk_ring_cq_entries(struct mlk_ring *r) { return r->ring.cq.ring_entries; }
