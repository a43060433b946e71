package parquetfmt_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

var day = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func testPartition() sinks.Partition {
	return sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-0001")
}

func str(s string) transform.Value   { return transform.Value{Valid: true, Str: s} }
func i64(n int64) transform.Value    { return transform.Value{Valid: true, Int: n} }
func boolean(b bool) transform.Value { return transform.Value{Valid: true, Bool: b} }
func list(s ...string) transform.Value {
	return transform.Value{Valid: true, List: append([]string{}, s...)}
}
func null(s string) transform.NullString { return transform.NullString{Valid: true, Str: s} }

// edgeRecords cover every kind with null and non-null values, empty lists,
// unicode and identifiers beyond 2^53.
func edgeRecords() []transform.Record {
	base := day.Add(90 * time.Minute).UnixMilli()
	r0 := transform.Record{
		ID: "7f3c1f0e-0000-4000-8000-000000000001", CreatedAt: base,
		EventKey: "user_updated", EventCategory: "employees",
		ActorID: "9007199254740993", ActorType: "user", EntityID: "18446744073709551615", EntityType: "user",
		IPAddress: null("2001:db8::1"), UserAgent: null("Mozilla/5.0 (X11; Linux x86_64) Пачка/3.2 🦊"),
		DetailsJSON: `{"changed_attrs":[],"context":"sso_login"}`, Workspace: "acme",
	}
	r0.Details[transform.DChangedAttrs] = list() // empty, not null
	r0.Details[transform.DContext] = str("sso_login")

	r1 := transform.Record{
		ID: "7f3c1f0e-0000-4000-8000-000000000002", CreatedAt: base + 1,
		EventKey: "bot_scopes_updated", EventCategory: "bots",
		ActorID: "12", ActorType: "user", EntityID: "9007199254740993", EntityType: "bot",
		DetailsJSON: `{"added_scopes":["messages:read","чаты:write"],"removed_scopes":[""],"bot_id":9007199254740993}`,
		Workspace:   "Рабочее пространство «Ромашка»",
	}
	r1.Details[transform.DAddedScopes] = list("messages:read", "чаты:write")
	r1.Details[transform.DRemovedScopes] = list("")
	r1.Details[transform.DBotID] = str("9007199254740993")
	r1.Details[transform.DChanges] = str(`{"webhook":{"url":"https://example.com/ü"}}`)

	r2 := transform.Record{
		ID: "7f3c1f0e-0000-4000-8000-000000000003", CreatedAt: -1, // before the epoch: still exact
		EventKey: "search_messages_api", EventCategory: "search",
		ActorID: "1", ActorType: "user", EntityID: "", EntityType: "",
		IPAddress: null(""), UserAgent: transform.NullString{},
		DetailsJSON: `{"limit":-9223372036854775808,"query_present":false}`, Workspace: "acme",
	}
	r2.Details[transform.DLimit] = i64(-9223372036854775808)
	r2.Details[transform.DQueryPresent] = boolean(false)
	r2.Details[transform.DCursorPresent] = boolean(true)
	r2.Details[transform.DFilters] = str("{}")

	r3 := transform.Record{
		ID: "7f3c1f0e-0000-4000-8000-000000000004", CreatedAt: 253402300799999, // 9999-12-31T23:59:59.999Z
		EventKey: "some_future_key", EventCategory: "other",
		ActorID: "a\x00b", ActorType: "user", EntityID: "e\n\"q\"", EntityType: "chat",
		DetailsJSON: `{}`, Workspace: "",
	}
	r3.Details[transform.DSize] = i64(9223372036854775807)
	r3.Details[transform.DDuration] = i64(0)
	return []transform.Record{r0, r1, r2, r3}
}

var eventKeys = []struct{ key, category string }{
	{"user_login", "auth"}, {"user_logout", "auth"}, {"message_created", "messages"},
	{"message_updated", "messages"}, {"reaction_created", "reactions_threads"},
	{"user_chat_join", "chat_members"}, {"user_updated", "employees"},
	{"search_messages_api", "search"}, {"access_token_created", "tokens"},
	{"video_call_finished", "video_calls"}, {"dlp_violation_detected", "security"},
}

// genRecords returns n realistic records: about 30% carry details, a fifth
// are server-side (no ip, no user agent).
func genRecords(n int, seed uint64) []transform.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	agents := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Pachca/4.12.1 (iPhone; iOS 18.1; Scale/3.00)",
		"Pachca/4.11.0 (Android 14; Pixel 8)",
		"python-requests/2.32.3",
	}
	recs := make([]transform.Record, n)
	base := day.UnixMilli()
	for i := range recs {
		k := eventKeys[rng.IntN(len(eventKeys))]
		actor := fmt.Sprint(100000 + rng.IntN(500))
		r := transform.Record{
			ID:            fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Uint64()&(1<<48-1)),
			CreatedAt:     base + int64(i)*250 + int64(rng.IntN(250)),
			EventKey:      k.key,
			EventCategory: k.category,
			ActorID:       actor,
			ActorType:     "user",
			EntityID:      fmt.Sprint(1000000 + rng.IntN(100000)),
			EntityType:    "message",
			DetailsJSON:   "{}",
			Workspace:     "acme",
		}
		if rng.IntN(5) > 0 {
			r.IPAddress = null(fmt.Sprintf("10.%d.%d.%d", rng.IntN(4), rng.IntN(256), rng.IntN(256)))
			r.UserAgent = null(agents[rng.IntN(len(agents))])
		}
		if rng.IntN(10) < 3 {
			switch rng.IntN(3) {
			case 0:
				r.Details[transform.DChatID] = str(fmt.Sprint(rng.IntN(1 << 40)))
				r.Details[transform.DInviterID] = str(actor)
				r.DetailsJSON = fmt.Sprintf(`{"chat_id":%s,"inviter_id":%s}`, r.Details[transform.DChatID].Str, actor)
			case 1:
				r.Details[transform.DSearchType] = str("messages")
				r.Details[transform.DQueryPresent] = boolean(rng.IntN(2) == 0)
				r.Details[transform.DCursorPresent] = boolean(false)
				r.Details[transform.DLimit] = i64(int64(rng.IntN(100)))
				r.Details[transform.DFilters] = str(`{"chat_ids":[1,2,3]}`)
				r.DetailsJSON = fmt.Sprintf(`{"search_type":"messages","query_present":%t,"cursor_present":false,"limit":%d,"filters":{"chat_ids":[1,2,3]}}`,
					r.Details[transform.DQueryPresent].Bool, r.Details[transform.DLimit].Int)
			case 2:
				r.Details[transform.DScopes] = list([]string{"messages:read", "chats:read", "users:read"}[:rng.IntN(4)]...)
				r.DetailsJSON = `{"scopes":["messages:read"]}`
			}
		}
		recs[i] = r
	}
	return recs
}

// encode writes recs in batches of batch records to a file and returns its path.
func encode(t testing.TB, recs []transform.Record, batch int, compression string, opts ...parquetfmt.Option) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.parquet")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	enc, err := parquetfmt.NewEncoder(f, testPartition(), compression, opts...)
	require.NoError(t, err)
	for len(recs) > 0 {
		n := min(batch, len(recs))
		require.NoError(t, enc.Write(recs[:n]))
		recs = recs[n:]
	}
	require.NoError(t, enc.Close())
	require.NoError(t, f.Close())
	return path
}

// readArrow reads a file with arrow-go's pqarrow reader. ReadTable drops the
// schema metadata, so the schema is the reader's Schema() with the table's fields.
func readArrow(t testing.TB, path string) (arrow.Table, *file.Reader, *arrow.Schema) {
	t.Helper()
	rdr, err := file.OpenParquetFile(path, false)
	require.NoError(t, err)
	t.Cleanup(func() { rdr.Close() })
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1000}, mem)
	require.NoError(t, err)
	tbl, err := fr.ReadTable(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() {
		tbl.Release()
		mem.AssertSize(t, 0)
	})
	sc, err := fr.Schema()
	require.NoError(t, err)
	md := sc.Metadata()
	return tbl, rdr, arrow.NewSchema(tbl.Schema().Fields(), &md)
}

// recordsOf converts a table back into records, checking the non-nullable
// columns hold no null and schema_version is the constant.
func recordsOf(t testing.TB, tbl arrow.Table) []transform.Record {
	t.Helper()
	recs := make([]transform.Record, tbl.NumRows())
	details := map[string]int{}
	for i, f := range transform.DetailFields() {
		details[f.Column().Name] = i
	}
	for ci, f := range tbl.Schema().Fields() {
		row := 0
		for _, chunk := range tbl.Column(ci).Data().Chunks() {
			if !f.Nullable {
				require.Zero(t, chunk.NullN(), f.Name)
			}
			for i := 0; i < chunk.Len(); i++ {
				setField(t, &recs[row], f.Name, details, chunk, i)
				row++
			}
		}
		require.Equal(t, len(recs), row, f.Name)
	}
	return recs
}

func setField(t testing.TB, r *transform.Record, name string, details map[string]int, a arrow.Array, i int) {
	s := func() string { return a.(*array.String).Value(i) }
	ns := func() transform.NullString {
		if a.IsNull(i) {
			return transform.NullString{}
		}
		return null(s())
	}
	switch name {
	case "id":
		r.ID = s()
	case "created_at":
		r.CreatedAt = int64(a.(*array.Timestamp).Value(i))
	case "event_key":
		r.EventKey = s()
	case "event_category":
		r.EventCategory = s()
	case "actor_id":
		r.ActorID = s()
	case "actor_type":
		r.ActorType = s()
	case "entity_id":
		r.EntityID = s()
	case "entity_type":
		r.EntityType = s()
	case "ip_address":
		r.IPAddress = ns()
	case "user_agent":
		r.UserAgent = ns()
	case "details_json":
		r.DetailsJSON = s()
	case "workspace":
		r.Workspace = s()
	case "schema_version":
		require.Equal(t, transform.SchemaVersion, s())
	default:
		d, ok := details[name]
		require.True(t, ok, name)
		if a.IsNull(i) {
			return
		}
		v := &r.Details[d]
		v.Valid = true
		switch a := a.(type) {
		case *array.String:
			v.Str = a.Value(i)
		case *array.Int64:
			v.Int = a.Value(i)
		case *array.Boolean:
			v.Bool = a.Value(i)
		case *array.List:
			start, end := a.ValueOffsets(i)
			vals := a.ListValues().(*array.String)
			v.List = []string{}
			for j := start; j < end; j++ {
				require.False(t, vals.IsNull(int(j)), "null list element in %s", name)
				v.List = append(v.List, vals.Value(int(j)))
			}
		default:
			t.Fatalf("column %s: unexpected array %T", name, a)
		}
	}
}

// failAfter accepts limit bytes, then fails every write.
type failAfter struct {
	limit, n int
}

func (w *failAfter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		k := max(w.limit-w.n, 0)
		w.n += k
		return k, fmt.Errorf("disk full after %d bytes", w.limit)
	}
	w.n += len(p)
	return len(p), nil
}

// closeTracker reports whether the encoder closed the writer it was given.
type closeTracker struct {
	bytes.Buffer
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// peakAllocator tracks the largest amount of memory held at once.
type peakAllocator struct {
	memory.Allocator
	cur, peak atomic.Int64
}

func (a *peakAllocator) add(n int) {
	c := a.cur.Add(int64(n))
	for {
		p := a.peak.Load()
		if c <= p || a.peak.CompareAndSwap(p, c) {
			return
		}
	}
}

func (a *peakAllocator) Allocate(size int) []byte {
	a.add(size)
	return a.Allocator.Allocate(size)
}

func (a *peakAllocator) Reallocate(size int, b []byte) []byte {
	a.add(size - len(b))
	return a.Allocator.Reallocate(size, b)
}

func (a *peakAllocator) Free(b []byte) {
	a.add(-len(b))
	a.Allocator.Free(b)
}
