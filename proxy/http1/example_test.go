package http1_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/monolake-go/monolake/proxy/http1"
)

// One connection's request loop, as a proxy runs it: parse a head, rewrite
// it into a reused buffer, send it with one Write, stream the body after it,
// and stop when the client (or an error) ends keep-alive.
func Example() {
	client := strings.NewReader("POST /a HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n" +
		"GET /b HTTP/1.0\r\nUser-Agent: old\r\n\r\n")
	var upstream bytes.Buffer

	// Per-connection state, reused for every request: no allocation per request.
	r := http1.NewReader(client)
	var (
		req  http1.Request
		body http1.Body
		cp   http1.Copier
		head []byte
	)
	for {
		err := r.ReadRequest(&req)
		var pe *http1.ProtocolError
		switch {
		case err == io.EOF:
			fmt.Printf("%q", upstream.String())
			return
		case errors.As(err, &pe):
			fmt.Println("answer", pe.Status, "and close")
			return
		case err != nil:
			fmt.Println("close:", err)
			return
		}
		head = http1.AppendRequestLine(head[:0], req.Method, req.Target, http1.HTTP11)
		head = req.Headers.AppendEndToEnd(head)
		head = http1.AppendHeader(head, "X-Forwarded-For", "192.0.2.7")
		if req.BodyKind == http1.BodyChunked {
			head = http1.AppendHeader(head, "Transfer-Encoding", "chunked")
		}
		if req.Host == nil {
			head = http1.AppendHeader(head, "Host", "upstream.internal")
		}
		head = append(head, "\r\n"...)
		upstream.Write(head)
		body.Reset(r, req.BodyKind, req.ContentLength)
		if _, err := cp.Copy(&upstream, &body, req.BodyKind); err != nil {
			fmt.Println("body:", err)
			return
		}
		if !req.KeepAlive {
			fmt.Printf("%q", upstream.String())
			return
		}
	}
	// Output:
	// "POST /a HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 192.0.2.7\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\nGET /b HTTP/1.1\r\nUser-Agent: old\r\nX-Forwarded-For: 192.0.2.7\r\nHost: upstream.internal\r\n\r\n"
}
