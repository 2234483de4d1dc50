package server

import (
	"cmp"
	"sync"
	"time"
)

// Connections are served by pooled goroutines: a goroutine that finished a
// connection waits for the next one instead of ending. A new goroutine
// starts with a small stack and grows it (copying it each time) down the
// service chain of its first request, a TLS handshake deeper still; a
// pooled goroutine keeps the stack it grew. Where connections are short
// that is measurable: 2.2 % more TLS handshakes (a request each) and 1.9 %
// more Connection: close requests per CPU-second on the io_uring runtime
// (scripts/abtest.sh -k).
//
// The pool is a stack (the goroutine idle for the shortest time, whose
// stack is likeliest in cache, goes first) of at most maxIdleWorkers;
// a goroutine idle for idleWorkerTimeout ends, so that a burst of
// connections leaves no goroutines (and their stacks) behind for long.
const (
	maxIdleWorkers    = 256
	idleWorkerTimeout = 10 * time.Second
)

// worker is a pooled goroutine, waiting on next while idle. A nil conn
// ends it.
type worker struct {
	next  chan *conn
	since time.Time // idle since
}

// workers is a Server's pool.
type workers struct {
	serve func(*conn) // what a worker runs for each connection
	// The limits, when not the defaults above (the tests').
	max     int
	timeout time.Duration

	mu      sync.Mutex
	idle    []*worker   // oldest first
	stopped bool        // no more pooling: the server is stopping
	reaper  *time.Timer // set while a worker is idle (it may fire to find none)
}

// run serves c on an idle worker, or on a new one.
func (p *workers) run(c *conn) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.next <- c // buffered: never blocks
		return
	}
	p.mu.Unlock()
	go p.work(&worker{next: make(chan *conn, 1)}, c)
}

func (p *workers) work(w *worker, c *conn) {
	for c != nil {
		p.serve(c)
		// A connection its protocol detached (an idle HTTP keep-alive
		// parked to wait without a goroutine) lets its goroutine end,
		// and the stack it grew with it, as the parking means to; the
		// pool is for goroutines whose connection ended.
		if c.detached.Load() || !p.park(w) {
			return
		}
		c = <-w.next
	}
}

// park puts w in the pool; false means w should end.
func (p *workers) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || len(p.idle) >= cmp.Or(p.max, maxIdleWorkers) {
		return false
	}
	w.since = time.Now()
	p.idle = append(p.idle, w)
	// w is the oldest idle worker when it is the only one: the reaper is
	// due when w's time is up.
	if len(p.idle) == 1 {
		if p.reaper == nil {
			p.reaper = time.AfterFunc(p.idleTimeout(), p.reap)
		} else {
			p.reaper.Reset(p.idleTimeout())
		}
	}
	return true
}

// reap ends the workers idle for idleWorkerTimeout, and sets itself again
// for the others.
func (p *workers) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now, timeout := time.Now(), p.idleTimeout()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].since) >= timeout {
		p.idle[n].next <- nil
		n++
	}
	p.idle = append(p.idle[:0], p.idle[n:]...)
	clear(p.idle[len(p.idle) : len(p.idle)+n])
	if len(p.idle) > 0 {
		p.reaper.Reset(timeout - now.Sub(p.idle[0].since))
	}
}

func (p *workers) idleTimeout() time.Duration { return cmp.Or(p.timeout, idleWorkerTimeout) }

// stop ends the idle workers, and the others as they finish.
func (p *workers) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for i, w := range p.idle {
		w.next <- nil
		p.idle[i] = nil
	}
	p.idle = p.idle[:0]
	if p.reaper != nil {
		p.reaper.Stop()
	}
}
