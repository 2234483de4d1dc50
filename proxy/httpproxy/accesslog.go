package httpproxy

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/monolake-go/monolake/proxy/accesslog"
)

// AccessLog writes one line per request in the common log format, plus the
// duration, through an accesslog.Writer: the request path only queues the
// line. The line is written once the response went out (Request.OnDone),
// as nginx writes its: the size is the body bytes the client was sent
// (Done.BodySent), and the seconds run from the request's arrival in the
// layer to the response's end. Requests the server refused before the
// stack saw them (ServerConfig.Refused) are logged too, with their request
// line as received and "-" for the seconds.
type AccessLog struct{ *accesslog.Writer }

// OpenAccessLog opens path for appending ("-" is stderr).
func OpenAccessLog(path string) (*AccessLog, error) {
	w, err := accesslog.Open(path)
	if err != nil {
		return nil, fmt.Errorf("httpproxy: %w", err)
	}
	return &AccessLog{w}, nil
}

// Layer returns the Middleware that logs each request.
func (l *AccessLog) Layer() Middleware {
	return func(inner Service) Service {
		return accessLogService{l: l, inner: inner}
	}
}

type accessLogService struct {
	l     *AccessLog
	inner Service
}

func (s accessLogService) Call(ctx context.Context, req *Request) (*Response, error) {
	req.OnDone(logDone, s.l)
	return s.inner.Call(ctx, req)
}

// logDone writes req's line; arg is the *AccessLog.
func logDone(arg any, req *Request, d Done) {
	h := req.Head
	b := accesslog.AppendStart(make([]byte, 0, 160), req.Conn.RemoteIP, d.Start)
	b = accesslog.AppendEscaped(b, h.Method)
	b = append(b, ' ')
	b = accesslog.AppendEscaped(b, h.Target)
	b = append(b, ' ')
	b = append(b, h.Version.String()...)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, d.BodySent, 10)
	b = append(b, ' ')
	arg.(*AccessLog).Log(accesslog.AppendEnd(b, d.Start))
}

// Refused writes the line of a request the server refused before the
// stack saw it: a ServerConfig.Refused. The time is the line's; the
// seconds are "-", the request's start being unknown.
func (l *AccessLog) Refused(c *ConnInfo, line []byte, status int, sent int64) {
	b := accesslog.AppendStart(make([]byte, 0, 160), c.RemoteIP, time.Now())
	if len(line) == 0 {
		b = append(b, '-')
	}
	b = accesslog.AppendEscaped(b, line)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sent, 10)
	l.Log(append(b, " -\n"...))
}
