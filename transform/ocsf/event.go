// Package ocsf maps a normalized audit record of schema v1
// (transform.Record) to one OCSF 1.3.0 event: each event key to one event
// class and activity (README, "OCSF 1.3 output"), the actor and target as
// OCSF objects, and everything that has no OCSF attribute under unmapped,
// so nothing is lost: unmapped.details always holds the record's
// details_json.
//
// Map is pure: no I/O, no logging, no panics on any input. The NDJSON and
// Parquet encoders (sinks/ndjson, sinks/parquetfmt) write Event values; the
// struct tags are the OCSF attribute names, and the Go types decide the
// Parquet types (see Event).
//
// For the Amazon Security Lake layout (one object per class, see
// sinks/split) ClassOf gives a record's class without mapping it, and
// Classes lists every class Map produces with its columns.
package ocsf

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/transform"
)

// Version is the OCSF schema version of every event (metadata.version).
const Version = "1.3.0"

// SchemaVersion names the record shape in manifests and file metadata,
// beside transform.SchemaVersion.
const SchemaVersion = "ocsf.1.3.0"

// Event is one OCSF event. Fields left at their zero value are absent: a
// nil pointer, an empty string or slice, a zero optional number. Go types
// decide the Parquet types: int32 is integer_t (INT32), int64 is long_t or
// timestamp_t (INT64), DateTime is TIMESTAMP(MILLIS, UTC), JSON is a JSON
// text (a string in Parquet, embedded as JSON in NDJSON), Unmapped is a
// map<string, string>. Fields without omitempty are always written.
type Event struct {
	ActivityID   int32  `json:"activity_id"`
	ActivityName string `json:"activity_name,omitempty"`
	CategoryUID  int32  `json:"category_uid"`
	CategoryName string `json:"category_name,omitempty"`
	ClassUID     int32  `json:"class_uid"`
	ClassName    string `json:"class_name,omitempty"`
	TypeUID      int64  `json:"type_uid"`
	TypeName     string `json:"type_name,omitempty"`
	SeverityID   int32  `json:"severity_id"`
	Severity     string `json:"severity,omitempty"`
	StatusID     int32  `json:"status_id"`
	Status       string `json:"status,omitempty"`
	Message      string `json:"message,omitempty"`
	// Time is the event time in milliseconds since the epoch (OCSF
	// timestamp_t, a long); TimeDT is the same instant under the datetime
	// profile, a TIMESTAMP(MILLIS, UTC) column in Parquet and RFC 3339 in JSON.
	Time      int64    `json:"time"`
	TimeDT    DateTime `json:"time_dt"`
	StartTime int64    `json:"start_time,omitempty"`
	EndTime   int64    `json:"end_time,omitempty"`
	Duration  int64    `json:"duration,omitempty"`
	Metadata  Metadata `json:"metadata"`

	Actor        *Actor            `json:"actor,omitempty"`
	User         *User             `json:"user,omitempty"`
	Privileges   []string          `json:"privileges,omitempty"`
	Group        *Group            `json:"group,omitempty"`
	Resource     *ResourceDetails  `json:"resource,omitempty"`
	Entity       *ManagedEntity    `json:"entity,omitempty"`
	EntityResult *ManagedEntity    `json:"entity_result,omitempty"`
	API          *API              `json:"api,omitempty"`
	WebResources []WebResource     `json:"web_resources,omitempty"`
	Resources    []ResourceDetails `json:"resources,omitempty"`
	FindingInfo  *FindingInfo      `json:"finding_info,omitempty"`
	DataSecurity *DataSecurity     `json:"data_security,omitempty"`
	Service      *Service          `json:"service,omitempty"`
	IsMFA        *bool             `json:"is_mfa,omitempty"`
	SrcEndpoint  *NetworkEndpoint  `json:"src_endpoint,omitempty"`
	HTTPRequest  *HTTPRequest      `json:"http_request,omitempty"`

	Unmapped Unmapped `json:"unmapped,omitempty"`
}

// Metadata is the OCSF metadata object.
type Metadata struct {
	Version      string   `json:"version"`
	Product      Product  `json:"product"`
	UID          string   `json:"uid,omitempty"`
	EventCode    string   `json:"event_code,omitempty"`
	OriginalTime string   `json:"original_time,omitempty"`
	LogName      string   `json:"log_name,omitempty"`
	LogProvider  string   `json:"log_provider,omitempty"`
	TenantUID    string   `json:"tenant_uid,omitempty"`
	Profiles     []string `json:"profiles,omitempty"`
}

// Product is the OCSF product object.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

// Actor is the OCSF actor object.
type Actor struct {
	User *User `json:"user,omitempty"`
}

// User is the OCSF user object. Type is the API's actor_type or
// entity_type as sent.
type User struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// Group is the OCSF group object (a tag or a chat as a set of members).
type Group struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// ResourceDetails is the OCSF resource_details object.
type ResourceDetails struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// ManagedEntity is the OCSF managed_entity object. Data is the event's
// details object.
type ManagedEntity struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
	Data JSON   `json:"data,omitempty"`
}

// WebResource is the OCSF web_resource object.
type WebResource struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// API is the OCSF api object.
type API struct {
	Operation string   `json:"operation"`
	Service   *Service `json:"service,omitempty"`
}

// Service is the OCSF service object.
type Service struct {
	Name string `json:"name,omitempty"`
}

// NetworkEndpoint is the OCSF network_endpoint object.
type NetworkEndpoint struct {
	IP   string `json:"ip,omitempty"`
	Name string `json:"name,omitempty"`
}

// HTTPRequest is the OCSF http_request object.
type HTTPRequest struct {
	HTTPMethod string `json:"http_method,omitempty"`
	URL        *URL   `json:"url,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
}

// URL is the OCSF url object.
type URL struct {
	Path string `json:"path,omitempty"`
}

// FindingInfo is the OCSF finding_info object.
type FindingInfo struct {
	UID      string    `json:"uid"`
	Title    string    `json:"title"`
	Desc     string    `json:"desc,omitempty"`
	Types    []string  `json:"types,omitempty"`
	Analytic *Analytic `json:"analytic,omitempty"`
}

// Analytic is the OCSF analytic object (the DLP rule).
type Analytic struct {
	UID    string `json:"uid,omitempty"`
	Name   string `json:"name,omitempty"`
	TypeID int32  `json:"type_id"`
	Type   string `json:"type,omitempty"`
}

// DataSecurity is the OCSF data_security object.
type DataSecurity struct {
	DetectionSystemID int32   `json:"detection_system_id,omitempty"`
	DetectionSystem   string  `json:"detection_system,omitempty"`
	Policy            *Policy `json:"policy,omitempty"`
}

// Policy is the OCSF policy object.
type Policy struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
}

// DateTime is a time in milliseconds since the Unix epoch that JSON writes
// as RFC 3339 with milliseconds (OCSF datetime_t) and Parquet as
// TIMESTAMP(MILLIS, UTC).
type DateTime int64

// MarshalJSON implements json.Marshaler.
func (d DateTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 26)
	b = append(b, '"')
	b = time.UnixMilli(int64(d)).UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

// timeLayout is how the API writes created_at, and metadata.original_time.
const timeLayout = "2006-01-02T15:04:05.000Z"

// JSON is a JSON text (OCSF json_t): embedded as JSON by MarshalJSON, a
// string column in Parquet. Text that is not valid JSON, or that common
// JSON readers refuse (see embeddable), is written as a JSON string
// instead; invalid UTF-8 becomes U+FFFD, as encoding/json does for strings.
type JSON string

// MarshalJSON implements json.Marshaler.
func (j JSON) MarshalJSON() ([]byte, error) {
	b := []byte(j)
	if !utf8.Valid(b) {
		b = []byte(transform.ValidUTF8(string(j)))
	}
	if json.Valid(b) && embeddable(b) {
		return b, nil
	}
	return json.Marshal(string(j))
}

// maxEmbedDepth is the deepest nesting of a JSON text embedded in an event:
// Rust's serde_json (Vector's parser) refuses a document nested more than
// 128 levels, and the event itself takes up to three.
const maxEmbedDepth = 100

// embeddable reports whether the valid JSON text b, embedded in a line,
// leaves the line readable by common JSON readers: no number beyond a
// double's range (1e400: Go's encoding/json and serde_json refuse the
// whole line; JavaScript and Python read Infinity), and no nesting deeper
// than maxEmbedDepth.
func embeddable(b []byte) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case c == '{' || c == '[':
			if depth++; depth > maxEmbedDepth {
				return false
			}
		case c == '}' || c == ']':
			depth--
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(b) && strings.IndexByte("+-.eE0123456789", b[j]) >= 0 {
				j++
			}
			// Only an exponent or over 308 digits can take a number
			// past a double's range.
			if j-i > 309 || bytes.ContainsAny(b[i:j], "eE") {
				if _, err := strconv.ParseFloat(string(b[i:j]), 64); err != nil {
					return false
				}
			}
			i = j - 1
		}
	}
	return true
}

// Field is one member of unmapped. JSON marks a value that is JSON text,
// embedded as JSON in NDJSON (details); other values are strings.
type Field struct {
	Name  string
	Value string
	JSON  bool
}

// Unmapped is the OCSF unmapped object: in NDJSON an object with one member
// per field, in Parquet a map<string, string>. Names are unique.
type Unmapped []Field

// MarshalJSON implements json.Marshaler, keeping the fields' order.
func (u Unmapped) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range u {
		if i > 0 {
			b = append(b, ',')
		}
		name, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		b = append(append(b, name...), ':')
		v, err := JSON(f.Value).MarshalJSON()
		if !f.JSON {
			v, err = json.Marshal(f.Value)
		}
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// Get returns the value of the field name.
func (u Unmapped) Get(name string) (string, bool) {
	for _, f := range u {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}
