package sinks_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
)

// FuzzDecodeManifest: whatever a _manifest.json holds (cut short, edited,
// written by another tool), DecodeManifest gives a manifest or a one-line
// error, never a panic; a manifest it gives encodes, has its signature
// checked without a panic, and reads back the same once written.
func FuzzDecodeManifest(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	m := sinks.Manifest{SchemaVersion: "pachca.audit.v1", Day: "2026-11-01", Identity: "abc", Previous: sinks.Sum([]byte("x"))}
	m.Put(sinks.ManifestFile{Name: "pachca-audit-20261101T000000Z-20261102T000000Z.parquet", From: day, To: day.AddDate(0, 0, 1),
		Records: 12, DeadLetters: 1, Bytes: 4096, SHA256: sinks.Sum([]byte("y")), RunID: "run", WrittenAt: day.Add(25 * time.Hour)})
	m.Put(sinks.ManifestFile{Name: "part.ndjson", From: day, To: day.Add(time.Hour), Records: 1, Part: true, S3Checksum: "SHA256:abc="})
	f.Add(m.Encode())
	m.Sign(key)
	f.Add(m.Encode())
	f.Add([]byte(`{"day":"2026-11-01","files":[{"from":"9999-12-31T23:59:59-23:59"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := sinks.DecodeManifest(b)
		if err != nil {
			require.NotContains(t, err.Error(), "\n")
			return
		}
		enc := m.Encode()
		_ = m.CheckSignature(key.Public().(ed25519.PublicKey))
		_, _ = m.CheckSignatureAny(key.Public().(ed25519.PublicKey), key.Public().(ed25519.PublicKey))
		again, err := sinks.DecodeManifest(enc)
		require.NoError(t, err, "a manifest read does not read back once written")
		require.Equal(t, string(enc), string(again.Encode()))
	})
}
