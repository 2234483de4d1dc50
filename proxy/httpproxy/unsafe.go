package httpproxy

import "unsafe"

// bytesToString views b as a string without copying; the string must not
// outlive b's contents (used only for lookups during a call).
func bytesToString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// stringBytes views s as bytes without copying; the bytes must not be
// written.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
