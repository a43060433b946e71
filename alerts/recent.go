package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/failure"
)

// A loop that runs for months (the follow mode) keeps an engine across its
// cycles, so that a burst split between two cycles is one finding: it
// prunes what no rule can use any more, and saves the rest, so that a
// restart goes on where it stopped.

// recentEvent is an event as saved.
type recentEvent struct {
	ID         string `json:"id"`
	Key        string `json:"key"`
	At         int64  `json:"at"`
	ActorID    string `json:"actor_id"`
	ActorType  string `json:"actor_type"`
	IP         string `json:"ip,omitempty"`
	EntityID   string `json:"entity_id,omitempty"`
	EntityType string `json:"entity_type,omitempty"`
	Details    string `json:"details,omitempty"`
}

// Prune forgets the events created before before. A burst whose first
// event goes is judged from its remaining events: give before a margin of
// a day or more, so that only a burst that lasts that long yields a second
// finding.
func (e *Engine) Prune(before time.Time) {
	ms := before.UnixMilli()
	for _, rs := range e.rules {
		rs.events = slices.DeleteFunc(rs.events, func(ev event) bool {
			if ev.at < ms {
				delete(rs.seen, ev.id)
				return true
			}
			return false
		})
	}
}

// LongestWindow is the longest window of the threshold rules (0 without):
// a loop that prunes must keep at least that much behind its newest events.
func (e *Engine) LongestWindow() time.Duration {
	var w time.Duration
	for _, rs := range e.rules {
		w = max(w, rs.rule.Window)
	}
	return w
}

// Events is the number of events the rules hold.
func (e *Engine) Events() int {
	n := 0
	for _, rs := range e.rules {
		n += len(rs.events)
	}
	return n
}

// Save writes the observed events of every rule to path, atomically.
func (e *Engine) Save(path string) error {
	out := map[string][]recentEvent{}
	for _, rs := range e.rules {
		evs := make([]recentEvent, 0, len(rs.events))
		for _, ev := range rs.events {
			evs = append(evs, recentEvent{ev.id, ev.key, ev.at, ev.actorID, ev.actorType, ev.ip, ev.entityID, ev.entityType, ev.details})
		}
		out[rs.rule.Name] = evs
	}
	b, err := json.Marshal(out)
	if err == nil {
		err = atomicfile.WriteFile(path, append(b, '\n'), 0o600)
	}
	if err != nil {
		return fmt.Errorf("alerts: save recent events: %w", err)
	}
	return nil
}

// Load adds the events saved at path to the rules of the same name; a
// missing file adds nothing, events of rules no longer configured are
// dropped.
func (e *Engine) Load(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	var in map[string][]recentEvent
	if err := json.Unmarshal(b, &in); err != nil {
		return failure.Permanentf("alerts: %s is damaged (%v): remove it to start the rules afresh (a burst in progress may then be reported twice)", path, err)
	}
	for _, rs := range e.rules {
		for _, ev := range in[rs.rule.Name] {
			if rs.seen[ev.ID] || !slices.Contains(rs.rule.EventKeys, ev.Key) {
				continue
			}
			rs.seen[ev.ID] = true
			rs.events = append(rs.events, event{id: ev.ID, key: ev.Key, at: ev.At, actorID: ev.ActorID, actorType: ev.ActorType,
				ip: ev.IP, entityID: ev.EntityID, entityType: ev.EntityType, details: ev.Details})
		}
	}
	return nil
}
