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
 * csrc-sha256: e9f42810c6ecd926e65ee87529f42511fb45fca85001d31eb3f1c210ffe471f4
 */
#include "../csrc/mlk_uring.c"
