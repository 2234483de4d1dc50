package route

import "testing"

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"/a/./b", "/a/b"},
		{"/a/../b", "/b"},
		{"/public/../admin/x", "/admin/x"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/..", "/"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"//a///b", "/a/b"},
		{"/%61dmin/", "/admin/"},
		{"/a/%2e%2e/admin", "/admin"},
		{"/a/%2E%2e/admin", "/admin"},
		{"/a%2fb", "/a%2Fb"},               // an encoded slash is not a separator
		{"/a%2f..%2fb", "/a%2F..%2Fb"},     // nor a dot segment around it
		{"/%7e/x%20y", "/~/x%20y"},         // unreserved decoded, others kept
		{"/a/.b/..c/...", "/a/.b/..c/..."}, // dots inside names are names
		{"/100%", "/100%"},                 // a bad escape stays
		{"a/./b", "/a/b"},                  // not from a slash: given one
	} {
		got, changed, _ := NormalizePath([]byte(tc.in), nil)
		if string(got) != tc.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if changed != (tc.in != tc.want) {
			t.Errorf("NormalizePath(%q): changed %v", tc.in, changed)
		}
	}
	p := []byte("/a/b")
	if got, changed, _ := NormalizePath(p, nil); changed || &got[0] != &p[0] {
		t.Error("a normal path was copied")
	}
}

func BenchmarkNormalizePathClean(b *testing.B) {
	p := []byte("/api/v1/users/12345/profile")
	for b.Loop() {
		NormalizePath(p, nil)
	}
}

// TestNormalizePathAllocs: with room in buf, normalizing allocates nothing.
func TestNormalizePathAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	p := []byte("/a/./b/../c%20d//%7euser/")
	if n := testing.AllocsPerRun(100, func() { NormalizePath(p, buf[:0]) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
	if got, _, _ := NormalizePath(p, buf[:0]); string(got) != "/a/c%20d/~user/" {
		t.Errorf("got %q", got)
	}
}

// TestCheckPath: the paths the proxy refuses before normalizing are those
// whose normalized form would not say where they go.
func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"/a/b", true},
		{"/a%20b/%7euser/%C3%A9", true},
		{"/a/%2e%2e/b", true}, // normalizing resolves it
		{"/100%", false},
		{"/a%2", false},
		{"/%%32%65%%32%65/secret", false}, // would decode to "%2e%2e"
		{"/%zz", false},
		{"/internal%2Fsecret", false},
		{"/a%2fb", false},
		{"/..%5C..%5Cadmin", false},
		{"/public\\..\\admin", false},
		{"/a\\b", false},
	} {
		if err := CheckPath([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("CheckPath(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

// FuzzNormalizePath: a path CheckPath lets through normalizes to a form
// that normalizing again does not change.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%61/%2e%2e/x", "//a//./b/", "/%7E%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath([]byte(p)) != nil {
			return
		}
		once, _, _ := NormalizePath([]byte(p), nil)
		once = append([]byte(nil), once...)
		if twice, _, _ := NormalizePath(once, nil); string(twice) != string(once) {
			t.Fatalf("NormalizePath(%q) = %q, and again %q", p, once, twice)
		}
	})
}
