// Package accesslog writes access-log lines from a goroutine of its own:
// a request or connection only queues its line and never waits on the
// disk. When the queue is full, lines are dropped and counted rather than
// slowing the traffic. The HTTP proxy and the L4 proxy format their own
// lines.
package accesslog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	path    string       // the file Reopen opens again; "" for none
	mu      sync.RWMutex // Log holds it shared, Close exclusive
	closed  bool
	lines   chan []byte
	reopen  chan chan error
	done    chan struct{}
	dropped atomic.Int64

	// Only the writer goroutine uses these (and Close, once it ended).
	w      io.Writer
	closer io.Closer
}

// Open opens path for appending ("-" is stderr). The file is opened again
// by Reopen, and by ReopenAll, as logrotate's create mode wants.
func Open(path string) (*Writer, error) {
	if path == "-" {
		return New(os.Stderr, nil), nil
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	l := newWriter(f, f, path)
	files.Lock()
	files.m[l] = struct{}{}
	files.Unlock()
	return l, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening access log: %w", err)
	}
	return f, nil
}

// New writes lines to w; closer (if any) is closed by Close.
func New(w io.Writer, closer io.Closer) *Writer { return newWriter(w, closer, "") }

func newWriter(w io.Writer, closer io.Closer, path string) *Writer {
	l := &Writer{w: w, closer: closer, path: path, lines: make(chan []byte, queueLen),
		reopen: make(chan chan error), done: make(chan struct{})}
	go l.run()
	return l
}

// files are the Writers of files open, for ReopenAll.
var files = struct {
	sync.Mutex
	m map[*Writer]struct{}
}{m: map[*Writer]struct{}{}}

func (l *Writer) run() {
	defer close(l.done)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				return
			}
			if _, err := l.w.Write(line); err != nil {
				l.dropped.Add(1) // a full disk, an I/O error: lost
			}
		case reply := <-l.reopen:
			reply <- l.reopenFile()
		}
	}
}

// reopenFile opens the path again and swaps the file, in run.
func (l *Writer) reopenFile() error {
	f, err := openFile(l.path)
	if err != nil {
		return err // the old file goes on taking the lines
	}
	if l.closer != nil {
		l.closer.Close()
	}
	l.w, l.closer = f, f
	return nil
}

// Reopen opens the log's file again, by its path: after logrotate renamed
// it (create mode), lines go to the new file, not the renamed one (nor,
// once that is deleted, to a file no path reaches). Lines queued before
// go to the old file. A Writer without a path (stderr, New) does nothing;
// so does one closed. On an error the old file is kept.
func (l *Writer) Reopen() error {
	if l.path == "" {
		return nil
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil
	}
	reply := make(chan error, 1)
	l.reopen <- reply
	return <-reply
}

// ReopenAll reopens every access-log file open in this process (a worker
// does on SIGUSR1, as nginx does).
func ReopenAll() error {
	files.Lock()
	ls := make([]*Writer, 0, len(files.m))
	for l := range files.m {
		ls = append(ls, l)
	}
	files.Unlock()
	var errs []error
	for _, l := range ls {
		if err := l.Reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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

// Dropped returns how many lines were dropped: not queued (the writer
// lagged, or the Writer was closed) or not written (a full disk, an I/O
// error).
func (l *Writer) Dropped() int64 { return l.dropped.Load() }

// CloseWarning is Close, then a warning on log with args when lines were
// dropped (what a server says as it closes its log).
func (l *Writer) CloseWarning(log *slog.Logger, msg string, args ...any) error {
	err := l.Close()
	if n := l.Dropped(); n > 0 {
		log.Warn(msg, append(args, "dropped", n)...)
	}
	return err
}

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
	files.Lock()
	delete(files.m, l)
	files.Unlock()
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// AppendStart appends the start of a line in the common log format, the
// client and the time up to the opening quote of the request:
// `CLIENT - - [02/Jan/2006:15:04:05 -0700] "`. A client without an
// address (a unix socket's unnamed peer) is "-"; a named one's path has
// spaces escaped too, as AppendEscaped escapes, so it stays one field.
func AppendStart(b []byte, client string, t time.Time) []byte {
	if client == "" {
		b = append(b, '-')
	}
	b = appendEscaped(b, client, true)
	b = append(b, " - - ["...)
	b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	return append(b, `] "`...)
}

// AppendEscaped appends s for a quoted field, as nginx escapes it: a
// quote, a backslash, a control byte and any byte from 0x7f as \xHH, so
// the field cannot end early or break the line.
func AppendEscaped(b, s []byte) []byte { return appendEscaped(b, s, false) }

// appendEscaped is AppendEscaped, escaping spaces too when space is set
// (for an unquoted field).
func appendEscaped[S string | []byte](b []byte, s S, space bool) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f || space && c == ' ' {
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
