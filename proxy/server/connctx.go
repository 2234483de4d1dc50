package server

import (
	"context"
	"sync"
	"time"
)

// connCtx is the context a connection's Call gets: never done until the
// server cancels it (finish, forceClose), with Value(connKey{}) the conn.
//
// It is a context of its own rather than context.WithCancel over
// context.WithValue because services hang callbacks on it for every
// connection (httpproxy's forced-close watch, an OpenSSL handshake's
// cancel): it implements AfterFunc, which context.AfterFunc and the
// children of context.WithCancel use instead of the children map a
// *cancelCtx parent keeps, so such a callback costs a slice entry, not a
// map allocated per connection. It lives inside conn: no allocation of
// its own.
type connCtx struct {
	c    *conn
	mu   sync.Mutex
	done chan struct{} // made on the first Done; closedDone if cancelled first
	err  error
	// hooks run when x is cancelled, drainHooks (AfterDrain) when the
	// server starts to drain (draining).
	hooks, drainHooks []*ctxHook
	draining          bool
}

// ctxHook is a callback registered with AfterFunc; async ones (the
// package's AfterFunc) run on a goroutine of their own.
type ctxHook struct {
	f     func()
	async bool
}

// closedDone is the Done channel of a connCtx cancelled before anyone
// asked for it.
var closedDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

var _ context.Context = (*connCtx)(nil)

func (x *connCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (x *connCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
	}
	return x.done
}

func (x *connCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *connCtx) Value(key any) any {
	if key == (connKey{}) {
		return x.c
	}
	return nil
}

// AfterFunc arranges for f to run once x is cancelled, at once (on its
// own goroutine) if it is already. stop unregisters f and reports whether
// it did; false means f has run or is running, or stop was called before.
// The context package calls it for context.AfterFunc and for the children
// of WithCancel and the like: their f is short (it cancels the child and,
// for AfterFunc, starts the caller's function on a goroutine), so cancel
// runs them itself.
func (x *connCtx) AfterFunc(f func()) (stop func() bool) { return x.afterFunc(f, false) }

func (x *connCtx) afterFunc(f func(), async bool) (stop func() bool) {
	return x.register(false, f, async)
}

// register adds f to the hooks (drain: the drainHooks), or runs it on a
// goroutine of its own at once when that list has been run already.
func (x *connCtx) register(drain bool, f func(), async bool) (stop func() bool) {
	list, fired := &x.hooks, false
	x.mu.Lock()
	if drain {
		list, fired = &x.drainHooks, x.draining || x.c.srv.drainCtx.Err() != nil
	} else {
		fired = x.err != nil
	}
	if fired {
		x.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	h := &ctxHook{f: f, async: async}
	*list = append(*list, h)
	x.mu.Unlock()
	return func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		hs := *list
		for i, o := range hs {
			if o == h {
				last := len(hs) - 1
				hs[i] = hs[last]
				hs[last] = nil
				*list = hs[:last]
				return true
			}
		}
		return false
	}
}

// cancel cancels x (once) and runs the callbacks registered with
// AfterFunc.
func (x *connCtx) cancel() {
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		return
	}
	x.err = context.Canceled
	if x.done == nil {
		x.done = closedDone
	} else {
		close(x.done)
	}
	hooks := x.hooks
	x.hooks = nil
	x.mu.Unlock()
	for _, h := range hooks {
		if h.async {
			go h.f()
		} else {
			h.f()
		}
	}
}

// drain marks the server's drain as begun for x and starts the callbacks
// registered with AfterDrain, each on a goroutine of its own.
func (x *connCtx) drain() {
	x.mu.Lock()
	x.draining = true
	hooks := x.drainHooks
	x.drainHooks = nil
	x.mu.Unlock()
	for _, h := range hooks {
		go h.f()
	}
}

// AfterFunc is context.AfterFunc (f runs on a goroutine of its own once
// ctx is done; stop as there), at the cost of one entry in a slice when
// ctx is the very context the server gave a connection's Call: a service
// that watches every connection's context for the server's forced close
// saves the context package's allocations.
func AfterFunc(ctx context.Context, f func()) (stop func() bool) {
	if x, ok := ctx.(*connCtx); ok {
		return x.afterFunc(f, true)
	}
	return context.AfterFunc(ctx, f)
}

// AfterDrain is context.AfterFunc on Draining(ctx): f runs on a goroutine
// of its own once the server serving ctx's connection starts to drain
// (Shutdown or Close), and stop is as context.AfterFunc's. On the very
// context the server gave a connection's Call it costs one entry in a
// slice of the connection's. ok is false, and nothing is arranged, when
// ctx is not a Server's.
func AfterDrain(ctx context.Context, f func()) (stop func() bool, ok bool) {
	if x, ok := ctx.(*connCtx); ok {
		return x.register(true, f, true), true
	}
	d := Draining(ctx)
	if d == nil {
		return nil, false
	}
	return context.AfterFunc(d, f), true
}

func (x *connCtx) String() string { return "server connection context" }
