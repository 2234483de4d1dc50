// Package accesslog writes access-log lines from a goroutine of its own:
// a request or connection only queues its line and never waits on the
// disk. When the queue is full, lines are dropped and counted rather than
// slowing the traffic. The HTTP proxy and the L4 proxy format their own
// lines.
package accesslog

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// queueLen is how many lines may wait for the writer.
const queueLen = 4096

// Writer queues lines for w.
type Writer struct {
	w       io.Writer
	closer  io.Closer
	mu      sync.RWMutex // Log holds it shared, Close exclusive
	closed  bool
	lines   chan []byte
	done    chan struct{}
	dropped atomic.Int64
}

// Open opens path for appending ("-" is stderr).
func Open(path string) (*Writer, error) {
	if path == "-" {
		return New(os.Stderr, nil), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening access log: %w", err)
	}
	return New(f, f), nil
}

// New writes lines to w; closer (if any) is closed by Close.
func New(w io.Writer, closer io.Closer) *Writer {
	l := &Writer{w: w, closer: closer, lines: make(chan []byte, queueLen), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *Writer) run() {
	defer close(l.done)
	for line := range l.lines {
		l.w.Write(line)
	}
}

// Log queues line, which must end in a newline and not be changed after.
// A line that does not fit in the queue, or comes after Close (a
// connection that outlived its server's drain), is dropped and counted.
func (l *Writer) Log(line []byte) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.lines <- line:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many lines were dropped.
func (l *Writer) Dropped() int64 { return l.dropped.Load() }

// Close writes the queued lines and closes the file. Only the first call
// does anything.
func (l *Writer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.lines)
	l.mu.Unlock()
	<-l.done
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// AppendStart appends the start of a line in the common log format, the
// client and the time up to the opening quote of the request:
// `CLIENT - - [02/Jan/2006:15:04:05 -0700] "`.
func AppendStart(b []byte, client string, t time.Time) []byte {
	b = append(b, client...)
	b = append(b, " - - ["...)
	b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	return append(b, `] "`...)
}

// AppendEscaped appends s for a quoted field, as nginx escapes it: a
// quote, a backslash, a control byte and any byte from 0x7f as \xHH, so
// the field cannot end early or break the line.
func AppendEscaped(b, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// AppendEnd appends the seconds since start, six decimals, and the
// newline that end a line.
func AppendEnd(b []byte, start time.Time) []byte {
	b = strconv.AppendFloat(b, time.Since(start).Seconds(), 'f', 6, 64)
	return append(b, '\n')
}
