//go:build openssl && cgo

/*
 * cgo compiles only the C files of the package's own directory; this shim
 * compiles the helpers kept in csrc/ into package tlsbackend/openssl.
 *
 * The Go build cache keys a package on the files in its own directory, so it
 * does not notice an edit to ../../csrc/mlk_openssl.{h,c}. The hash below is
 * of those two files (concatenated, .h first); TestCSourcesInSync fails until
 * it is updated, and updating it changes this file, which makes go rebuild
 * the C.
 *
 * csrc-sha256: e72cb296464d2568566c8b3b1ab06ceddc9b9ed4bfd87907a8b76bec2dbde12f
 */
#include "../../csrc/mlk_openssl.c"
