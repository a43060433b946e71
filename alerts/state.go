package alerts

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pachca-export/pachca-export/internal/sumfile"
)

// sentVersion is the format of the file of sent alerts.
const sentVersion = 1

// sentFile is the JSON file: each key with the time its message went out,
// the spans of the bursts sent, and the messages being sent.
type sentFile struct {
	Version int                  `json:"version"`
	Sent    map[string]time.Time `json:"sent"`
	// Bursts are the spans of the threshold findings sent, by rule, actor
	// and recipient (burstGroup). Absent in files of earlier versions,
	// which then know bursts by their first event only.
	Bursts map[string][]span `json:"bursts,omitempty"`
	// Sending are the keys whose message was on its way, with the time it
	// left: a process stopped before the answer (SIGKILL) leaves them
	// here, and whether the message arrived is unknown.
	Sending map[string]time.Time `json:"sending,omitempty"`
}

// span is the time span of a burst sent, in Unix milliseconds, and its
// count of events in that message (0 in files of earlier versions);
// Refused when the API refused the message, which no one read.
type span struct {
	First   int64 `json:"first"`
	Last    int64 `json:"last"`
	Count   int   `json:"count,omitempty"`
	Refused bool  `json:"refused,omitempty"`
}

// Sent is the durable record of the alerts already sent, which makes a
// rerun over the same events send nothing new. Safe for concurrent use.
type Sent struct {
	path string
	now  func() time.Time // the clock of the sending times, which Forget compares with

	mu        sync.Mutex // guards the fields below
	sent      map[string]time.Time
	bursts    map[string][]span
	sending   map[string]time.Time
	uncertain []string // keys a stopped process left in Sending, counted as sent
}

// OpenSent reads the record at path (the pipeline uses <state dir>/alerts-sent.json);
// a missing file is an empty record. The directory must exist. A message
// a stopped process left on its way counts as sent (at most one message
// per finding): Settle lists them.
func OpenSent(path string) (*Sent, error) {
	s := &Sent{path: path, now: time.Now, sent: map[string]time.Time{}, bursts: map[string][]span{}, sending: map[string]time.Time{}}
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
	for g, spans := range f.Bursts {
		s.bursts[g] = spans
	}
	for k, t := range f.Sending {
		if _, ok := s.sent[k]; !ok {
			s.sent[k] = t
			s.uncertain = append(s.uncertain, k)
		}
	}
	slices.Sort(s.uncertain)
	return s, nil
}

// UseClock records the sending times by now (the session's clock, which
// the time passed to Forget is on) rather than the wall clock.
func (s *Sent) UseClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Has reports whether key was recorded.
func (s *Sent) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sent[key]
	return ok
}

// reported reports whether a burst of group (burstGroup) that meets
// [first, last] was recorded: the same burst, grown since by events
// published late, read by a wider range or still coming, whose first event,
// and so its key, may differ; and the largest count its messages gave (0:
// not recorded), and the largest count of those the API took (told: 0
// when it refused every one).
func (s *Sent) reported(group string, first, last time.Time) (count, told int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, l := first.UnixMilli(), last.UnixMilli()
	for _, sp := range s.bursts[group] {
		if sp.First <= l && f <= sp.Last {
			count, ok = max(count, sp.Count), true
			if !sp.Refused {
				told = max(told, sp.Count)
			}
		}
	}
	return count, told, ok
}

// Forget drops, at the next write, the messages sent before before and the
// bursts that ended before it: the caller passes a time past which the API
// holds no event, so that no rerun can find their findings again, and the
// record of a loop that runs for months stays the size of the retention.
// Messages on their way are kept.
func (s *Sent) Forget(before time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.sent {
		if _, sending := s.sending[k]; !sending && t.Before(before) {
			delete(s.sent, k)
		}
	}
	b := before.UnixMilli()
	for g, spans := range s.bursts {
		spans = slices.DeleteFunc(spans, func(sp span) bool { return sp.Last < b })
		if len(spans) == 0 {
			delete(s.bursts, g)
		} else {
			s.bursts[g] = spans
		}
	}
}

// Settle returns the keys whose message a stopped process left on its way
// (they count as sent, though they may not have arrived), and records them
// as sent, so that they are reported once.
func (s *Sent) Settle() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.uncertain
	if len(keys) == 0 {
		return nil, nil
	}
	if err := s.write(); err != nil {
		return nil, err
	}
	s.uncertain = nil
	return keys, nil
}

// Add records key durably (the whole file is rewritten atomically and
// fsynced) before returning. On error key is not recorded.
func (s *Sent) Add(key string) error {
	return s.add(key, "", span{})
}

// begin records durably that the message of key is on its way, before it
// leaves: a process stopped before add or abort leaves key counted as sent.
func (s *Sent) begin(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sending[key] = s.now().UTC().Truncate(time.Second)
	if err := s.write(); err != nil {
		delete(s.sending, key)
		return err
	}
	return nil
}

// abort forgets that the message of key is on its way: it failed.
func (s *Sent) abort(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.sending[key]
	if !ok {
		return nil
	}
	delete(s.sending, key)
	if err := s.write(); err != nil {
		s.sending[key] = t
		return err
	}
	return nil
}

// add records key and, for a burst (group not empty), its span sp.
func (s *Sent) add(key, group string, sp span) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sent[key]; ok {
		return nil
	}
	s.sent[key] = s.now().UTC().Truncate(time.Second)
	spans := s.bursts[group]
	if group != "" {
		s.bursts[group] = append(slices.Clip(spans), sp)
	}
	began, sending := s.sending[key]
	delete(s.sending, key)
	if err := s.write(); err != nil {
		delete(s.sent, key)
		if group != "" {
			s.bursts[group] = spans
			if len(spans) == 0 {
				delete(s.bursts, group)
			}
		}
		if sending {
			s.sending[key] = began
		}
		return err
	}
	return nil
}

// write rewrites the file. Called with s.mu held.
func (s *Sent) write() error {
	f := sentFile{Version: sentVersion, Sent: s.sent, Bursts: s.bursts, Sending: s.sending}
	if err := sumfile.Write(s.path, f, 0o600); err != nil {
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
