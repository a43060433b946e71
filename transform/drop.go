package transform

// AccessedKey is the event the API writes for each call of GET
// /audit_events: a read of the audit log, by whoever holds a token.
const AccessedKey = "audit_events_accessed"

// Drop tells which records are not exported: those of the keys of
// transform.drop_event_keys, and, with transform.drop_own_reads, the reads
// of the log this exporter made itself: audit_events_accessed events whose
// user agent is its own (ownAgent, which names the state's reader id). The
// reads of anyone else with a token, a stolen one too, stay.
type Drop struct {
	keys     map[string]bool
	ownAgent string // "" keeps every read
}

// NewDrop drops the records of keys and, when ownAgent is not "", the
// reads of the log made with that user agent.
func NewDrop(keys []string, ownAgent string) Drop {
	d := Drop{keys: make(map[string]bool, len(keys)), ownAgent: ownAgent}
	for _, k := range keys {
		d.keys[k] = true
	}
	return d
}

// Dropped reports whether r is not exported.
func (d Drop) Dropped(r *Record) bool {
	if d.keys[r.EventKey] {
		return true
	}
	return d.ownAgent != "" && r.EventKey == AccessedKey && r.UserAgent.Valid && r.UserAgent.Str == d.ownAgent
}
