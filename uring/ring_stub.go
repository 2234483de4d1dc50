//go:build !(uring && cgo)

package uring

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// Available reports that this build has no io_uring binding: every call
// returns an error wrapping errors.ErrUnsupported.
const Available = false

// ErrClosed is returned by calls on a closed Ring.
var ErrClosed = errors.New("uring: ring closed")

// Ring is the stub of the io_uring ring; New never returns one.
type Ring struct {
	bufs map[uint16]*BufRing
}

// New returns an error wrapping errors.ErrUnsupported.
func New(p Params) (*Ring, error) { return nil, errUnsupported }

// The methods below mirror ring_cgo.go, where they are documented; here
// the ones that can fail return an error wrapping errors.ErrUnsupported and
// the queueing ones do nothing.

func (r *Ring) Close() error       { return errUnsupported }
func (r *Ring) Fd() int            { return -1 }
func (r *Ring) Flags() SetupFlags  { return 0 }
func (r *Ring) Features() Features { return 0 }
func (r *Ring) Stats() Stats       { return Stats{} }
func (r *Ring) Pending() int       { return 0 }
func (r *Ring) Enter(minComplete int, timeout time.Duration) ([]CQE, error) {
	return nil, errUnsupported
}
func (r *Ring) RegisterEventfd() (*os.File, error)  { return nil, errUnsupported }
func (r *Ring) SetEventfdSignals(on bool) bool      { return false }
func (r *Ring) Ready() bool                         { return false }
func (r *Ring) RegisterBuffers(bufs [][]byte) error { return errUnsupported }
func (r *Ring) Probe() (*ProbeInfo, error)          { return nil, errUnsupported }

func (r *Ring) Nop(ud uint64)                                               {}
func (r *Ring) Accept(ud uint64, fd int, flags int)                         {}
func (r *Ring) AcceptMultishot(ud uint64, fd int, flags int)                {}
func (r *Ring) Recv(ud uint64, fd int, buf []byte, flags int)               {}
func (r *Ring) RecvMultishot(ud uint64, fd int, br *BufRing, flags int)     {}
func (r *Ring) Send(ud uint64, fd int, buf []byte, flags int)               {}
func (r *Ring) Sendmsg(ud uint64, fd int, msg *syscall.Msghdr, flags int)   {}
func (r *Ring) SendZC(ud uint64, fd int, buf []byte, flags int)             {}
func (r *Ring) SendZCFixed(ud uint64, fd int, buf []byte, index, flags int) {}
func (r *Ring) Connect(ud uint64, fd int, sa syscall.Sockaddr) error        { return errUnsupported }
func (r *Ring) Splice(ud uint64, fdIn, fdOut int, n int, flags int)         {}
func (r *Ring) CloseFd(ud uint64, fd int)                                   {}
func (r *Ring) Shutdown(ud uint64, fd int, how int)                         {}
func (r *Ring) PollAdd(ud uint64, fd int, events uint32)                    {}
func (r *Ring) Cancel(ud, target uint64, all bool)                          {}
func (r *Ring) CancelFd(ud uint64, fd int, all bool)                        {}
func (r *Ring) Timeout(ud uint64, d time.Duration)                          {}
func (r *Ring) LinkTimeout(ud uint64, d time.Duration)                      {}

func (r *Ring) registerBufRing(mem []byte, entries int, bgid uint16) error { return errUnsupported }
func (r *Ring) unregisterBufRing(bgid uint16) error                        { return errUnsupported }
