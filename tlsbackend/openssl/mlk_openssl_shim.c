//go:build openssl && cgo

/*
 * cgo compiles only the C files of the package's own directory; this shim
 * compiles the helpers kept in csrc/ into package tlsbackend/openssl.
 *
 * The Go build cache keys a package on the files in its own directory, so it
 * does not notice an edit to ../../csrc/mlk_openssl.{h,c} or mlk_libc.c.
 * The hash below is of those three files (concatenated in that order);
 * TestCSourcesInSync fails until it is updated, and updating it changes this
 * file, which makes go rebuild the C.
 *
 * csrc-sha256: 1625746d15027d85600dc1f14fe5c3b24546889e0b0c26323fd282cc2531b85c
 */
#include "../../csrc/mlk_openssl.c"
#include "../../csrc/mlk_libc.c"
