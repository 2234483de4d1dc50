package http1

// The helpers here apply the rules ReadRequest and ReadResponse use to fill
// Request and Response, for heads a caller builds or edits itself.

// KeepAlive reports whether a message of version v with these headers lets
// the connection carry another message: HTTP/1.1 unless Connection lists
// "close"; HTTP/1.0 only if Connection lists "keep-alive" and not "close".
// For a response the caller also closes when the body is close-delimited.
func KeepAlive(v Version, hs Headers) bool {
	var c connFlags
	for i := range hs {
		if equalFold(hs[i].Name, "connection") {
			c.add(hs[i].Value)
		}
	}
	return c.persistent(v)
}

// ExpectsContinue reports whether a request of version v with these headers
// waits for "100 Continue" before sending its body: HTTP/1.1 and
// "Expect: 100-continue" (RFC 9110 10.1.1; ignored in HTTP/1.0).
func ExpectsContinue(v Version, hs Headers) bool {
	if v != HTTP11 {
		return false
	}
	for i := range hs {
		if equalFold(hs[i].Name, "expect") && equalFold(hs[i].Value, "100-continue") {
			return true
		}
	}
	return false
}

// IsUpgrade reports whether a request of version v with these headers asks
// to switch protocols: HTTP/1.1, a non-empty Upgrade field, and "upgrade" in
// Connection (RFC 9110 7.8; ignored in HTTP/1.0).
func IsUpgrade(v Version, hs Headers) bool {
	if v != HTTP11 {
		return false
	}
	return len(hs.Get("upgrade")) > 0 && hs.HasToken("connection", "upgrade")
}
