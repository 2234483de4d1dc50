// Package proxy is the core of Monolake for Go: the Service, Layer and Factory
// types every part of the proxy is built from.
//
// A Service answers one request. A Layer wraps a Service in another (an onion:
// the outer layer sees the request first and the response last). A Factory
// builds a Service from configuration and may take the Service it replaces, so
// state worth keeping across a reload (connection pools, counters) carries
// over. A built stack never changes; a reload builds a new one and swaps it in.
//
// This package imports only the standard library.
package proxy

import "context"

// Service handles one request and returns its response.
//
// Call may be called from many goroutines at once; a Service that keeps state
// guards it itself. Call honours ctx: when it is done, Call returns promptly
// with ctx.Err() (possibly wrapped).
type Service[Req, Resp any] interface {
	Call(ctx context.Context, req Req) (Resp, error)
}

// ServiceFunc adapts a function to a Service.
type ServiceFunc[Req, Resp any] func(ctx context.Context, req Req) (Resp, error)

// Call calls f(ctx, req).
func (f ServiceFunc[Req, Resp]) Call(ctx context.Context, req Req) (Resp, error) {
	return f(ctx, req)
}

// Layer wraps an inner Service in an outer one. The request and response
// types may change across the layer (a TLS layer turns a raw connection into
// a TLS one, say), so a Layer has four type parameters.
type Layer[InReq, InResp, OutReq, OutResp any] func(inner Service[InReq, InResp]) Service[OutReq, OutResp]

// Middleware is a Layer that keeps the request and response types, the common
// case; a stack of them is applied with Stack.
type Middleware[Req, Resp any] = Layer[Req, Resp, Req, Resp]

// Stack wraps svc in the middlewares, the first one outermost:
// Stack(s, a, b) returns a(b(s)), so a request passes a, then b, then s.
func Stack[Req, Resp any](svc Service[Req, Resp], layers ...Middleware[Req, Resp]) Service[Req, Resp] {
	for i := len(layers) - 1; i >= 0; i-- {
		svc = layers[i](svc)
	}
	return svc
}

// Factory builds a Service. prev is the Service built by the previous
// generation of this factory (nil the first time); an implementation may take
// state from it, such as idle upstream connections, instead of starting cold.
// Make must not change prev: requests in flight still run on it until it is
// closed.
type Factory[Req, Resp any] interface {
	Make(prev Service[Req, Resp]) (Service[Req, Resp], error)
}

// FactoryFunc adapts a function to a Factory.
type FactoryFunc[Req, Resp any] func(prev Service[Req, Resp]) (Service[Req, Resp], error)

// Make calls f(prev).
func (f FactoryFunc[Req, Resp]) Make(prev Service[Req, Resp]) (Service[Req, Resp], error) {
	return f(prev)
}

// Closer is implemented by Services that hold resources (pools, goroutines).
// The owner of a stack closes the old one once its requests in flight finish.
type Closer interface {
	Close() error
}

// CloseService closes svc if it implements Closer and does nothing otherwise.
func CloseService(svc any) error {
	if c, ok := svc.(Closer); ok {
		return c.Close()
	}
	return nil
}
