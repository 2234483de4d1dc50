package openssl

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"testing"
)

// TestCSourcesInSync checks that the hash in mlk_openssl_shim.c matches
// csrc/mlk_openssl.{h,c} and csrc/mlk_libc.c, so that an edit there cannot
// leave a stale C object in the build cache (see the shim's comment).
func TestCSourcesInSync(t *testing.T) {
	h := sha256.New()
	for _, name := range []string{"../../csrc/mlk_openssl.h", "../../csrc/mlk_openssl.c", "../../csrc/mlk_libc.c"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	want := fmt.Sprintf("csrc-sha256: %x", h.Sum(nil))
	shim, err := os.ReadFile("mlk_openssl_shim.c")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(shim, []byte(want)) {
		t.Errorf("csrc/mlk_openssl.{h,c} or mlk_libc.c changed: set the line in tlsbackend/openssl/mlk_openssl_shim.c to\n * %s", want)
	}
}
