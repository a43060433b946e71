package parquetfmt

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// allocated is the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestSmallZstdWindow: a page compressed by the small-window codec decodes
// with the library's decoder to the same bytes, is no larger, and its encoder
// allocates a fraction of the library's.
func TestSmallZstdWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	page := make([]byte, zstdWindow) // the largest data page it is meant for
	for i := range page {
		page[i] = "abcdefgh{}\":,0123"[rng.IntN(17)]
	}
	orig, err := compress.GetCodec(compress.Codecs.Zstd)
	require.NoError(t, err)
	var small *smallZstd
	if s, ok := orig.(*smallZstd); ok { // another test registered it
		small = &smallZstd{ErrorCodec: s.ErrorCodec, StreamingCodec: s.StreamingCodec}
	} else {
		small = &smallZstd{ErrorCodec: orig.(compress.ErrorCodec), StreamingCodec: orig.(compress.StreamingCodec)}
	}

	var out []byte
	smallAlloc := allocated(func() { out = small.EncodeLevel(nil, page, 1) })
	back, err := small.DecodeWithError(nil, out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(page, back))

	var ref []byte
	refAlloc := allocated(func() {
		enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(1)),
			zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true))
		require.NoError(t, err)
		ref = enc.EncodeAll(page, nil)
	})
	require.LessOrEqual(t, len(out), len(ref)+len(ref)/100)
	require.Less(t, smallAlloc, uint64(1<<20), "the small window's encoder")
	require.Greater(t, refAlloc, uint64(8<<20), "the library's encoder")
}

func TestUseSmallZstdWindow(t *testing.T) {
	require.NoError(t, UseSmallZstdWindow())
	require.NoError(t, UseSmallZstdWindow(), "a second call keeps it")
	c, err := compress.GetCodec(compress.Codecs.Zstd)
	require.NoError(t, err)
	s, ok := c.(*smallZstd)
	require.True(t, ok)
	_, wrapped := s.ErrorCodec.(*smallZstd)
	require.False(t, wrapped, "wraps the library's codec, not itself")
	_, ok = c.(compress.StreamingCodec)
	require.True(t, ok, "readers still stream")
}

// TestSmallZstdKeepsEncoders: an encoder outlives garbage collections, which
// under the soft memory limit come several times a second; a sync.Pool
// dropped it, and every page after one built a new encoder (over 1 MiB).
func TestSmallZstdKeepsEncoders(t *testing.T) {
	orig, err := compress.GetCodec(compress.Codecs.Zstd)
	require.NoError(t, err)
	small := &smallZstd{}
	if s, ok := orig.(*smallZstd); ok {
		small.ErrorCodec, small.StreamingCodec = s.ErrorCodec, s.StreamingCodec
	} else {
		small.ErrorCodec, small.StreamingCodec = orig.(compress.ErrorCodec), orig.(compress.StreamingCodec)
	}
	page := bytes.Repeat([]byte(`{"id":"0d5c","event_key":"user_login"}`), DefaultPageBytes/40)
	dst := make([]byte, 0, 2*len(page))
	first := allocated(func() { dst = small.EncodeLevel(dst, page, 1) })
	require.Greater(t, first, uint64(200<<10), "the first page builds an encoder")
	runtime.GC()
	runtime.GC()
	again := allocated(func() { dst = small.EncodeLevel(dst, page, 1) })
	require.Less(t, again, uint64(64<<10), "a page after two collections reuses the kept encoder")
}
