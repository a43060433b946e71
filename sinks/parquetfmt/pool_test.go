package parquetfmt

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestPoolAllocator(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	p := newPoolAllocator(mem)
	for _, size := range []int{1, 40, 64, 65, 1000, 4096, 5000, 1 << 20, 3<<20 + 7} {
		b := p.Allocate(size)
		require.Len(t, b, size)
		for i := range b {
			b[i] = 0xff
		}
		p.Free(b)
		b = p.Allocate(size) // the same buffer again, zeroed
		require.Len(t, b, size)
		require.True(t, zero(b))
		b = p.Reallocate(max(size/2, 1), b)
		require.Len(t, b, max(size/2, 1))
		b[0] = 1
		b = p.Reallocate(2*size+100, b)
		require.Len(t, b, 2*size+100)
		require.Equal(t, byte(1), b[0])
		require.True(t, zero(b[max(size/2, 1):]))
		p.Free(b)
	}
	for size := 1; size < 1<<16; size = size*3/2 + 1 {
		class, capacity, ok := poolClass(size)
		require.True(t, ok)
		require.GreaterOrEqual(t, capacity, size)
		require.LessOrEqual(t, capacity, max(64, size+size/4+8), "size %d", size)
		c2, cap2, ok := poolClass(capacity)
		require.True(t, ok)
		require.Equal(t, class, c2)
		require.Equal(t, capacity, cap2)
	}
	p.release()
	mem.AssertSize(t, 0)
}
