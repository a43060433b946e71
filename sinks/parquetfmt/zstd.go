package parquetfmt

import (
	"errors"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// UseSmallZstdWindow makes the Parquet writers of this process compress zstd
// pages with a window of zstdWindow instead of the library's 8 MiB: each
// kept encoder then holds 256 KiB of history instead of 8 MiB, for the
// same output (a data page is never larger than the window, so no match is
// lost; only a dictionary page over 128 KiB may miss a distant one).
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

// zstdWindow bounds the encoder's history: twice the Parquet data page size
// (DefaultPageBytes). The encoder's history buffer is the window plus a
// 128 KiB block: 256 KiB, against 1.1 MiB with a 1 MiB window.
const zstdWindow = 128 << 10

// zstdKeep is how many idle encoders a level keeps: one per column writer
// compressing at the same moment (a process writes a few Parquet files at
// once at most). A sync.Pool lost them at every garbage collection, which
// under the soft memory limit runs several times a second: each page then
// built a new encoder, some 0.6 MiB of garbage that brought the next
// collection nearer.
const zstdKeep = 4

// smallZstd is arrow-go's zstd codec with its block encoders replaced;
// decoding and streaming stay the original's.
type smallZstd struct {
	compress.ErrorCodec
	compress.StreamingCodec
	mu   sync.Mutex
	idle map[zstd.EncoderLevel][]*zstd.Encoder // at most zstdKeep each
}

// get returns an idle encoder of level, or a new one.
func (z *smallZstd) get(level zstd.EncoderLevel) *zstd.Encoder {
	z.mu.Lock()
	if l := z.idle[level]; len(l) > 0 {
		enc := l[len(l)-1]
		l[len(l)-1] = nil
		z.idle[level] = l[:len(l)-1]
		z.mu.Unlock()
		return enc
	}
	z.mu.Unlock()
	enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1), zstd.WithAllLitEntropyCompression(true),
		zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(err) // constant options: cannot fail
	}
	return enc
}

// put keeps enc for the next page of its level, unless zstdKeep are idle.
func (z *smallZstd) put(level zstd.EncoderLevel, enc *zstd.Encoder) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.idle == nil {
		z.idle = map[zstd.EncoderLevel][]*zstd.Encoder{}
	}
	if len(z.idle[level]) < zstdKeep {
		z.idle[level] = append(z.idle[level], enc)
	}
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
	enc := z.get(l)
	// EncodeAll uses none of the streaming state: Reset would build it, a
	// second block encoder of some 0.4 MiB per encoder.
	out := enc.EncodeAll(src, dst[:0])
	z.put(l, enc)
	return out
}
