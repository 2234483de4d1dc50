package uring

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestSetupCandidates(t *testing.T) {
	tests := []struct {
		name  string
		p     Params
		first SetupFlags
		last  SetupFlags
	}{
		{"default", Params{}, SetupCoopTaskrun | SetupTaskrunFlag | SetupSubmitAll, 0},
		{"single-issuer", Params{SingleIssuer: true},
			SetupCoopTaskrun | SetupTaskrunFlag | SetupSingleIssuer | SetupDeferTaskrun | SetupSubmitAll, 0},
		{"sqpoll", Params{SQPollIdle: time.Millisecond, SingleIssuer: true}, SetupSQPoll | SetupSubmitAll, SetupSQPoll},
		{"extra", Params{Flags: SetupClamp}, SetupCoopTaskrun | SetupTaskrunFlag | SetupSubmitAll | SetupClamp, SetupClamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := setupCandidates(tt.p)
			if c[0] != tt.first || c[len(c)-1] != tt.last {
				t.Errorf("candidates %v, want %v first and %v last", c, tt.first, tt.last)
			}
			for _, f := range c {
				if f&SetupDeferTaskrun != 0 && f&SetupSingleIssuer == 0 {
					t.Errorf("%v: DEFER_TASKRUN without SINGLE_ISSUER", f)
				}
				if f&SetupSQPoll != 0 && f&(SetupCoopTaskrun|SetupTaskrunFlag|SetupDeferTaskrun) != 0 {
					t.Errorf("%v: SQPOLL with task-run flags", f)
				}
			}
		})
	}
}

func TestSetupFlagsString(t *testing.T) {
	tests := []struct {
		f    SetupFlags
		want string
	}{
		{0, "0"},
		{SetupSQPoll, "SQPOLL"},
		{SetupCoopTaskrun | SetupTaskrunFlag, "COOP_TASKRUN|TASKRUN_FLAG"},
		{SetupSubmitAll | 1<<20, "SUBMIT_ALL|0x100000"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%#x.String() = %q, want %q", uint32(tt.f), got, tt.want)
		}
	}
}

func TestCQE(t *testing.T) {
	tests := []struct {
		name              string
		c                 CQE
		more, notif, hasB bool
		bid               uint16
		err               error
	}{
		{"plain", CQE{Res: 5}, false, false, false, 0, nil},
		{"multishot-buffer", CQE{Res: 10, Flags: 9<<16 | CQEFBuffer | CQEFMore}, true, false, true, 9, nil},
		{"zc-notif", CQE{Flags: CQEFNotif}, false, true, false, 0, nil},
		{"error", CQE{Res: -int32(syscall.ECANCELED)}, false, false, false, 0, syscall.ECANCELED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bid, ok := tt.c.BufID()
			if tt.c.More() != tt.more || tt.c.Notif() != tt.notif || ok != tt.hasB || (ok && bid != tt.bid) {
				t.Errorf("%+v: More %v Notif %v BufID %d,%v", tt.c, tt.c.More(), tt.c.Notif(), bid, ok)
			}
			if err := tt.c.Err(); !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Err() = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestProbeInfoMissing(t *testing.T) {
	var p ProbeInfo
	p.ops[OpNop] = true
	if m := p.Missing(OpNop, OpSendZC); len(m) != 1 || m[0] != OpSendZC {
		t.Errorf("Missing = %v", m)
	}
	var nilp *ProbeInfo
	if nilp.Supports(OpNop) {
		t.Error("nil ProbeInfo supports something")
	}
}

// TestCSourcesInSync checks that the hash in mlk_uring_shim.c matches
// csrc/mlk_uring.{h,c}, so that an edit there cannot leave a stale C object
// in the build cache (see the shim's comment).
func TestCSourcesInSync(t *testing.T) {
	h := sha256.New()
	for _, name := range []string{"../csrc/mlk_uring.h", "../csrc/mlk_uring.c"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	want := fmt.Sprintf("csrc-sha256: %x", h.Sum(nil))
	shim, err := os.ReadFile("mlk_uring_shim.c")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(shim, []byte(want)) {
		t.Errorf("csrc/mlk_uring.{h,c} changed: set the line in uring/mlk_uring_shim.c to\n * %s", want)
	}
}

// ringAPI is the Ring's exported method set; both builds must satisfy it
// with the same signatures, which this file (built on both sides) checks.
type ringAPI interface {
	Close() error
	Fd() int
	Flags() SetupFlags
	Features() Features
	Stats() Stats
	Pending() int
	Enter(minComplete int, timeout time.Duration) ([]CQE, error)
	RegisterEventfd() (*os.File, error)
	SetEventfdSignals(on bool) bool
	Ready() bool
	RegisterBuffers(bufs [][]byte) error
	Probe() (*ProbeInfo, error)
	NewBufRing(group uint16, entries, size int) (*BufRing, error)

	Nop(ud uint64)
	Accept(ud uint64, fd int, flags int)
	AcceptMultishot(ud uint64, fd int, flags int)
	Recv(ud uint64, fd int, buf []byte, flags int)
	RecvMultishot(ud uint64, fd int, br *BufRing, flags int)
	Send(ud uint64, fd int, buf []byte, flags int)
	Sendmsg(ud uint64, fd int, msg *syscall.Msghdr, flags int)
	SendZC(ud uint64, fd int, buf []byte, flags int)
	SendZCFixed(ud uint64, fd int, buf []byte, index int, flags int)
	Connect(ud uint64, fd int, sa syscall.Sockaddr) error
	Splice(ud uint64, fdIn, fdOut int, n int, flags int)
	CloseFd(ud uint64, fd int)
	Shutdown(ud uint64, fd int, how int)
	Cancel(ud, target uint64, all bool)
	CancelFd(ud uint64, fd int, all bool)
	Timeout(ud uint64, d time.Duration)
	LinkTimeout(ud uint64, d time.Duration)
}

var (
	_ ringAPI                     = (*Ring)(nil)
	_ func(Params) (*Ring, error) = New
	_ func() error                = Check
	_ func() (*ProbeInfo, error)  = Probe
	_ func(int) ([]byte, error)   = Alloc
	_ func([]byte) error          = Free
	_ interface {
		Get(CQE) ([]byte, uint16, bool)
	} = (*BufRing)(nil)
)
