package sinks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/internal/secret"
)

// Identity is what defines the data under the root of a file-like sink (a
// directory, or a bucket and prefix): the source, every setting that
// changes which events a file holds, the record shape, the file format and
// the layout.
// A root holds the data of one identity only: query engines read every file
// under a table's location, so two identities in one place would silently
// mix (a filtered backfill's files replacing the nightly ones, two formats
// counted twice). The JSON names are the configuration keys, so that a
// difference reads as what to change.
type Identity struct {
	BaseURL       string   `json:"source.base_url"`
	Workspace     string   `json:"source.workspace"`
	EventKeys     []string `json:"source.filters.event_keys"`
	ActorID       string   `json:"source.filters.actor_id"`
	ActorType     string   `json:"source.filters.actor_type"`
	EntityID      string   `json:"source.filters.entity_id"`
	EntityType    string   `json:"source.filters.entity_type"`
	DropEventKeys []string `json:"transform.drop_event_keys"`
	// DropOwnReads: the exporter's own reads of the log are not exported;
	// absent from the JSON (so from the hash) when false.
	DropOwnReads bool `json:"transform.drop_own_reads,omitempty"`
	// Schema is the record shape: the schema_version of every record.
	Schema string `json:"schema"`
	// Format is the file format with its compression, as the extension
	// says: "ndjson.gz", "parquet". A sink fills it in itself in Claim,
	// like Schema (from its format) and Layout.
	Format string `json:"format"`
	// Layout is the sink's layout ("security_lake"); empty, and absent
	// from the JSON (so from the hash), for the daily one.
	Layout string `json:"layout,omitempty"`
}

// Normal returns id with the differences that do not change the data taken
// out: a trailing slash of the base URL, the order of lists, nil lists.
func (id Identity) Normal() Identity {
	id.BaseURL = strings.TrimRight(id.BaseURL, "/")
	norm := func(l []string) []string {
		l = slices.Compact(slices.Sorted(slices.Values(l)))
		if l == nil {
			l = []string{}
		}
		return l
	}
	id.EventKeys = norm(id.EventKeys)
	id.DropEventKeys = norm(id.DropEventKeys)
	return id
}

// Hash is the hex sha256 of the normal identity's JSON: the identity that
// manifests record.
func (id Identity) Hash() string {
	b, err := json.Marshal(id.Normal())
	if err != nil {
		panic(err) // strings and lists of strings always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Diff names each key whose value differs, as "key: A here, B there" with
// id as here.
func (id Identity) Diff(there Identity) []string {
	var here, other map[string]any
	a, _ := json.Marshal(id.Normal())
	b, _ := json.Marshal(there.Normal())
	_ = json.Unmarshal(a, &here)
	_ = json.Unmarshal(b, &other)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(here)) {
		h, o := fmt.Sprint(here[k]), fmt.Sprint(other[k])
		if h != o {
			if k == "source.base_url" { // a password in it is no one's business
				here[k], other[k] = secret.URL(h), secret.URL(o)
			}
			out = append(out, fmt.Sprintf("%s: %s here, %s there", k, show(here[k]), show(other[k])))
		}
	}
	return out
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// MarkerName is the file at the root of a file-like sink that records the
// identity of its data. The leading underscore keeps query engines off it.
const MarkerName = "_pachca-export.json"

// Marker is the content of the marker file.
type Marker struct {
	About        string    `json:"about"`
	Identity     Identity  `json:"identity"`
	IdentityHash string    `json:"identity_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

const markerAbout = "Written by pachca-export: the files under this location hold the audit events of this identity only. " +
	"A configuration with another identity is refused here; give it another location."

func newMarker(id Identity, now time.Time) []byte {
	b, err := json.MarshalIndent(Marker{About: markerAbout, Identity: id.Normal(), IdentityHash: id.Hash(), CreatedAt: now.UTC()}, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}
