package httpproxy

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// AccessLog writes one line per request in the common log format, plus the
// duration, from its own goroutine: the request path only queues the line
// and never waits on the disk. When the queue is full, lines are dropped and
// counted rather than slowing requests.
type AccessLog struct {
	w       io.Writer
	closer  io.Closer
	lines   chan []byte
	done    chan struct{}
	dropped atomic.Int64
	close   sync.Once
}

// OpenAccessLog opens path for appending ("-" is stderr).
func OpenAccessLog(path string) (*AccessLog, error) {
	if path == "-" {
		return NewAccessLog(os.Stderr, nil), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("httpproxy: opening access log: %w", err)
	}
	return NewAccessLog(f, f), nil
}

// NewAccessLog writes lines to w; closer (if any) is closed by Close.
func NewAccessLog(w io.Writer, closer io.Closer) *AccessLog {
	l := &AccessLog{w: w, closer: closer, lines: make(chan []byte, 4096), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *AccessLog) run() {
	defer close(l.done)
	for line := range l.lines {
		l.w.Write(line)
	}
}

// Dropped returns how many lines were dropped because the writer lagged.
func (l *AccessLog) Dropped() int64 { return l.dropped.Load() }

// Close flushes the queued lines and closes the file. Only the first call
// does anything. No request may be logged after Close.
func (l *AccessLog) Close() error {
	var err error
	l.close.Do(func() {
		close(l.lines)
		<-l.done
		if l.closer != nil {
			err = l.closer.Close()
		}
	})
	return err
}

// Layer returns the Middleware that logs each request.
func (l *AccessLog) Layer() Middleware {
	return func(inner Service) Service {
		return accessLogService{l: l, inner: inner}
	}
}

type accessLogService struct {
	l     *AccessLog
	inner Service
}

func (s accessLogService) Call(ctx context.Context, req *Request) (*Response, error) {
	start := time.Now()
	resp, err := s.inner.Call(ctx, req)
	status := 0
	size := int64(-1)
	switch {
	case err != nil:
		status = statusOf(err)
	case resp != nil:
		status = resp.Status
		if resp.BodyKind != 0 {
			size = resp.ContentLength
		} else {
			size = 0
		}
	}
	h := req.Head
	b := make([]byte, 0, 160)
	b = append(b, req.Conn.RemoteIP...)
	b = append(b, " - - ["...)
	b = start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = append(b, h.Method...)
	b = append(b, ' ')
	b = append(b, h.Target...)
	b = append(b, ' ')
	b = append(b, h.Version.String()...)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if size >= 0 {
		b = strconv.AppendInt(b, size, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ' ')
	b = strconv.AppendFloat(b, time.Since(start).Seconds(), 'f', 6, 64)
	b = append(b, '\n')
	select {
	case s.l.lines <- b:
	default:
		s.l.dropped.Add(1)
	}
	return resp, err
}
