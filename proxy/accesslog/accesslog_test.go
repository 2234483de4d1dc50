package accesslog

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// blocked is a writer that waits until released.
type blocked struct{ release chan struct{} }

func (b blocked) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

// TestWriter: lines reach the file in order; a writer that lags drops
// lines instead of blocking Log; a line after Close is dropped, not a
// panic.
func TestWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Log([]byte("one\n"))
	w.Log([]byte("two\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Log([]byte("late\n"))
	if b, _ := os.ReadFile(path); string(b) != "one\ntwo\n" {
		t.Errorf("file holds %q", b)
	}
	if w.Dropped() != 1 || w.Close() != nil {
		t.Errorf("after Close: dropped %d", w.Dropped())
	}

	b := blocked{make(chan struct{})}
	w = New(b, nil)
	for range queueLen + 10 { // one taken by the writer, the queue filled, the rest dropped
		w.Log([]byte("x\n"))
	}
	if d := w.Dropped(); d < 9 || d > 10 {
		t.Errorf("dropped %d of %d lines with a queue of %d", d, queueLen+10, queueLen)
	}
	close(b.release)
	w.Close()

	if _, err := Open(filepath.Join(t.TempDir(), "missing", "a.log")); err == nil {
		t.Error("opened a log in a directory that does not exist")
	}
}

func TestAppendEscaped(t *testing.T) {
	got := string(AppendEscaped(nil, []byte("/a\"b\\c\x01d\x7fé ok")))
	if want := `/a\x22b\x5Cc\x01d\x7F\xC3\xA9 ok`; got != want {
		t.Fatalf("AppendEscaped = %s, want %s", got, want)
	}
}

// TestReopen: after logrotate renames the file (create mode), Reopen (and
// ReopenAll, which a worker runs on SIGUSR1) sends the next lines to a
// new file at the path; they went on to the renamed one.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Log([]byte("before\n"))
	// The line is written before the rename: Reopen waits for the lines
	// queued before it, Log does not.
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := ReopenAll(); err != nil {
		t.Fatal(err)
	}
	l.Log([]byte("after\n"))
	l.Close()
	if err := ReopenAll(); err != nil { // a closed Writer is forgotten
		t.Fatal(err)
	}
	for name, want := range map[string]string{path + ".1": "before\n", path: "after\n"} {
		if b, _ := os.ReadFile(name); string(b) != want {
			t.Errorf("%s holds %q, want %q", filepath.Base(name), b, want)
		}
	}
	// No path, nothing to reopen.
	if err := New(io.Discard, nil).Reopen(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFailuresCounted: lines the file does not take (a full disk) are
// counted as dropped.
func TestWriteFailuresCounted(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := New(f, f)
	for range 10 {
		l.Log([]byte("x\n"))
	}
	l.Close()
	if n := l.Dropped(); n != 10 {
		t.Fatalf("%d lines counted dropped of 10 written to a full disk", n)
	}
}

// TestAppendStartClient: the client field is one field whatever the
// client: "-" without an address (a unix socket's unnamed peer), a
// socket path with a space, a quote or a newline escaped, an IP as it is.
func TestAppendStartClient(t *testing.T) {
	at := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ client, want string }{
		{"", "-"},
		{"127.0.0.1", "127.0.0.1"},
		{"::1", "::1"},
		{"/tmp/a b\n1.2.3.4 - - [", `/tmp/a\x20b\x0A1.2.3.4\x20-\x20-\x20[`},
		{`/run/"x"`, `/run/\x22x\x22`},
	} {
		got := string(AppendStart(nil, tc.client, at))
		if want := tc.want + ` - - [03/Dec/2026:14:00:00 +0000] "`; got != want {
			t.Errorf("AppendStart(%q) = %q, want %q", tc.client, got, want)
		}
		if strings.ContainsAny(got, "\n\r") {
			t.Errorf("AppendStart(%q) holds a line break", tc.client)
		}
	}
}
