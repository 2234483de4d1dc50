// Package all registers every TLS backend with tlsbackend: gotls always,
// openssl when built with cgo and the openssl tag (otherwise a stub that
// makes tlsbackend.Get("openssl") explain why it is missing).
package all

import (
	_ "github.com/monolake-go/monolake/tlsbackend/gotls"
	_ "github.com/monolake-go/monolake/tlsbackend/openssl"
)
