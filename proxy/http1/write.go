package http1

import "strconv"

// The Append functions build a head into a caller's []byte, to be sent with
// one Write. They do not validate: names, values, methods and targets that
// did not come from this package's parser are checked by the caller
// (ValidFieldName, ValidFieldValue), or a CR or LF in them splits the head.

// AppendRequestLine appends "METHOD target HTTP/1.x\r\n" to dst.
func AppendRequestLine(dst, method, target []byte, v Version) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	dst = append(dst, ' ')
	dst = append(dst, v.String()...)
	return append(dst, "\r\n"...)
}

// AppendStatusLine appends "HTTP/1.x status reason\r\n" to dst; an empty
// reason is replaced by StatusText(status).
func AppendStatusLine(dst []byte, v Version, status int, reason []byte) []byte {
	dst = append(dst, v.String()...)
	dst = append(dst, ' ')
	if 100 <= status && status <= 999 {
		dst = append(dst, byte('0'+status/100), byte('0'+status/10%10), byte('0'+status%10))
	} else {
		dst = strconv.AppendInt(dst, int64(status), 10)
	}
	dst = append(dst, ' ')
	if len(reason) == 0 {
		dst = append(dst, StatusText(status)...)
	} else {
		dst = append(dst, reason...)
	}
	return append(dst, "\r\n"...)
}

// AppendHeader appends "name: value\r\n" to dst. name and value may each be
// a string or a []byte.
func AppendHeader[N, V ~string | ~[]byte](dst []byte, name N, value V) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// AppendContentLength appends "Content-Length: n\r\n" to dst.
func AppendContentLength(dst []byte, n int64) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "\r\n"...)
}

// StatusText returns the reason phrase of the status codes a proxy sends
// itself, and "Status" for others.
func StatusText(status int) string {
	switch status {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 417:
		return "Expectation Failed"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status"
}
