package uring

import (
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Params configures New. The zero value is a 256-entry ring with the default
// flags.
type Params struct {
	// Entries is the size of the submission queue, rounded up to a power of
	// two by the kernel. Zero means 256. (Monolake's "entries".)
	Entries uint32

	// CQEntries is the size of the completion queue. Zero means twice
	// Entries, the kernel's default.
	CQEntries uint32

	// SQPollIdle, when positive, turns on SQPOLL: a kernel thread polls the
	// submission queue and sleeps after this much idle time, so Enter needs
	// no syscall to submit while it is awake. Off by default; it costs a
	// kernel thread spinning per ring. (Monolake's "sqpoll_idle".) SQPOLL
	// excludes COOP_TASKRUN, TASKRUN_FLAG and DEFER_TASKRUN.
	SQPollIdle time.Duration

	// SingleIssuer promises that every call on the Ring, from New to Close,
	// comes from one OS thread: the caller has called runtime.LockOSThread
	// in the goroutine that owns the Ring. It lets New add SINGLE_ISSUER and
	// DEFER_TASKRUN (completions are then posted only inside Enter, in
	// batches). Breaking the promise makes Enter fail with EEXIST.
	SingleIssuer bool

	// Flags are extra IORING_SETUP_* flags added to every attempt, for
	// experiments; New still falls back by dropping only its own flags.
	// Only the flags named by the Setup constants are allowed: the batch
	// and the side table assume 64-byte SQEs, 16-byte CQEs and an SQ
	// array (New refuses SQE128, CQE32, NO_SQARRAY and the like with
	// EINVAL).
	Flags SetupFlags

	// MaxCompletions caps the CQEs one Enter returns. Zero means the
	// completion queue size.
	MaxCompletions int
}

// entries is the SQ size asked for: at least 2, so that an operation and
// its linked timeout fit in one submission.
func (p Params) entries() uint32 {
	if p.Entries == 0 {
		return 256
	}
	return max(p.Entries, 2)
}

// knownFlags are the setup flags the binding handles: those it names.
var knownFlags = func() (f SetupFlags) {
	for _, n := range setupFlagNames {
		f |= n.f
	}
	return f
}()

// check refuses Params New cannot honour.
func (p Params) check() error {
	if extra := p.Flags &^ knownFlags; extra != 0 {
		return fmt.Errorf("uring: setup flags %#x are not supported by this binding: %w", uint32(extra), syscall.EINVAL)
	}
	return nil
}

// SetupFlags are IORING_SETUP_* flags.
type SetupFlags uint32

// The setup flags New uses or that callers may add through Params.Flags.
const (
	SetupIOPoll       SetupFlags = 1 << 0
	SetupSQPoll       SetupFlags = 1 << 1
	SetupCQSize       SetupFlags = 1 << 3
	SetupClamp        SetupFlags = 1 << 4
	SetupSubmitAll    SetupFlags = 1 << 7
	SetupCoopTaskrun  SetupFlags = 1 << 8
	SetupTaskrunFlag  SetupFlags = 1 << 9
	SetupSingleIssuer SetupFlags = 1 << 12
	SetupDeferTaskrun SetupFlags = 1 << 13
)

var setupFlagNames = []struct {
	f    SetupFlags
	name string
}{
	{SetupIOPoll, "IOPOLL"},
	{SetupSQPoll, "SQPOLL"},
	{SetupCQSize, "CQSIZE"},
	{SetupClamp, "CLAMP"},
	{SetupSubmitAll, "SUBMIT_ALL"},
	{SetupCoopTaskrun, "COOP_TASKRUN"},
	{SetupTaskrunFlag, "TASKRUN_FLAG"},
	{SetupSingleIssuer, "SINGLE_ISSUER"},
	{SetupDeferTaskrun, "DEFER_TASKRUN"},
}

func (f SetupFlags) String() string {
	var parts []string
	for _, n := range setupFlagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(f)))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// setupCandidates lists the flag sets New tries, best first; it moves to the
// next one when the kernel answers EINVAL.
func setupCandidates(p Params) []SetupFlags {
	var c []SetupFlags
	if p.SQPollIdle > 0 {
		c = []SetupFlags{SetupSQPoll | SetupSubmitAll, SetupSQPoll}
	} else {
		if p.SingleIssuer {
			c = append(c,
				SetupCoopTaskrun|SetupTaskrunFlag|SetupSingleIssuer|SetupDeferTaskrun|SetupSubmitAll,
				SetupCoopTaskrun|SetupTaskrunFlag|SetupSingleIssuer|SetupSubmitAll)
		}
		c = append(c,
			SetupCoopTaskrun|SetupTaskrunFlag|SetupSubmitAll,
			SetupCoopTaskrun|SetupSubmitAll,
			SetupSubmitAll,
			0)
	}
	for i := range c {
		c[i] |= p.Flags
	}
	return c
}

// Features are the IORING_FEAT_* bits the kernel reported at setup.
type Features uint32

// Feature bits.
const (
	FeatSingleMmap     Features = 1 << 0
	FeatNoDrop         Features = 1 << 1
	FeatSubmitStable   Features = 1 << 2
	FeatFastPoll       Features = 1 << 5
	FeatSQPollNonfixed Features = 1 << 7
	FeatExtArg         Features = 1 << 8
	FeatNativeWorkers  Features = 1 << 9
	FeatCQESkip        Features = 1 << 11
	FeatLinkedFile     Features = 1 << 12
)

// Opcode is an IORING_OP_* number, as reported by Probe.
type Opcode uint8

// The opcodes this package issues, and a few neighbours.
const (
	OpNop         Opcode = 0
	OpReadFixed   Opcode = 4
	OpWriteFixed  Opcode = 5
	OpPollAdd     Opcode = 6
	OpTimeout     Opcode = 11
	OpAccept      Opcode = 13
	OpAsyncCancel Opcode = 14
	OpLinkTimeout Opcode = 15
	OpSendmsg     Opcode = 9
	OpConnect     Opcode = 16
	OpClose       Opcode = 19
	OpSend        Opcode = 26
	OpRecv        Opcode = 27
	OpSplice      Opcode = 30
	OpProvideBufs Opcode = 31
	OpShutdown    Opcode = 34
	OpSocket      Opcode = 45
	OpSendZC      Opcode = 47
	OpSendmsgZC   Opcode = 48
)

// ProxyOps are the opcodes the proxy's driver issues.
var ProxyOps = []Opcode{OpNop, OpPollAdd, OpTimeout, OpAccept, OpAsyncCancel, OpLinkTimeout,
	OpConnect, OpClose, OpSend, OpRecv, OpSplice, OpShutdown, OpSendZC}

// ProbeInfo says what the running kernel supports.
type ProbeInfo struct {
	// LastOp is one past the highest opcode the kernel knows.
	LastOp Opcode
	// Flags are the setup flags New settled on for the probing ring.
	Flags SetupFlags
	// Features are the IORING_FEAT_* bits of the probing ring.
	Features Features

	ops [256]bool
}

// Supports reports whether the kernel implements op.
func (p *ProbeInfo) Supports(op Opcode) bool { return p != nil && p.ops[op] }

// Missing returns the opcodes of ops the kernel lacks.
func (p *ProbeInfo) Missing(ops ...Opcode) []Opcode {
	var m []Opcode
	for _, op := range ops {
		if !p.Supports(op) {
			m = append(m, op)
		}
	}
	return m
}

// CQE is one completion as Enter returns it; its layout is the kernel's
// struct io_uring_cqe (16 bytes).
type CQE struct {
	UserData uint64 // the user_data of the operation that produced it
	Res      int32  // result: bytes, a new fd, 0, or -errno
	Flags    uint32 // IORING_CQE_F_* and, with CQEFBuffer, the buffer ID
}

// CQE flag bits.
const (
	CQEFBuffer       uint32 = 1 << 0 // upper 16 bits of Flags are a buffer ID
	CQEFMore         uint32 = 1 << 1 // the operation will post more CQEs
	CQEFSockNonEmpty uint32 = 1 << 2 // the socket has more data to read
	CQEFNotif        uint32 = 1 << 3 // SEND_ZC notification: the buffer is free
)

// More reports whether the operation posts more CQEs after this one: a
// multishot accept or recv still armed, or a SEND_ZC whose notification is
// still to come. A CQE without it is the operation's last.
func (c CQE) More() bool { return c.Flags&CQEFMore != 0 }

// Notif reports whether c is a SEND_ZC notification: the kernel no longer
// references the sent buffer. Its Res is 0.
func (c CQE) Notif() bool { return c.Flags&CQEFNotif != 0 }

// BufID returns the provided buffer the kernel filled, if any.
func (c CQE) BufID() (id uint16, ok bool) {
	return uint16(c.Flags >> 16), c.Flags&CQEFBuffer != 0
}

// Err returns the error of a negative Res as a syscall.Errno, or nil.
func (c CQE) Err() error {
	if c.Res < 0 {
		return syscall.Errno(-c.Res)
	}
	return nil
}

// Stats count the work of a Ring since New.
type Stats struct {
	Enters   uint64 // Enter calls
	Syscalls uint64 // io_uring_enter(2) calls they made (as liburing decides)
	SQEs     uint64 // operations submitted
	CQEs     uint64 // completions returned
	// CRounds counts the Enters without waiting that took the cgo call
	// (a batch with a connect, splice or timeout, a batch larger than the
	// free SQ entries, or SQPOLL); the others made none.
	CRounds uint64
}

// errnoErr turns a -errno returned by C into a syscall.Errno with context.
func errnoErr(what string, ret int) error {
	return fmt.Errorf("uring: %s: %w", what, syscall.Errno(-ret))
}
