package sinks

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"
)

// ManifestName is the name of the per-day manifest. The leading underscore
// makes Hive, Athena, Spark and DuckDB's hive partitioning skip it.
const ManifestName = "_manifest.json"

// Manifest describes the files of one day directory. The manifests of one
// root form a chain: each carries the sha256 of the previous day's, so that
// deleting, editing or reordering any of them shows; optionally each is
// signed with an Ed25519 key.
type Manifest struct {
	SchemaVersion string `json:"schema_version"`
	Day           string `json:"day"`
	// Identity is the hash of the data identity (Identity.Hash) the day
	// was written for; the root's marker records the identity itself.
	Identity string `json:"identity,omitempty"`
	// Previous is the hex sha256 of the bytes of the manifest of the
	// closest earlier day of the same root that has one; "" for the first.
	Previous string `json:"previous"`
	Records  int64  `json:"records"`
	// DeadLetters and Dropped are the sums of the files' (omitted when 0):
	// the events of the day that went to no file, and why.
	DeadLetters int64          `json:"dead_letters,omitempty"`
	Dropped     int64          `json:"dropped,omitempty"`
	Files       []ManifestFile `json:"files"`
	// KeyID names the signing key (KeyID of its public key) and Signature
	// is the Ed25519 signature of the manifest encoded without Signature
	// (SignedBytes), base64; both empty when unsigned.
	KeyID     string `json:"key_id,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// ManifestFile is one file of a day: the range it covers, its record count and
// checksum, and the run that wrote it.
type ManifestFile struct {
	Name    string    `json:"name"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Records int64     `json:"records"`
	// DeadLetters and Dropped count the events of [From, To) that went to
	// no file of the partition (sinks.Unexported), on its first file only
	// (a split layout's partition writes several); omitted when 0.
	DeadLetters int64     `json:"dead_letters,omitempty"`
	Dropped     int64     `json:"dropped,omitempty"`
	Bytes       int64     `json:"bytes"`
	SHA256      string    `json:"sha256"`
	RunID       string    `json:"run_id"`
	WrittenAt   time.Time `json:"written_at"`
	// Part marks a follow cycle's file (Partition.Part): it holds the
	// events of [From, To) that no earlier cycle delivered, not every one,
	// so its span overlaps the cycles' before it without repeating them.
	Part bool `json:"part,omitempty"`
	// S3Checksum is the checksum S3 verified on upload and stores with the
	// object, as "SHA256:<base64>" (one PutObject: the same digest as
	// SHA256) or "SHA256-COMPOSITE:<base64>-<parts>" (multipart); "" for files.
	S3Checksum string `json:"s3_checksum,omitempty"`
}

// DecodeManifest decodes a manifest.
func DecodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, err
	}
	if m.Day == "" {
		return Manifest{}, errors.New("no day: not a manifest")
	}
	return m, nil
}

// Encode returns the manifest as written: indented JSON and a newline.
func (m *Manifest) Encode() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // strings, numbers and times always encode
	}
	return append(b, '\n')
}

// Put adds f, replacing the entry of the same name, and updates Records.
func (m *Manifest) Put(f ManifestFile) {
	m.Files = slices.DeleteFunc(m.Files, func(e ManifestFile) bool { return e.Name == f.Name })
	m.Files = append(m.Files, f)
	slices.SortFunc(m.Files, func(a, b ManifestFile) int { return strings.Compare(a.Name, b.Name) })
	m.count()
}

// count sets Records, DeadLetters and Dropped to the sums of the files'; a
// manifest without files lists them as [], not null.
func (m *Manifest) count() {
	if m.Files == nil {
		m.Files = []ManifestFile{}
	}
	m.Records, m.DeadLetters, m.Dropped = 0, 0, 0
	for _, e := range m.Files {
		m.Records += e.Records
		m.DeadLetters += e.DeadLetters
		m.Dropped += e.Dropped
	}
}

// SetUnexported puts u on the first of a partition's entries (files, in
// the order written), the one entry that carries them.
func SetUnexported(files []ManifestFile, u Unexported) {
	if len(files) > 0 {
		files[0].DeadLetters, files[0].Dropped = u.DeadLetters, u.Dropped
	}
}

// File returns the entry called name.
func (m *Manifest) File(name string) (ManifestFile, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return ManifestFile{}, false
}

// SignedBytes is what a manifest's signature covers: its compact JSON with
// Signature empty (KeyID included).
func (m Manifest) SignedBytes() []byte {
	m.Signature = ""
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// Sign signs m with key; a nil key removes any signature (a manifest
// changed by an unsigned run must not carry a stale one).
func (m *Manifest) Sign(key ed25519.PrivateKey) {
	m.KeyID, m.Signature = "", ""
	if key == nil {
		return
	}
	m.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	m.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, m.SignedBytes()))
}

// CheckSignature reports whether m is signed by pub.
func (m Manifest) CheckSignature(pub ed25519.PublicKey) error {
	if m.Signature == "" {
		return errors.New("not signed")
	}
	if m.KeyID != KeyID(pub) {
		return fmt.Errorf("signed by key %s, not by the given key %s", m.KeyID, KeyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || !ed25519.Verify(pub, m.SignedBytes(), sig) {
		return errors.New("the signature does not match its content: edited after signing")
	}
	return nil
}

// CheckSignatureAny reports whether m is signed by one of keys (the one
// its KeyID names), and returns that key.
func (m Manifest) CheckSignatureAny(keys ...ed25519.PublicKey) (ed25519.PublicKey, error) {
	if len(keys) == 0 {
		return nil, errors.New("no key to check the signature with")
	}
	for _, k := range keys {
		if m.Signature != "" && m.KeyID == KeyID(k) {
			return k, m.CheckSignature(k)
		}
	}
	if m.Signature == "" || len(keys) == 1 {
		return nil, m.CheckSignature(keys[0]) // not signed, or another key's
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = KeyID(k)
	}
	return nil, fmt.Errorf("signed by key %s, not by any of the given keys %s", m.KeyID, strings.Join(ids, ", "))
}

// Sum is the hex sha256 of b: the link from one manifest to the previous.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
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
