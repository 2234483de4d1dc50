package http1

import "errors"

// ProtocolError reports a message head that breaks RFC 9112. Status is what
// the caller answers before closing the connection: 400, 431, 501 or 505 for
// a request, 502 for a response from an upstream.
//
// The parser returns shared *ProtocolError values (no allocation on the error
// path); compare with errors.Is against the exported ones or read Status.
type ProtocolError struct {
	Status int
	Reason string
}

func (e *ProtocolError) Error() string { return "http1: " + e.Reason }

func reqErr(reason string) *ProtocolError { return &ProtocolError{Status: 400, Reason: reason} }
func respErr(reason string) *ProtocolError {
	return &ProtocolError{Status: 502, Reason: "upstream response: " + reason}
}

// Request errors with their own identity.
var (
	// ErrHeadTooLarge: the request head exceeds Reader.MaxHeadSize (431).
	ErrHeadTooLarge = &ProtocolError{Status: 431, Reason: "request head too large"}
	// ErrURITooLong: the request line alone exceeds Reader.MaxHeadSize
	// (414).
	ErrURITooLong = &ProtocolError{Status: 414, Reason: "request target too long"}
	// ErrVersionNotSupported: a well-formed version other than 1.0 or 1.1 (505).
	ErrVersionNotSupported = &ProtocolError{Status: 505, Reason: "HTTP version not supported"}
	// ErrUnsupportedTransferCoding: a transfer coding other than chunked (501).
	ErrUnsupportedTransferCoding = &ProtocolError{Status: 501, Reason: "transfer coding not implemented"}
	// ErrSmuggling: both Transfer-Encoding and Content-Length, or
	// Transfer-Encoding in an HTTP/1.0 request (400).
	ErrSmuggling = &ProtocolError{Status: 400, Reason: "ambiguous message framing (Transfer-Encoding with Content-Length or HTTP/1.0)"}
	// ErrTooManyHeaders: more field lines than Reader.MaxHeaders (431).
	ErrTooManyHeaders = &ProtocolError{Status: 431, Reason: "too many header fields"}
	// ErrMissingHost: an HTTP/1.1 request without Host (400).
	ErrMissingHost = &ProtocolError{Status: 400, Reason: "missing Host header"}
)

var (
	errHead             = reqErr("malformed head")
	errBareLF           = reqErr("bare LF in head")
	errRequestLine      = reqErr("malformed request line")
	errMethod           = reqErr("invalid method")
	errTarget           = reqErr("invalid request-target")
	errVersion          = reqErr("malformed HTTP version")
	errFieldName        = reqErr("invalid header field name")
	errFieldValue       = reqErr("invalid header field value")
	errObsFold          = reqErr("obsolete line folding in header")
	errContentLength    = reqErr("invalid Content-Length")
	errMultipleLength   = reqErr("multiple differing Content-Length")
	errChunkedNotFinal  = reqErr("chunked is not the final transfer coding")
	errTransferEncoding = reqErr("invalid Transfer-Encoding")
	errMultipleHost     = reqErr("multiple Host headers")
	errHost             = reqErr("invalid Host header")
	errTargetAuthority  = reqErr("invalid authority in the request-target")

	errRespHead           = respErr("malformed head")
	errRespHeadTooLarge   = respErr("head too large")
	errRespTooManyHeaders = respErr("too many header fields")
	errRespBareLF         = respErr("bare LF in head")
	errRespStatusLine     = respErr("malformed status line")
	errRespVersion        = respErr("unsupported HTTP version")
	errRespFieldName      = respErr("invalid header field name")
	errRespFieldValue     = respErr("invalid header field value")
	errRespObsFold        = respErr("obsolete line folding in header")
	errRespContentLength  = respErr("invalid Content-Length")
	errRespMultipleLength = respErr("multiple differing Content-Length")
	errRespTE             = respErr("unsupported Transfer-Encoding")
	errRespSmuggling      = respErr("Transfer-Encoding with Content-Length or in HTTP/1.0")
)

// Body errors. A body error comes after the head was accepted, possibly after
// the caller started answering, so these are plain sentinels, not statuses.
var (
	// ErrBadChunk: malformed chunked framing (size line, CRLF, trailer).
	ErrBadChunk = errors.New("http1: malformed chunked encoding")
	// ErrChunkLineTooLong: a chunk-size line (with extensions) is longer
	// than 4 KiB.
	ErrChunkLineTooLong = errors.New("http1: chunk-size line too long")
	// ErrTrailersTooLarge: the trailer section exceeds Reader.MaxHeadSize or
	// Reader.MaxHeaders.
	ErrTrailersTooLarge = errors.New("http1: trailer section too large")
	// ErrBodyKind: Copier.Copy was asked for a framing it cannot produce.
	ErrBodyKind = errors.New("http1: cannot re-frame body as requested")
	// ErrBodyTooLarge: a body went past the limit its Body was given
	// (Body.SetLimit).
	ErrBodyTooLarge = errors.New("http1: body larger than the limit")
)

// WriteError wraps an error from the destination writer in Copier.Copy, so
// the caller can tell a failed peer it writes to from one it reads from.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "http1: writing body: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }
