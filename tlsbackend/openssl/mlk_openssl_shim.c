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
 * csrc-sha256: b53f627900c0001c3c4f2be0eed21d569fa9668ae90d82ad3b312393d35e7d6c
 */
#include "../../csrc/mlk_openssl.c"
