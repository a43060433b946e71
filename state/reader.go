package state

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/pachca-export/pachca-export/internal/sumfile"
)

// ReaderFile records the state's reader id (ReaderID).
const ReaderFile = "reader.json"

type reader struct {
	ID string `json:"id"`
}

// ReaderID is the name this state's runs and follow loops give themselves
// in the user agent of their requests, so that the audit events of their
// own reads of the log (audit_events_accessed) can be told from the reads
// of anyone else with a token (transform.drop_own_reads). It is random,
// made by the first run: a holder of another copy of the token cannot
// guess it, only copy it from a read of the log it exports first. "" when
// no run made one yet. A damaged file is a permanent error naming it.
func (v *View) ReaderID() (string, error) {
	var r reader
	ok, err := sumfile.Read(filepath.Join(v.dir, ReaderFile), &r,
		"remove it: the next run makes a new one (its own reads of the log made under the old one are then exported as anyone's)")
	if err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	if !ok {
		return "", nil
	}
	return r.ID, nil
}

// EnsureReaderID returns the state's reader id, made and recorded durably
// on first use.
func (s *Store) EnsureReaderID() (string, error) {
	id, err := s.ReaderID()
	if err != nil || id != "" {
		return id, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	id = hex.EncodeToString(b)
	if err := sumfile.Write(filepath.Join(s.dir, ReaderFile), reader{ID: id}, fileMode); err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	return id, nil
}
