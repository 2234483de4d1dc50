package uring

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// errUnsupported is what every call of the stub build returns.
var errUnsupported = fmt.Errorf("uring: io_uring not built in (build with CGO_ENABLED=1 -tags uring): %w", errors.ErrUnsupported)

// Alloc returns n zeroed bytes mapped outside the Go heap (page-aligned,
// rounded up to whole pages), for buffers the kernel holds across Enter
// calls: Recv and Send buffers, RegisterBuffers. Free it with Free once no
// operation uses it. One mmap(2).
func Alloc(n int) ([]byte, error) {
	if !Available {
		return nil, errUnsupported
	}
	if n <= 0 {
		return nil, fmt.Errorf("uring: allocating %d bytes: %w", n, syscall.EINVAL)
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("uring: allocating %d bytes: %w", n, err)
	}
	return b, nil
}

// Free unmaps memory from Alloc. One munmap(2).
func Free(b []byte) error {
	if !Available {
		return errUnsupported
	}
	if err := syscall.Munmap(b); err != nil {
		return fmt.Errorf("uring: freeing: %w", err)
	}
	return nil
}

// BufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING): a group of
// equal buffers the kernel picks from when a multishot recv has data, so a
// connection holds no buffer while idle. Both the ring and the buffers are
// mmap'd, outside the Go heap.
//
// Borrowing contract: the slice Get returns is the kernel-filled buffer
// itself, not a copy. It is valid until Release of its ID; after Release the
// kernel may overwrite it with another connection's data at any moment, so
// nothing may keep it (or a sub-slice) past that. Every buffer Get hands out
// must be released exactly once, or the group runs dry (multishot recvs
// then end with -ENOBUFS).
//
// The kernel is handed only some of the buffers at a time (64 to start
// with), the most recently released first, so that receives land in memory
// the caches still hold. A recv that finds none of them left ends with
// -ENOBUFS while others wait in user space: its owner calls RanDry, which
// keeps more buffers in the ring from then on, and arms the recv again.
//
// A BufRing belongs to its Ring and follows the same rule: one goroutine at a
// time (the Ring's owner, or under its lock) calls Claim, Release and RanDry.
type BufRing struct {
	r       *Ring
	ring    []byte // entries × struct io_uring_buf; the tail overlays entry 0
	bufs    []byte // entries × size
	size    int
	mask    uint16
	tail    uint16 // next slot we fill; published to the kernel by publish
	group   uint16
	entries int
	// lent[id]: the kernel handed buffer id out (Claim) and it was not
	// released since. A buffer released twice would be in the ring twice
	// and could be filled by two receives at once: Release refuses it.
	lent    []bool
	refused int
	out     int // buffers claimed and not released

	// The ring holds about want buffers, not all of them: the kernel
	// takes buffers in the order they were added, so a ring holding every
	// buffer would cycle through all of them (16 MiB at the driver's
	// default) and every receive would land in memory no cache holds.
	// Released buffers wait in free, and the ring is topped up from its
	// end, the most recently used (still cached) first.
	free    []uint16 // neither lent nor in the ring; the most recently released last
	avail   int      // in the ring and not claimed (the kernel may have taken some not yet reaped)
	want    int      // avail is topped up to this; RanDry doubles it, it decays back to minWant
	minWant int
	claims  uint64 // buffers claimed so far
	grewAt  uint64 // claims when want last grew (grown: it did)
	grown   bool
	movedAt uint64 // claims when want last grew or shrank
}

// minRingBuffers is where a BufRing's fill target starts and what it
// decays back to.
const minRingBuffers = 64

// NewBufRing maps entries buffers of size bytes, hands the kernel 64 of
// them (all, if fewer; see RanDry) and registers them as buffer group
// group. entries must be a power of two up to 32768. Two mmaps and one
// io_uring_register(2).
func (r *Ring) NewBufRing(group uint16, entries, size int) (*BufRing, error) {
	if !Available {
		return nil, errUnsupported
	}
	if r == nil || r.Fd() < 0 {
		return nil, ErrClosed
	}
	if entries <= 0 || entries > 1<<15 || entries&(entries-1) != 0 || size <= 0 || int64(size) > 1<<31 {
		return nil, fmt.Errorf("uring: buffer ring of %d × %d bytes: %w", entries, size, syscall.EINVAL)
	}
	if _, dup := r.bufs[group]; dup {
		return nil, fmt.Errorf("uring: buffer group %d: %w", group, syscall.EEXIST)
	}
	ring, err := Alloc(entries * 16)
	if err != nil {
		return nil, err
	}
	bufs, err := Alloc(entries * size)
	if err != nil {
		Free(ring)
		return nil, err
	}
	b := &BufRing{r: r, ring: ring, bufs: bufs, size: size, mask: uint16(entries - 1), group: group, entries: entries, lent: make([]bool, entries)}
	b.minWant = min(entries, minRingBuffers)
	b.want = b.minWant
	b.free = make([]uint16, 0, entries)
	for i := entries - 1; i >= 0; i-- {
		b.free = append(b.free, uint16(i))
	}
	b.fill()
	if err := r.registerBufRing(ring, entries, group); err != nil {
		b.unmap()
		return nil, err
	}
	if r.bufs == nil {
		r.bufs = make(map[uint16]*BufRing)
	}
	r.bufs[group] = b
	return b, nil
}

// Group returns the buffer group ID.
func (b *BufRing) Group() uint16 { return b.group }

// Size returns the size of each buffer.
func (b *BufRing) Size() int { return b.size }

// Len returns the number of buffers.
func (b *BufRing) Len() int { return b.entries }

// Get returns the buffer a CQE filled: its first c.Res bytes, and the ID to
// Release. ok is false when the CQE carries no buffer (an error, EOF). The
// slice is borrowed: valid until Release(id), see BufRing.
func (b *BufRing) Get(c CQE) (data []byte, id uint16, ok bool) {
	id, ok = c.BufID()
	if !ok || int(id) >= b.entries || b.bufs == nil {
		return nil, 0, false
	}
	off := int(id) * b.size
	n := min(max(int(c.Res), 0), b.size)
	return b.bufs[off : off+n : off+b.size], id, true
}

// Refused counts the releases refused as double (see Release).
func (b *BufRing) Refused() int { return b.refused }

// Out counts the buffers claimed and not yet released: the kernel filled
// them and their users hold them.
func (b *BufRing) Out() int { return b.out }

// Claim records that the kernel handed out the buffer c carries, if any,
// and returns its ID. Every CQE of a receive with this buffer group must be
// claimed before its buffer is released.
func (b *BufRing) Claim(c CQE) (id uint16, ok bool) {
	id, ok = c.BufID()
	if !ok || int(id) >= b.entries {
		return 0, false
	}
	if !b.lent[id] {
		b.lent[id] = true
		b.out++
		b.avail--
		b.claims++
		if b.claims-b.movedAt >= decayClaims && b.want > b.minWant {
			b.want = max(b.want-b.want/4, b.minWant)
			b.movedAt = b.claims
		}
		b.fill()
	}
	return id, true
}

// decayClaims is how many buffers the kernel hands out without running dry
// before a BufRing's fill target shrinks by a quarter.
const decayClaims = 1 << 16

// RanDry tells b that a receive ended with ENOBUFS: the kernel found the
// ring empty. The ring is kept twice as full from now on (up to every
// buffer), shrinking back by a quarter after every 65,536 buffers handed
// out without running dry again.
func (b *BufRing) RanDry() {
	if b.grown && b.claims-b.grewAt < uint64(b.want/2) {
		// Fewer claims than half the ring since it last grew: the
		// same dry spell (every receive of one burst that found the ring
		// empty ends with ENOBUFS, and their completions come together).
		return
	}
	b.grown, b.grewAt, b.movedAt = true, b.claims, b.claims
	b.want = min(2*b.want, b.entries)
	b.fill()
}

// InRing reports how many buffers the ring holds for the kernel (those it
// took and whose completions were not yet claimed included) and how many it
// is kept at.
func (b *BufRing) InRing() (n, want int) { return b.avail, b.want }

// fill tops the ring up to want from the most recently released buffers and
// publishes the new tail.
func (b *BufRing) fill() {
	if b.avail >= b.want || len(b.free) == 0 || b.ring == nil {
		return
	}
	for b.avail < b.want && len(b.free) > 0 {
		b.add(b.free[len(b.free)-1])
		b.free = b.free[:len(b.free)-1]
		b.avail++
	}
	b.publish()
}

// Release gives buffer id back, to the kernel at once if the ring is below
// its fill target (the kernel may then refill it at once): no slice of it
// may be used afterwards. No syscall, no cgo call: at most two stores into
// the shared ring. A buffer that was not claimed since it was last
// released (a double release, a bug of the caller's) is refused and
// counted (Refused) rather than put in the ring twice, where two receives
// could fill it at once. (Not a panic: callers hold their driver's lock.)
func (b *BufRing) Release(id uint16) {
	if int(id) >= b.entries || b.ring == nil {
		return
	}
	if !b.lent[id] {
		b.refused++
		return
	}
	b.lent[id] = false
	b.out--
	b.free = append(b.free, id)
	b.fill()
}

// ioUringBuf is struct io_uring_buf. The ring's tail overlays resv of entry
// 0, so resv is never written here.
type ioUringBuf struct {
	addr uint64
	len  uint32
	bid  uint16
	resv uint16
}

func (b *BufRing) add(id uint16) {
	e := (*ioUringBuf)(unsafe.Pointer(&b.ring[int(b.tail&b.mask)*16]))
	e.addr = uint64(uintptr(unsafe.Pointer(&b.bufs[int(id)*b.size])))
	e.len = uint32(b.size)
	e.bid = id
	b.tail++
}

// publish stores the tail with release semantics. The tail is the upper half
// of the 32-bit word at offset 12 whose lower half is entry 0's bid, which
// only this side writes, so storing the whole word is safe.
func (b *BufRing) publish() {
	w := (*uint32)(unsafe.Pointer(&b.ring[12]))
	bid0 := uint32(*(*uint16)(unsafe.Pointer(&b.ring[12])))
	atomic.StoreUint32(w, bid0|uint32(b.tail)<<16)
}

// Close unregisters the group and unmaps its memory. No recv may be using it;
// buffers still handed out stay mapped (see unmap). One io_uring_register(2), two
// munmaps.
func (b *BufRing) Close() error {
	if b.ring == nil {
		return ErrClosed
	}
	if err := b.r.unregisterBufRing(b.group); err != nil {
		return err // the kernel may still fill the buffers: they stay mapped
	}
	delete(b.r.bufs, b.group)
	return b.unmap()
}

// unmap frees the ring and the buffers, except that buffers still handed
// out (claimed, not released) stay mapped, all of them: a reader that has
// not yet noticed the close may be copying from one, and would fault. That
// memory is leaked, which only a close with a reader in flight costs.
func (b *BufRing) unmap() error {
	if b.ring == nil {
		return nil
	}
	err := Free(b.ring)
	if !slices.Contains(b.lent, true) {
		err = errors.Join(err, Free(b.bufs))
	}
	b.ring, b.bufs = nil, nil
	return err
}
