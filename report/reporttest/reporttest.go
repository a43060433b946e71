// Package reporttest builds known datasets for the report's tests and
// writes them through the exporter's real sinks and encoders, so the tests
// read what an export writes.
package reporttest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

// Day0 is the first day of Dataset: the previous period is Day0..Day0+3d,
// the reported one Day0+3d..Day0+6d.
var Day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Planted facts of Dataset.
const (
	BurstActor    = "777"                     // 6 user_2fa_fail within 4 minutes on day 4
	SlowActor     = "888"                     // 5 user_2fa_fail 3 minutes apart: 12 minutes, no burst of 5 in 10m
	MidnightActor = "999"                     // a burst of 5 across the midnight between day 4 and 5
	UnknownKey    = "user_passkey_registered" // a key schema v1 does not know
)

// Rec returns a record of schema v1; ip "" means null.
func Rec(id string, at time.Time, key, actorID, ip, details string) transform.Record {
	r := transform.Record{ID: id, CreatedAt: at.UnixMilli(), EventKey: key, EventCategory: transform.Category(key),
		ActorID: actorID, ActorType: "User", EntityID: actorID, EntityType: "User", DetailsJSON: details, Workspace: "test"}
	if ip != "" {
		r.IPAddress = transform.NullString{Valid: true, Str: ip}
		r.UserAgent = transform.NullString{Valid: true, Str: "test-agent"}
	}
	if details == "" {
		r.DetailsJSON = "{}"
	}
	return r
}

// Dataset returns six days of events from Day0: a seeded random mix of
// keys, actors and addresses (some without an address, some of an unknown
// key), and the planted bursts above.
func Dataset() []transform.Record {
	rng := rand.New(rand.NewPCG(7, 11))
	keys := []string{"message_created", "message_created", "message_created", "user_login", "user_login",
		"user_logout", "user_2fa_success", "user_2fa_fail", "reaction_created", "search_messages_api",
		"kms_encrypt", "kms_decrypt", "user_role_changed", "access_token_created", "access_token_destroy",
		"bot_scopes_updated", "dlp_violation_detected", "audit_events_accessed", "chat_created", "tag_created", UnknownKey}
	details := map[string]string{
		"user_role_changed":      `{"new_company_role":"admin","previous_company_role":"user","initiator_id":10001}`,
		"access_token_created":   `{"scopes":["messages:read","users:read"]}`,
		"dlp_violation_detected": `{"dlp_rule_id":5,"dlp_rule_name":"Card numbers","action_message":"blocked","conditions_matched":true,"user_id":10002}`,
		"kms_encrypt":            `{"reason":"export"}`,
		"bot_scopes_updated":     `{"bot_id":900001,"added_scopes":["chats:read"],"removed_scopes":[]}`,
	}
	var recs []transform.Record
	n := 0
	id := func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
	for d := range 6 {
		day := Day0.AddDate(0, 0, d)
		for range 300 + 60*d {
			at := day.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
			key := keys[rng.IntN(len(keys))]
			actor := fmt.Sprint(10001 + rng.IntN(25))
			ip := ""
			if rng.IntN(20) > 0 {
				ip = fmt.Sprintf("203.0.113.%d", 1+rng.IntN(30))
			}
			recs = append(recs, Rec(id(), at, key, actor, ip, details[key]))
		}
	}
	day4 := Day0.AddDate(0, 0, 3)
	for i := range 6 {
		recs = append(recs, Rec(id(), day4.Add(10*time.Hour+time.Duration(i)*45*time.Second), "user_2fa_fail", BurstActor, "198.51.100.7", ""))
	}
	for i := range 5 {
		recs = append(recs, Rec(id(), day4.Add(14*time.Hour+time.Duration(i)*3*time.Minute), "user_2fa_fail", SlowActor, "198.51.100.8", ""))
	}
	midnight := Day0.AddDate(0, 0, 4)
	for i := range 5 {
		recs = append(recs, Rec(id(), midnight.Add(-2*time.Minute+time.Duration(i)*time.Minute), "user_2fa_fail", MidnightActor, "", ""))
	}
	return recs
}

// Write delivers recs in [from, to) through s, one partition per UTC day,
// as a run does.
func Write(t testing.TB, s sinks.Sink, from, to time.Time, recs []transform.Record) {
	t.Helper()
	for day := from.Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		WritePartition(t, s, sinks.NewPartition(day, from, to, "test-run"), recs)
	}
}

// WritePartition delivers the records of recs in p's range through s.
func WritePartition(t testing.TB, s sinks.Sink, p sinks.Partition, recs []transform.Record) {
	t.Helper()
	var batch []transform.Record
	for _, r := range recs {
		if r.CreatedAt >= p.From.UnixMilli() && r.CreatedAt < p.To.UnixMilli() {
			batch = append(batch, r)
		}
	}
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), batch))
	_, err = w.Commit(t.Context())
	require.NoError(t, err)
}

// DataFile writes the records of recs on Day0 through a file sink of
// format and returns the bytes of the one data file it wrote: a seed of
// the fuzz targets that read data files back (report, verify).
func DataFile(t testing.TB, format sinks.Format, recs []transform.Record) []byte {
	t.Helper()
	dir := t.TempDir()
	Write(t, filesink.New(dir, format), Day0, Day0.AddDate(0, 0, 1), recs)
	files, err := filepath.Glob(filepath.Join(dir, "dt="+Day0.Format(time.DateOnly), "pachca-*"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	return b
}

// FileSink returns a file sink of format (parquet, ndjson, ndjson.gz,
// ndjson.zst) under dir.
func FileSink(t testing.TB, dir, format string) sinks.Sink {
	t.Helper()
	var f sinks.Format
	var err error
	switch format {
	case "parquet":
		f, err = parquetfmt.Format("zstd")
	case "ndjson":
		f, err = ndjson.Format("none")
	case "ndjson.gz":
		f, err = ndjson.Format("gzip")
	case "ndjson.zst":
		f, err = ndjson.Format("zstd")
	default:
		t.Fatalf("reporttest: unknown format %q", format)
	}
	require.NoError(t, err)
	return filesink.New(dir, f)
}
