//go:build uring && cgo

/*
 * cgo compiles only the C files of the package's own directory; this shim
 * compiles the helpers kept in csrc/ into package uring.
 *
 * The Go build cache keys a package on the files in its own directory, so it
 * does not notice an edit to ../csrc/mlk_uring.{h,c}. The hash below is of
 * those two files (concatenated, .h first); TestCSourcesInSync fails until it
 * is updated, and updating it changes this file, which makes go rebuild the C.
 *
 * csrc-sha256: 3116f2b9c31ac2a58ebcdba1c0428d61f4fcc0e2d1d5f5e086d0b3aab151649b
 */
#include "../csrc/mlk_uring.c"
