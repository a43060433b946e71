package ocsf_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.ocsf.json from the current output")

// inputDir holds one raw API event per case, shared with the schema v1
// golden tests: every event key of the OpenAPI document and edge cases.
var inputDir = filepath.Join("..", "testdata", "golden")

func inputs(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(inputDir, "*.input.json"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[strings.TrimSuffix(filepath.Base(p), ".input.json")] = b
	}
	return out
}

func normalize(t testing.TB, raw []byte) transform.Record {
	t.Helper()
	rec, err := transform.Normalize(raw, "acme")
	require.NoError(t, err)
	return rec
}

// render is the JSON of an event as the NDJSON encoder writes it.
func render(t testing.TB, ev *ocsf.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(ev))
	return buf.Bytes()
}

func loadSchema(t testing.TB) *ocsfschema.Schema {
	t.Helper()
	s, err := ocsfschema.Load()
	require.NoError(t, err)
	return s
}

func TestGolden(t *testing.T) {
	for name, raw := range inputs(t) {
		t.Run(name, func(t *testing.T) {
			rec := normalize(t, raw)
			ev := ocsf.Map(&rec)
			var got bytes.Buffer
			require.NoError(t, json.Indent(&got, render(t, &ev), "", "  "))
			path := filepath.Join("testdata", "golden", name+".ocsf.json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, got.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "no golden file; run go test ./transform/ocsf -run TestGolden -update")
			require.Equal(t, string(want), got.String())
		})
	}
}

// checkEvent validates one mapped event against the 1.3.0 schema and the
// mapping's own promises.
func checkEvent(t *testing.T, s *ocsfschema.Schema, rec *transform.Record, ev *ocsf.Event) {
	t.Helper()
	line := render(t, ev)
	doc, err := ocsfschema.Decode(line)
	require.NoError(t, err)
	require.NoError(t, s.Validate(doc), "%s", line)

	require.Equal(t, int64(ev.ClassUID)*100+int64(ev.ActivityID), ev.TypeUID)
	require.Equal(t, ocsf.Version, ev.Metadata.Version)
	cls, ok := ocsf.ClassByUID(ev.ClassUID)
	require.True(t, ok, "class %d", ev.ClassUID)
	for name := range doc {
		require.Contains(t, cls.Attributes, name, "attribute %s is not declared for class %s", name, cls.Name)
	}
	require.Equal(t, cls.Profiles, ev.Metadata.Profiles)
	names := map[string]bool{} // a JSON object's members, a Parquet map's keys
	for _, f := range ev.Unmapped {
		require.False(t, names[f.Name], "unmapped.%s twice", f.Name)
		names[f.Name] = true
	}
	details, ok := ev.Unmapped.Get("details")
	require.True(t, ok, "unmapped.details missing")
	require.Equal(t, rec.DetailsJSON, details, "details_json is not recoverable")
	require.Equal(t, rec.CreatedAt, ev.Time)
	require.Equal(t, rec.EventKey, ev.Metadata.EventCode)
}

// TestEveryKeyValidates maps one event of every key of the OpenAPI
// document, the edge cases and an unknown key, each also in variants that
// move the optional and odd parts around, and validates every result.
func TestEveryKeyValidates(t *testing.T) {
	s := loadSchema(t)
	in := inputs(t)
	for _, key := range transform.EventKeys() {
		require.Contains(t, in, key, "no input event for %s", key)
	}
	variants := []struct {
		name string
		edit func(r *transform.Record)
	}{
		{"as sent", func(*transform.Record) {}},
		{"server side", func(r *transform.Record) { r.IPAddress, r.UserAgent = transform.NullString{}, transform.NullString{} }},
		{"bot actor", func(r *transform.Record) { r.ActorType = "Bot" }},
		{"no actor", func(r *transform.Record) { r.ActorID, r.ActorType = "", "" }},
		{"no entity", func(r *transform.Record) { r.EntityID, r.EntityType = "", "" }},
		{"user entity", func(r *transform.Record) { r.EntityType = "User" }},
		{"group entity", func(r *transform.Record) { r.EntityType = "GroupTag" }},
		{"ipv6", func(r *transform.Record) { r.IPAddress = transform.NullString{Valid: true, Str: "2001:db8::7"} }},
		{"not an address", func(r *transform.Record) { r.IPAddress = transform.NullString{Valid: true, Str: "10.0.0.1, 10.0.0.2"} }},
		{"empty address and user agent", func(r *transform.Record) {
			r.IPAddress, r.UserAgent = transform.NullString{Valid: true}, transform.NullString{Valid: true}
		}},
		{"empty details", func(r *transform.Record) { r.DetailsJSON, r.Details = "{}", [transform.NumDetails]transform.Value{} }},
		{"long strings", func(r *transform.Record) {
			long := strings.Repeat("я", 33000) // 66,000 bytes: cut, at a character boundary
			r.ActorID, r.EntityType = long, long
			r.Details[transform.DName] = transform.Value{Valid: true, Str: long}
		}},
	}
	for name, raw := range in {
		for _, v := range variants {
			t.Run(name+"/"+v.name, func(t *testing.T) {
				rec := normalize(t, raw)
				v.edit(&rec)
				ev := ocsf.Map(&rec)
				checkEvent(t, s, &rec, &ev)
				if slices.Contains(transform.EventKeys(), rec.EventKey) {
					require.NotEqual(t, ocsf.ClassBaseEvent, ev.ClassUID, "%s fell back", rec.EventKey)
				} else {
					require.Equal(t, ocsf.ClassBaseEvent, ev.ClassUID)
					require.Equal(t, int32(99), ev.ActivityID)
					require.Equal(t, rec.EventKey, ev.ActivityName)
				}
			})
		}
	}
}

// TestNothingLost: every member of the API event is in the OCSF event,
// under an attribute or in unmapped.
func TestNothingLost(t *testing.T) {
	rec := normalize(t, inputs(t)["x_unknown_event_key"])
	rec.IPAddress = transform.NullString{Valid: true, Str: "not an ip"}
	ev := ocsf.Map(&rec)
	require.Equal(t, ocsf.ClassBaseEvent, ev.ClassUID)
	for name, want := range map[string]string{
		"details": rec.DetailsJSON, "actor_id": rec.ActorID, "actor_type": rec.ActorType,
		"entity_id": rec.EntityID, "entity_type": rec.EntityType, "ip_address": "not an ip", "user_agent": rec.UserAgent.Str,
	} {
		got, ok := ev.Unmapped.Get(name)
		require.True(t, ok, name)
		require.Equal(t, want, got, name)
	}
	require.Equal(t, rec.ID, ev.Metadata.UID)
	require.Equal(t, rec.Workspace, ev.Metadata.TenantUID)

	// A known key: the address that is no address goes to unmapped; a
	// value over string_t's limit is cut in place and kept whole.
	rec = normalize(t, inputs(t)["user_login"])
	rec.IPAddress = transform.NullString{Valid: true, Str: "unknown"}
	rec.ActorID = strings.Repeat("7", 70000)
	ev = ocsf.Map(&rec)
	require.Nil(t, ev.SrcEndpoint)
	ip, _ := ev.Unmapped.Get("ip_address")
	require.Equal(t, "unknown", ip)
	actor, _ := ev.Unmapped.Get("actor_id")
	require.Equal(t, rec.ActorID, actor)
	require.Len(t, ev.Actor.User.UID, 65535)

	// An empty user agent stays "" in unmapped, apart from a null one
	// (was: an http_request without user_agent, {} in JSON).
	rec = normalize(t, inputs(t)["user_login"])
	rec.UserAgent = transform.NullString{Valid: true, Str: ""}
	ev = ocsf.Map(&rec)
	require.Nil(t, ev.HTTPRequest)
	ua, ok := ev.Unmapped.Get("user_agent")
	require.True(t, ok)
	require.Equal(t, "", ua)
}

func TestMapIsPure(t *testing.T) {
	for name, raw := range inputs(t) {
		rec := normalize(t, raw)
		before := rec
		a, b := ocsf.Map(&rec), ocsf.Map(&rec)
		require.Equal(t, before, rec, name)
		require.True(t, reflect.DeepEqual(a, b), name)
	}
}

// TestMapperReusesItsEvent: a Mapper gives Map's event for every record
// whatever it mapped before (no attribute, unmapped field or class left
// over from the last event: every key, the edge cases and simulated events
// with unknown keys, forwards and backwards), without the allocations of a
// new event each time.
func TestMapperReusesItsEvent(t *testing.T) {
	in := inputs(t)
	var recs []transform.Record
	for _, name := range slices.Sorted(maps.Keys(in)) {
		recs = append(recs, normalize(t, in[name]))
	}
	recs = append(recs, ocsftest.Simulated(t, 2000, true)...)
	rev := slices.Clone(recs)
	slices.Reverse(rev)
	var x ocsf.Mapper
	for _, order := range [][]transform.Record{recs, rev} {
		for i := range order {
			require.True(t, reflect.DeepEqual(ocsf.Map(&order[i]), *x.Map(&order[i])), "%s %s", order[i].EventKey, order[i].ID)
		}
	}
	r := &recs[0]
	var sink ocsf.Event
	fresh := testing.AllocsPerRun(100, func() { sink = ocsf.Map(r) })
	reused := testing.AllocsPerRun(100, func() { sink = *x.Map(r) })
	require.Less(t, reused, fresh)
	_ = sink
}

// TestClassesMatchSchema holds the class table to the schema: captions,
// categories, activity captions, profiles and attributes all exist for the
// class in OCSF 1.3.0.
func TestClassesMatchSchema(t *testing.T) {
	s := loadSchema(t)
	fields := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[ocsf.Event]()) {
		fields[strings.Split(f.Tag.Get("json"), ",")[0]] = true
	}
	for _, c := range ocsf.Classes() {
		sc, ok := s.Class(int64(c.UID))
		require.True(t, ok, c.Name)
		require.Equal(t, sc.Name, c.Name)
		require.Equal(t, sc.Caption, c.Caption)
		require.Equal(t, sc.CategoryUID, int64(c.CategoryUID))
		for _, p := range c.Profiles {
			require.Contains(t, sc.Profiles, p, "%s: profile %s", c.Name, p)
		}
		for id, caption := range sc.Attrs["activity_id"].Enum {
			n, err := strconv.ParseInt(id, 10, 32)
			require.NoError(t, err)
			require.Equal(t, caption, c.ActivityCaption(int32(n)), "%s activity %s", c.Name, id)
		}
		for _, a := range c.Attributes {
			require.True(t, fields[a], "%s: %s is no Event field", c.Name, a)
			if a == "time_dt" {
				continue // the datetime profile's sibling of time
			}
			require.Contains(t, sc.Attrs, a, "%s: %s is no attribute of the class", c.Name, a)
		}
	}
}

// TestDescriptionsMatchOpenAPI: message is the key's description in the
// OpenAPI document (the simulator's vendored copy).
func TestDescriptionsMatchOpenAPI(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "simulator", "testdata", "pachca-openapi.en.yaml"))
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas struct {
				AuditEventKey struct {
					Enum         []string          `yaml:"enum"`
					Descriptions map[string]string `yaml:"x-enum-descriptions"`
				} `yaml:"AuditEventKey"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	keys := doc.Components.Schemas.AuditEventKey
	require.Equal(t, transform.EventKeys(), keys.Enum)
	for _, key := range keys.Enum {
		rec := transform.Record{ID: "e", EventKey: key, DetailsJSON: "{}"}
		ev := ocsf.Map(&rec)
		require.Equal(t, keys.Descriptions[key], ev.Message, key)
	}
}

// TestSimulatedEventsValidate maps the simulator's realistic mix (every
// key, bot actors, server-side events without address, unknown keys and
// details fields) and validates each event.
func TestSimulatedEventsValidate(t *testing.T) {
	s := loadSchema(t)
	classes := map[int32]int{}
	for _, rec := range ocsftest.Simulated(t, 2000, true) {
		ev := ocsf.Map(&rec)
		classes[ev.ClassUID]++
		checkEvent(t, s, &rec, &ev)
	}
	require.Len(t, classes, len(ocsf.Classes()), "every class, the fallback included: %v", classes)
}
