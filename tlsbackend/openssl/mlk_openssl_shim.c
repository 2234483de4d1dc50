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
 * csrc-sha256: cc6456ca85b889f1e86f92ce4fe368024dd3d50a44312261b8496ea6cf6e0f2b
 */
#include "../../csrc/mlk_openssl.c"
