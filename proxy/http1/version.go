package http1

// Version is an HTTP/1.x protocol version.
type Version uint8

// The versions this package speaks.
const (
	HTTP10 Version = 10
	HTTP11 Version = 11
)

func (v Version) String() string {
	if v == HTTP10 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// parseVersion parses "HTTP/" DIGIT "." DIGIT. syntaxOK reports whether b
// has that form; ok whether its major version is 1. A later 1.x minor
// version is taken as 1.1, the highest this package speaks (RFC 9112,
// section 2.3).
func parseVersion(b []byte) (v Version, syntaxOK, ok bool) {
	if len(b) != 8 || string(b[:5]) != "HTTP/" || b[6] != '.' ||
		!isDigit(b[5]) || !isDigit(b[7]) {
		return 0, false, false
	}
	if b[5] != '1' {
		return 0, true, false
	}
	if b[7] == '0' {
		return HTTP10, true, true
	}
	return HTTP11, true, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
