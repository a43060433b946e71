package transform

import "time"

// Value holds one details column of a record. Valid false means null. Exactly
// one of Str, Int, Bool, List is meaningful, chosen by the column's Kind.
// The two bools come first so that a Value is 56 bytes, not 64: a Record
// holds NumDetails of them.
type Value struct {
	Valid bool
	Bool  bool
	Str   string
	Int   int64
	List  []string // non-nil when Valid and the kind is KindStringList
}

// NullString is a string that may be null.
type NullString struct {
	Valid bool
	Str   string
}

// Record is one normalized event of schema v1. Encoders read it; nobody
// modifies a Record after Normalize returned it.
type Record struct {
	ID            string
	CreatedAt     int64 // milliseconds since the Unix epoch, UTC
	EventKey      string
	EventCategory string
	ActorID       string
	ActorType     string
	EntityID      string
	EntityType    string
	IPAddress     NullString
	UserAgent     NullString
	DetailsJSON   string
	Details       [NumDetails]Value
	Workspace     string
	// The schema_version column is always SchemaVersion and is not stored.
}

// Time returns CreatedAt as a time.Time in UTC.
func (r *Record) Time() time.Time { return time.UnixMilli(r.CreatedAt).UTC() }

// Day returns the UTC date of CreatedAt as YYYY-MM-DD, the partition key.
func (r *Record) Day() string { return r.Time().Format(time.DateOnly) }
