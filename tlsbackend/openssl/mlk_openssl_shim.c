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
 * csrc-sha256: adc1901b40afc24af164e330766f3682b0296ada940e21d04513a2ffbdeee67c
 */
#include "../../csrc/mlk_openssl.c"
