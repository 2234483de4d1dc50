package http1

import "testing"

// validValue's word-at-a-time path agrees with a byte loop at every position.
func TestValidValueWords(t *testing.T) {
	slow := func(b []byte) bool {
		for _, c := range b {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
		return true
	}
	for n := 0; n < 20; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte("abcdefghijklmnopqrstuvwxyz"[:n])
				b[pos] = byte(c)
				if got, want := validValue(b), slow(b); got != want {
					t.Fatalf("validValue(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}
