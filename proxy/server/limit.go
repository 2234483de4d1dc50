package server

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// ConnLimit caps the connections open at once across the Servers that
// share it (a worker's max_connections, nginx's worker_connections). A
// connection accepted beyond the cap is closed at once, as nginx does when
// it has no free connection, so that a flood costs an accept and a close
// rather than memory and descriptors; the refusals are counted and logged
// at most once a second.
type ConnLimit struct {
	max     int64
	open    atomic.Int64
	refuses atomic.Int64
	logged  atomic.Int64 // unix nanoseconds of the last warning
}

// NewConnLimit returns a limit of max connections; max <= 0 means none
// (nil).
func NewConnLimit(max int) *ConnLimit {
	if max <= 0 {
		return nil
	}
	return &ConnLimit{max: int64(max)}
}

// SetConnLimit makes s count its connections against l (nil: no limit).
// Call it before Serve.
func (s *Server) SetConnLimit(l *ConnLimit) { s.limit = l }

// Open returns the connections counted now.
func (l *ConnLimit) Open() int64 { return l.open.Load() }

// Refused returns how many connections were closed for the limit.
func (l *ConnLimit) Refused() int64 { return l.refuses.Load() }

func (l *ConnLimit) acquire() bool {
	if l == nil {
		return true
	}
	if l.open.Add(1) > l.max {
		l.open.Add(-1)
		return false
	}
	return true
}

func (l *ConnLimit) release() {
	if l != nil {
		l.open.Add(-1)
	}
}

// refused counts a refusal and logs it unless one was logged in the last
// second.
func (l *ConnLimit) refused(log *slog.Logger, addr net.Addr) {
	n := l.refuses.Add(1)
	now := time.Now().UnixNano()
	last := l.logged.Load()
	if now-last < int64(time.Second) || !l.logged.CompareAndSwap(last, now) {
		return
	}
	log.Warn("server: max_connections reached; closing new connections", "listener", addr.String(), "max_connections", l.max, "refused_total", n)
}
