package l4

import (
	"net"
	"strconv"
	"time"

	"github.com/monolake-go/monolake/proxy/accesslog"
)

// Status codes of an access-log line, as nginx's stream module logs them.
const (
	statusOK         = 200 // relayed (an I/O error goes to the error log)
	statusBadHello   = 400 // sni_routes: no ClientHello, or no route for it
	statusNoUpstream = 502 // no upstream could be reached
	statusStopping   = 503 // the server stopped before a relay began
)

// entry is what a connection's access-log line says.
type entry struct {
	start          time.Time
	status         int
	upstream       string // "" before one was connected
	received, sent int64  // bytes from and to the client
}

// line formats e as
//
//	CLIENT - - [TIME] "TCP UPSTREAM" STATUS SENT RECEIVED SECONDS
//
// the HTTP proxy's line with the upstream for the request line and the
// bytes received from the client added, as nginx's stream log has them.
func (e *entry) line(client net.Addr) []byte {
	host := addrString(client)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	b := accesslog.AppendStart(make([]byte, 0, 128), host, e.start)
	b = append(b, "TCP "...)
	if e.upstream == "" {
		b = append(b, '-')
	} else {
		b = append(b, e.upstream...)
	}
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.sent, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.received, 10)
	b = append(b, ' ')
	return accesslog.AppendEnd(b, e.start)
}
