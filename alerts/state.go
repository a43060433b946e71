package alerts

import (
	"fmt"
	"sync"
	"time"

	"github.com/pachca-export/pachca-export/internal/sumfile"
)

// sentVersion is the format of the file of sent alerts.
const sentVersion = 1

// sentFile is the JSON file: each key with the time its message went out.
type sentFile struct {
	Version int                  `json:"version"`
	Sent    map[string]time.Time `json:"sent"`
}

// Sent is the durable record of the alerts already sent, which makes a
// rerun over the same events send nothing new. Safe for concurrent use.
type Sent struct {
	path string

	mu   sync.Mutex // guards sent
	sent map[string]time.Time
}

// OpenSent reads the record at path (the pipeline uses <state dir>/alerts-sent.json);
// a missing file is an empty record. The directory must exist.
func OpenSent(path string) (*Sent, error) {
	s := &Sent{path: path, sent: map[string]time.Time{}}
	var f sentFile
	found, err := sumfile.Read(path, &f, "restore it from a backup, or move it away: every alert of the days delivered next is then sent again")
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	if !found {
		return s, nil
	}
	if f.Version != sentVersion {
		return nil, fmt.Errorf("alerts: %s: unknown version %d (want %d)", path, f.Version, sentVersion)
	}
	for k, t := range f.Sent {
		s.sent[k] = t
	}
	return s, nil
}

// Has reports whether key was recorded.
func (s *Sent) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sent[key]
	return ok
}

// Add records key durably (the whole file is rewritten atomically and
// fsynced) before returning. On error key is not recorded.
func (s *Sent) Add(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sent[key]; ok {
		return nil
	}
	s.sent[key] = time.Now().UTC().Truncate(time.Second)
	if err := sumfile.Write(s.path, sentFile{Version: sentVersion, Sent: s.sent}, 0o600); err != nil {
		delete(s.sent, key)
		return fmt.Errorf("alerts: record a sent alert in %s: %w", s.path, err)
	}
	return nil
}

// Len is the number of keys recorded.
func (s *Sent) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}
