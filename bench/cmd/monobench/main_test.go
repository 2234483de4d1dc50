package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestVerdict(t *testing.T) {
	tests := []struct {
		name     string
		runErr   error
		failures int
		lacking  int
		allow    bool
		want     int
	}{
		{"all good", nil, 0, 0, false, 0},
		{"a run failed", nil, 2, 0, false, 1},
		{"pure-Go build", nil, 0, 3, false, 1},
		{"pure-Go build allowed", nil, 0, 3, true, 0},
		{"pure-Go build allowed, a run failed", nil, 1, 3, true, 1},
		{"suite error", errors.New("bench: nginx does not start"), 0, 0, true, 1},
		{"interrupted", fmt.Errorf("bench: %w", context.Canceled), 0, 0, false, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := verdict(tt.runErr, tt.failures, tt.lacking, tt.allow)
			if code != tt.want || (code == 0) != (err == nil) {
				t.Errorf("verdict = %d, %v; want %d", code, err, tt.want)
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestReplaceDir checks that latest/ is replaced whole, or not at all: a
// copy that fails midway leaves the old one as it was, and nothing is left
// beside it.
func TestReplaceDir(t *testing.T) {
	root := t.TempDir()
	latest := filepath.Join(root, "latest")
	run1, run2, broken := filepath.Join(root, "run1"), filepath.Join(root, "run2"), filepath.Join(root, "broken")
	writeFiles(t, run1, map[string]string{"table.txt": "one", "charts/a.png": "A", "stale.csv": "old"})
	writeFiles(t, run2, map[string]string{"table.txt": "two", "charts/b.png": "B"})
	writeFiles(t, broken, map[string]string{"table.txt": "three"})
	// A file that cannot be read, as root too: the copy fails after
	// table.txt.
	if err := os.Symlink(filepath.Join(root, "nowhere"), filepath.Join(broken, "z-dangling")); err != nil {
		t.Fatal(err)
	}

	if err := replaceDir(run1, latest); err != nil {
		t.Fatalf("first copy: %v", err)
	}
	if got := readFiles(t, latest); !maps.Equal(got, map[string]string{"table.txt": "one", "charts/a.png": "A", "stale.csv": "old"}) {
		t.Errorf("latest after the first run: %v", got)
	}
	if err := replaceDir(run2, latest); err != nil {
		t.Fatalf("replacing: %v", err)
	}
	if got := readFiles(t, latest); !maps.Equal(got, map[string]string{"table.txt": "two", "charts/b.png": "B"}) {
		t.Errorf("latest after the second run: %v", got)
	}
	if err := replaceDir(broken, latest); err == nil {
		t.Fatal("copying a run with an unreadable file succeeded")
	}
	if got := readFiles(t, latest); !maps.Equal(got, map[string]string{"table.txt": "two", "charts/b.png": "B"}) {
		t.Errorf("latest after a failed copy: %v, want the second run's", got)
	}
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"broken", "latest", "run1", "run2"}; !slices.Equal(names, want) {
		t.Errorf("beside latest: %v, want %v", names, want)
	}
}
