package tlsbackend

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
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
// the same keys: NewSharedTicketKeyRotator derives them from a shared
// secret and the clock, or give each the same keys with SetKeys.
type TicketKeyRotator struct {
	mu   sync.Mutex
	keys []TicketKey // current first
	keep int
	subs map[int]func([]TicketKey)
	next int
	// shared is set on rotators whose keys follow the clock
	// (NewSharedTicketKeyRotator).
	shared *sharedKeys
}

// NewTicketKeyRotator returns a rotator with one fresh random key, keeping
// keep keys in all (at least 1; 0 means 3).
func NewTicketKeyRotator(keep int) *TicketKeyRotator {
	if keep <= 0 {
		keep = 3
	}
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

// EpochTicketKeys returns the ticket keys that processes sharing secret hold
// at time now when they rotate every period: the key of period p is derived
// from secret and p alone, so they agree with no messages between them.
// The list is the current period's key (which issues tickets), the next
// period's (accepted, for a process whose clock turned first), then the
// keys of the older periods that are still accepted: a ticket stays valid
// for older+1 periods at most.
func EpochTicketKeys(secret TicketKey, period time.Duration, older int, now time.Time) []TicketKey {
	p := now.UnixNano() / int64(period)
	keys := []TicketKey{epochKey(secret, p), epochKey(secret, p+1)}
	for i := range older {
		keys = append(keys, epochKey(secret, p-1-int64(i)))
	}
	return keys
}

func epochKey(secret TicketKey, p int64) TicketKey {
	m := hmac.New(sha256.New, secret[:])
	m.Write([]byte("monolake ticket period "))
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(p)))
	return TicketKey(m.Sum(nil))
}

// NewSharedTicketKeyRotator returns a rotator holding EpochTicketKeys(secret,
// period, older, now). Follow keeps it on the current period.
func NewSharedTicketKeyRotator(secret TicketKey, period time.Duration, older int) *TicketKeyRotator {
	keys := EpochTicketKeys(secret, period, older, time.Now())
	return &TicketKeyRotator{
		keep: len(keys), keys: keys, subs: map[int]func([]TicketKey){},
		shared: &sharedKeys{secret: secret, period: period, older: older},
	}
}

// sharedKeys is what a rotator made by NewSharedTicketKeyRotator derives
// its keys from.
type sharedKeys struct {
	secret TicketKey
	period time.Duration
	older  int
}

// Follow keeps a rotator made by NewSharedTicketKeyRotator on the current
// period's keys (by the wall clock) until ctx is done: it wakes at every
// period boundary, and at least once a minute, so that a clock stepped
// either way or a suspended machine finds the right keys within a minute.
// On other rotators it returns at once.
func (r *TicketKeyRotator) Follow(ctx context.Context) {
	sh := r.shared
	if sh == nil {
		return
	}
	for {
		now := time.Now()
		if keys := EpochTicketKeys(sh.secret, sh.period, sh.older, now); keys[0] != r.Keys()[0] {
			r.SetKeys(keys)
		}
		next := time.Unix(0, (now.UnixNano()/int64(sh.period)+1)*int64(sh.period))
		t := time.NewTimer(min(next.Sub(now), time.Minute))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
