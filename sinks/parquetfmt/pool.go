package parquetfmt

import (
	"math/bits"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// poolAllocator keeps the buffers the Arrow builders and the Parquet writer
// free and hands them out again. Every record batch allocates the same
// buffers anew (builders, levels, encoded pages): with the plain Go
// allocator that was about 1.6 KB an event for the garbage collector to
// zero and sweep. Buffers come from the parent allocator in sizes of four
// steps per power of two (at most 25% over the size asked for) from 64
// bytes; release gives every kept buffer back to the parent,
// so a memory.CheckedAllocator still balances. It is safe for concurrent use.
type poolAllocator struct {
	parent memory.Allocator
	mu     sync.Mutex
	free   [4 * (poolMaxLog - poolMinLog + 1)][][]byte // by poolClass

	kept int // bytes in free
}

const (
	poolMinLog = 6  // 64 bytes, Arrow's alignment
	poolMaxLog = 30 // buffers up to 1 GiB
	// poolMaxKept bounds the bytes the pool keeps: the buffers the encoder
	// frees and asks for again between two record batches of 4,096 rows.
	// What it keeps beyond adds to the peak RSS one for one.
	poolMaxKept = 2 << 20
)

func newPoolAllocator(parent memory.Allocator) *poolAllocator {
	return &poolAllocator{parent: parent}
}

// poolClass returns the class of a buffer of size bytes and the capacity of
// the class: with 2^(k-1) < size <= 2^k, size rounded up to a multiple of
// 2^(k-3). ok is false for sizes the pool does not keep.
func poolClass(size int) (class, capacity int, ok bool) {
	k := max(poolMinLog, bits.Len(uint(size-1)))
	if size <= 0 || k > poolMaxLog {
		return 0, 0, false
	}
	step := 1 << (k - 3)
	q := (size + step - 1) / step // 5..8, or fewer for the smallest class
	q = max(q, 5)
	return 4*k + q - 5 - 4*poolMinLog, q * step, true
}

// Allocate returns size zeroed bytes, as memory.GoAllocator does.
func (p *poolAllocator) Allocate(size int) []byte {
	c, capacity, ok := poolClass(size)
	if !ok {
		return p.parent.Allocate(size)
	}
	p.mu.Lock()
	if n := len(p.free[c]); n > 0 {
		b := p.free[c][n-1]
		p.free[c][n-1] = nil
		p.free[c] = p.free[c][:n-1]
		p.kept -= cap(b)
		p.mu.Unlock()
		b = b[:size]
		clear(b)
		return b
	}
	p.mu.Unlock()
	b := p.parent.Allocate(capacity)
	return b[:size:capacity]
}

// Reallocate resizes b like memory.GoAllocator: in place when b has the
// capacity, else into a new buffer (the bytes past len(b) are zero).
func (p *poolAllocator) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size]
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

// Free keeps b for reuse, or gives it back to the parent allocator.
func (p *poolAllocator) Free(b []byte) {
	c := cap(b)
	if c == 0 {
		p.parent.Free(b)
		return
	}
	b = b[:c]
	class, capacity, ok := poolClass(c)
	if !ok || capacity != c {
		p.parent.Free(b) // not one of the pool's buffers
		return
	}
	p.mu.Lock()
	if p.kept+c <= poolMaxKept {
		p.free[class] = append(p.free[class], b)
		p.kept += c
		b = nil
	}
	p.mu.Unlock()
	if b != nil {
		p.parent.Free(b)
	}
}

// release gives every kept buffer back to the parent allocator.
func (p *poolAllocator) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.free {
		for i, b := range p.free[c] {
			p.parent.Free(b)
			p.free[c][i] = nil
		}
		p.free[c] = nil
	}
	p.kept = 0
}

var _ memory.Allocator = (*poolAllocator)(nil)

// NewPoolAllocator returns the pooling allocator the encoder uses, for
// readers of Parquet files (the report), where every record batch also
// allocates the same buffers anew. It is safe for concurrent use; it keeps
// at most poolMaxKept (2 MiB) of free buffers.
func NewPoolAllocator(parent memory.Allocator) memory.Allocator { return newPoolAllocator(parent) }
