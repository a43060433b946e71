package sinks

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/pachca-export/pachca-export/internal/smallfile"
)

// maxKeyFile is the largest key file read: a PEM Ed25519 key is about 120
// bytes.
const maxKeyFile = 64 << 10

// ReadKeyFile reads the PEM key file at path: at most 64 KiB, and without
// waiting on a named pipe no process writes (internal/smallfile).
func ReadKeyFile(path string) ([]byte, error) {
	b, err := smallfile.Read(path, maxKeyFile, nil)
	if errors.Is(err, smallfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s is larger than %d KiB: not a PEM key", path, maxKeyFile>>10)
	}
	return b, err
}

// ParsePrivateKey reads an Ed25519 private key in PEM (PKCS #8, "PRIVATE
// KEY"), as `openssl genpkey -algorithm ed25519` writes it.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" (create one with: openssl genpkey -algorithm ed25519 -out signing.pem)")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 private key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an Ed25519 key", k)
	}
	return ek, nil
}

// ParsePublicKey reads an Ed25519 public key in PEM (PKIX, "PUBLIC KEY"),
// as PublicKeyPEM and `openssl pkey -pubout` write it.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\"")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKIX public key: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an Ed25519 key", k)
	}
	return ek, nil
}

// PublicKeyPEM encodes pub as PEM (PKIX, "PUBLIC KEY").
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // an Ed25519 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// KeyID names a public key in manifests: the first 16 hex digits of the
// sha256 of its raw bytes.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}
