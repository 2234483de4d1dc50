package accesslog

import (
	"os"
	"path/filepath"
	"testing"
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
