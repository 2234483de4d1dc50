package tlsbackend

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// TicketKey is one session-ticket secret. Backends derive their own key
// material from it (crypto/tls takes it as is; the OpenSSL backend derives a
// key name, an AES key and an HMAC key with DeriveTicketKey), so tickets of
// one backend are not readable by the other, but both rotate together.
type TicketKey [32]byte

// TicketKeyRotator holds the session-ticket keys of a group of servers: the
// current key, used to issue tickets, and up to Keep-1 older ones, still
// accepted. It is safe for concurrent use; backends subscribe to it and are
// told the new key list on every rotation.
//
// Workers in separate processes that must accept each other's tickets need
// the same keys: NewRatchetTicketKeyRotator derives them from a shared
// TicketRatchet and the clock, or give each the same keys with SetKeys.
type TicketKeyRotator struct {
	mu   sync.Mutex
	keys []TicketKey // current first
	keep int
	subs map[int]func([]TicketKey)
	next int
	// ratchet and label are set on rotators whose keys follow the clock
	// (NewRatchetTicketKeyRotator); only Follow touches ratchet.
	ratchet *TicketRatchet
	label   string
}

// MaxTicketKeys is how many ticket keys a rotator holds at most, the
// current one included: what the openssl backend's context has room for,
// so that both backends accept the same tickets.
const MaxTicketKeys = 8

// NewTicketKeyRotator returns a rotator with one fresh random key, keeping
// keep keys in all (at least 1, at most MaxTicketKeys; 0 means 3).
func NewTicketKeyRotator(keep int) *TicketKeyRotator {
	if keep <= 0 {
		keep = 3
	}
	keep = min(keep, MaxTicketKeys)
	r := &TicketKeyRotator{keep: keep, subs: map[int]func([]TicketKey){}}
	r.keys = []TicketKey{newTicketKey()}
	return r
}

func newTicketKey() TicketKey {
	var k TicketKey
	rand.Read(k[:]) // never fails (crypto/rand panics instead)
	return k
}

// Keys returns a copy of the keys, current first.
func (r *TicketKeyRotator) Keys() []TicketKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]TicketKey(nil), r.keys...)
}

// Rotate makes a fresh random key current and drops the oldest beyond Keep.
func (r *TicketKeyRotator) Rotate() {
	r.mu.Lock()
	keys := append([]TicketKey{newTicketKey()}, r.keys...)
	r.setLocked(keys)
}

// SetKeys replaces the keys (current first); keys beyond Keep are dropped.
// An empty list is ignored.
func (r *TicketKeyRotator) SetKeys(keys []TicketKey) {
	if len(keys) == 0 {
		return
	}
	r.mu.Lock()
	r.setLocked(append([]TicketKey(nil), keys...))
}

// setLocked installs keys and notifies the subscribers; it unlocks r.mu.
// Subscribers are called with the lock held, so that two rotations cannot
// reach a backend out of order; they must not call back into r.
func (r *TicketKeyRotator) setLocked(keys []TicketKey) {
	defer r.mu.Unlock()
	if len(keys) > r.keep {
		keys = keys[:r.keep]
	}
	r.keys = keys
	for _, f := range r.subs {
		f(append([]TicketKey(nil), keys...))
	}
}

// Subscribe calls f with the current keys now and after every change, until
// the returned cancel is called. f must not call back into r.
func (r *TicketKeyRotator) Subscribe(f func([]TicketKey)) (cancel func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.next
	r.next++
	r.subs[id] = f
	f(append([]TicketKey(nil), r.keys...))
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

// Run rotates to a fresh random key every period until ctx is done.
func (r *TicketKeyRotator) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Rotate()
		}
	}
}

// DeriveTicketKey derives from k the 16-byte key name, the AES-256 key and
// the HMAC-SHA256 key of an RFC 5077 style ticket (OpenSSL's format).
func DeriveTicketKey(k TicketKey) (name [16]byte, aesKey, hmacKey [32]byte) {
	d := func(label string) []byte {
		m := hmac.New(sha256.New, k[:])
		m.Write([]byte("monolake ticket " + label))
		return m.Sum(nil)
	}
	copy(name[:], d("name"))
	copy(aesKey[:], d("aes"))
	copy(hmacKey[:], d("hmac"))
	return
}

// TicketRatchet is the state session-ticket keys of processes that must
// accept each other's tickets derive from: the secret of the current
// period and those of the older periods still accepted. Each period's
// secret is a one-way function of the one before (step), so processes
// given the same state agree on every key from then on with no messages
// between them, and a state taken at any time reveals no key of a period
// that has left the window: old tickets stay sealed (forward secrecy), as
// with keys rotated at random.
type TicketRatchet struct {
	Period time.Duration `json:"period"`
	// Index is the current period: Unix time / Period.
	Index int64 `json:"index"`
	// Secrets are the secrets of periods Index-len+1 .. Index, oldest
	// first.
	Secrets []TicketKey `json:"secrets"`
}

// NewTicketRatchet returns a ratchet for the current period with random
// secrets, turning every period (at least a second) and keeping older
// periods accepted (0 to MaxTicketKeys-2: its keys are the current
// period's, the next one's and the older ones').
func NewTicketRatchet(period time.Duration, older int) *TicketRatchet {
	period, older = max(period, time.Second), min(max(older, 0), MaxTicketKeys-2)
	t := &TicketRatchet{Period: period, Index: time.Now().UnixNano() / int64(period)}
	for range older + 1 {
		t.Secrets = append(t.Secrets, newTicketKey())
	}
	return t
}

// Clone returns a copy that advances on its own.
func (t *TicketRatchet) Clone() *TicketRatchet {
	c := *t
	c.Secrets = append([]TicketKey(nil), t.Secrets...)
	return &c
}

// Advance moves the ratchet to now's period, one step per period; the
// secrets that leave the window are dropped (their array slots reused). A
// clock that went back moves nothing.
func (t *TicketRatchet) Advance(now time.Time) {
	target := now.UnixNano() / int64(t.Period)
	for t.Index < target {
		n := len(t.Secrets)
		next := ratchetStep(t.Secrets[n-1])
		copy(t.Secrets, t.Secrets[1:])
		t.Secrets[n-1] = next
		t.Index++
	}
}

func ratchetStep(k TicketKey) TicketKey {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte("monolake ticket ratchet"))
	return TicketKey(m.Sum(nil))
}

// Keys returns the ticket keys of label (a server's name: keys of one label
// open no ticket of another) for the current period: its key (which issues
// tickets), the next period's (accepted, for a process whose clock turned
// first), then those of the older periods in the window, newest first. A
// ticket stays valid for len(Secrets) periods at most. The list stops at
// MaxTicketKeys: the oldest periods of a larger window (a state made by
// hand) are not accepted.
func (t *TicketRatchet) Keys(label string) []TicketKey {
	derive := func(k TicketKey) TicketKey {
		m := hmac.New(sha256.New, k[:])
		m.Write([]byte("monolake ticket key " + label))
		return TicketKey(m.Sum(nil))
	}
	n := len(t.Secrets)
	keys := []TicketKey{derive(t.Secrets[n-1]), derive(ratchetStep(t.Secrets[n-1]))}
	for i := n - 2; i >= 0 && len(keys) < MaxTicketKeys; i-- {
		keys = append(keys, derive(t.Secrets[i]))
	}
	return keys
}

// NewRatchetTicketKeyRotator returns a rotator holding the keys of label
// from a copy of r advanced to now. Follow keeps it on the current period.
func NewRatchetTicketKeyRotator(r *TicketRatchet, label string) *TicketKeyRotator {
	own := r.Clone()
	own.Advance(time.Now())
	keys := own.Keys(label)
	return &TicketKeyRotator{
		keep: len(keys), keys: keys, subs: map[int]func([]TicketKey){},
		ratchet: own, label: label,
	}
}

// Follow keeps a rotator made by NewRatchetTicketKeyRotator on the current
// period's keys (by the wall clock) until ctx is done: it wakes at every
// period boundary, and at least once a minute, so that a clock stepped
// forward or a suspended machine finds the right keys within a minute.
// On other rotators it returns at once.
func (r *TicketKeyRotator) Follow(ctx context.Context) {
	rt := r.ratchet
	if rt == nil {
		return
	}
	for {
		now := time.Now()
		before := rt.Index
		rt.Advance(now)
		if rt.Index != before {
			r.SetKeys(rt.Keys(r.label))
		}
		next := time.Unix(0, (now.UnixNano()/int64(rt.Period)+1)*int64(rt.Period))
		t := time.NewTimer(min(next.Sub(now), time.Minute))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
