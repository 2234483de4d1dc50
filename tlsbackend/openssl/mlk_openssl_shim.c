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
 * csrc-sha256: 8697bd9e7dd39c73350e98c86a9b56321acf0e584b3f2d59bf63349bd48e20a1
 */
#include "../../csrc/mlk_openssl.c"
