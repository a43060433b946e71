package parquetfmt

import (
	"errors"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// UseSmallZstdWindow makes the Parquet writers of this process compress zstd
// pages with a window of zstdWindow instead of the library's 8 MiB: each
// pooled encoder then holds about 1 MiB of history instead of 8, for the same
// output (a page is never larger than the window, so no match is lost).
// Readers are unchanged. It replaces a process-wide codec of arrow-go, so
// call it once, from main, before any Parquet is written.
func UseSmallZstdWindow() error {
	orig, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		return err
	}
	if _, ok := orig.(*smallZstd); ok {
		return nil
	}
	dec, ok1 := orig.(compress.ErrorCodec)
	stream, ok2 := orig.(compress.StreamingCodec)
	if !ok1 || !ok2 {
		return errors.New("parquet: arrow-go's zstd codec no longer decodes with errors or streams; keep its encoders")
	}
	compress.RegisterCodec(compress.Codecs.Zstd, &smallZstd{ErrorCodec: dec, StreamingCodec: stream})
	return nil
}

// zstdWindow bounds the encoder's history: the Parquet data page size.
const zstdWindow = 1 << 20

// smallZstd is arrow-go's zstd codec with its block encoders replaced;
// decoding and streaming stay the original's.
type smallZstd struct {
	compress.ErrorCodec
	compress.StreamingCodec
	mu    sync.Mutex
	pools map[zstd.EncoderLevel]*sync.Pool
}

func (z *smallZstd) pool(level zstd.EncoderLevel) *sync.Pool {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.pools == nil {
		z.pools = map[zstd.EncoderLevel]*sync.Pool{}
	}
	p := z.pools[level]
	if p == nil {
		p = &sync.Pool{New: func() any {
			enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(level),
				zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true),
				zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
			if err != nil {
				panic(err) // constant options: cannot fail
			}
			return enc
		}}
		z.pools[level] = p
	}
	return p
}

// Encode compresses src at the default level into dst.
func (z *smallZstd) Encode(dst, src []byte) []byte {
	return z.EncodeLevel(dst, src, compress.DefaultCompressionLevel)
}

// EncodeLevel compresses src at level into dst, as arrow-go's codec does.
func (z *smallZstd) EncodeLevel(dst, src []byte, level int) []byte {
	l := zstd.EncoderLevelFromZstd(level)
	if level == compress.DefaultCompressionLevel {
		l = zstd.SpeedDefault
	}
	p := z.pool(l)
	enc := p.Get().(*zstd.Encoder)
	out := enc.EncodeAll(src, dst[:0])
	enc.Reset(nil)
	p.Put(enc)
	return out
}
