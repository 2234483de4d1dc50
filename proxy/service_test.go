package proxy_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/monolake-go/monolake/proxy"
)

// trace appends a marker on the way in and on the way out, so the order of
// layers is visible in the response.
func trace(name string) proxy.Middleware[string, string] {
	return func(inner proxy.Service[string, string]) proxy.Service[string, string] {
		return proxy.ServiceFunc[string, string](func(ctx context.Context, req string) (string, error) {
			resp, err := inner.Call(ctx, req+">"+name)
			return resp + "<" + name, err
		})
	}
}

func TestStackOrder(t *testing.T) {
	echo := proxy.ServiceFunc[string, string](func(_ context.Context, req string) (string, error) {
		return req + "|", nil
	})
	svc := proxy.Stack[string, string](echo, trace("a"), trace("b"), trace("c"))
	got, err := svc.Call(context.Background(), "req")
	if err != nil {
		t.Fatal(err)
	}
	if want := "req>a>b>c|<c<b<a"; got != want {
		t.Fatalf("onion order: got %q, want %q", got, want)
	}
}

func TestLayerShortCircuit(t *testing.T) {
	called := false
	inner := proxy.ServiceFunc[string, string](func(context.Context, string) (string, error) {
		called = true
		return "inner", nil
	})
	deny := func(inner proxy.Service[string, string]) proxy.Service[string, string] {
		return proxy.ServiceFunc[string, string](func(ctx context.Context, req string) (string, error) {
			if strings.HasPrefix(req, "/admin") {
				return "", errors.New("forbidden")
			}
			return inner.Call(ctx, req)
		})
	}
	svc := proxy.Stack[string, string](inner, deny)
	if _, err := svc.Call(context.Background(), "/admin/x"); err == nil || called {
		t.Fatalf("deny layer let /admin through (err=%v, inner called=%v)", err, called)
	}
	if resp, err := svc.Call(context.Background(), "/ok"); err != nil || resp != "inner" || !called {
		t.Fatalf("deny layer blocked /ok: %q %v", resp, err)
	}
}

// A Layer may change the request type: here it parses a string into an int.
func TestLayerChangesTypes(t *testing.T) {
	var parse proxy.Layer[int, int, string, string] = func(inner proxy.Service[int, int]) proxy.Service[string, string] {
		return proxy.ServiceFunc[string, string](func(ctx context.Context, req string) (string, error) {
			n, err := inner.Call(ctx, len(req))
			return strings.Repeat("x", n), err
		})
	}
	double := proxy.ServiceFunc[int, int](func(_ context.Context, n int) (int, error) { return 2 * n, nil })
	got, _ := parse(double).Call(context.Background(), "abc")
	if got != "xxxxxx" {
		t.Fatalf("got %q", got)
	}
}

// counter is a stateful service: a factory carries its count into the next
// generation, as a pool would carry idle connections.
type counter struct {
	n      *atomic.Int64
	closed atomic.Bool
	gen    int
}

func (c *counter) Call(context.Context, string) (int64, error) { return c.n.Add(1), nil }
func (c *counter) Close() error                                { c.closed.Store(true); return nil }

func TestFactoryCarriesState(t *testing.T) {
	f := proxy.FactoryFunc[string, int64](func(prev proxy.Service[string, int64]) (proxy.Service[string, int64], error) {
		if p, ok := prev.(*counter); ok {
			return &counter{n: p.n, gen: p.gen + 1}, nil
		}
		return &counter{n: new(atomic.Int64)}, nil
	})
	ctx := context.Background()
	s1, err := f.Make(nil)
	if err != nil {
		t.Fatal(err)
	}
	s1.Call(ctx, "")
	s1.Call(ctx, "")
	s2, err := f.Make(s1)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s2.Call(ctx, ""); n != 3 {
		t.Fatalf("state not carried: third call counted %d", n)
	}
	if s2.(*counter).gen != 1 {
		t.Fatalf("generation not advanced")
	}
	if err := proxy.CloseService(s1); err != nil || !s1.(*counter).closed.Load() {
		t.Fatalf("old service not closed")
	}
	if s2.(*counter).closed.Load() {
		t.Fatalf("closing the old service closed the new one")
	}
	if err := proxy.CloseService(proxy.ServiceFunc[string, int64](nil)); err != nil {
		t.Fatalf("CloseService on a non-Closer: %v", err)
	}
}
