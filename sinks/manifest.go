package sinks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/transform"
)

// ManifestName is the name of the per-day manifest. The leading underscore
// makes Hive, Athena, Spark and DuckDB's hive partitioning skip it.
const ManifestName = "_manifest.json"

// Manifest describes the files of one day directory.
type Manifest struct {
	SchemaVersion string         `json:"schema_version"`
	Day           string         `json:"day"`
	Records       int64          `json:"records"`
	Files         []ManifestFile `json:"files"`
}

// ManifestFile is one file of a day: the range it covers, its record count and
// checksum, and the run that wrote it.
type ManifestFile struct {
	Name      string    `json:"name"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Records   int64     `json:"records"`
	Bytes     int64     `json:"bytes"`
	SHA256    string    `json:"sha256"`
	RunID     string    `json:"run_id"`
	WrittenAt time.Time `json:"written_at"`
}

// UpdateManifest adds f to the manifest encoded in old (nil or empty for none),
// replacing an entry of the same name, and returns the new encoding. For a
// Compact partition f replaces every entry: the manifest lists f alone.
func UpdateManifest(old []byte, p Partition, f ManifestFile) ([]byte, error) {
	m := Manifest{SchemaVersion: transform.SchemaVersion, Day: p.Date()}
	if len(old) > 0 {
		if err := json.Unmarshal(old, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", p.Dir(), err)
		}
		m.SchemaVersion = transform.SchemaVersion
		m.Day = p.Date()
	}
	m.Files = slices.DeleteFunc(m.Files, func(e ManifestFile) bool { return p.Compact || e.Name == f.Name })
	m.Files = append(m.Files, f)
	slices.SortFunc(m.Files, func(a, b ManifestFile) int { return strings.Compare(a.Name, b.Name) })
	m.Records = 0
	for _, e := range m.Files {
		m.Records += e.Records
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// HashWriter counts and hashes what passes through it to W.
type HashWriter struct {
	W io.Writer
	N int64
	h hash.Hash
}

// NewHashWriter wraps w.
func NewHashWriter(w io.Writer) *HashWriter { return &HashWriter{W: w, h: sha256.New()} }

func (h *HashWriter) Write(p []byte) (int, error) {
	n, err := h.W.Write(p)
	h.h.Write(p[:n])
	h.N += int64(n)
	return n, err
}

// Sum returns the hex sha256 of everything written.
func (h *HashWriter) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }
