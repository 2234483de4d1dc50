// Package uring will be the thin cgo binding to liburing (built with
// `make uring`): ring setup, the feature probe, batched submission of the
// operations a proxy needs (multishot accept and recv with provided buffer
// rings, send and SEND_ZC, connect, splice, close, cancel, timeouts) with one
// cgo call per loop round, and a pure-Go stub with the same API that returns
// an error wrapping errors.ErrUnsupported in builds without it.
//
// It imports nothing of package proxy.
package uring
