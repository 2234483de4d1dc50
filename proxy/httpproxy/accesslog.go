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
// line.
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
	start := time.Now()
	resp, err := s.inner.Call(ctx, req)
	status := 0
	size := int64(-1)
	switch {
	case err != nil:
		status = statusOf(err)
	case resp != nil:
		status = resp.Status
		if resp.BodyKind != 0 {
			size = resp.ContentLength
		} else {
			size = 0
		}
	}
	h := req.Head
	b := accesslog.AppendStart(make([]byte, 0, 160), req.Conn.RemoteIP, start)
	b = accesslog.AppendEscaped(b, h.Method)
	b = append(b, ' ')
	b = accesslog.AppendEscaped(b, h.Target)
	b = append(b, ' ')
	b = append(b, h.Version.String()...)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if size >= 0 {
		b = strconv.AppendInt(b, size, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ' ')
	s.l.Log(accesslog.AppendEnd(b, start))
	return resp, err
}
