// Command reportgen writes a large synthetic export for the report's
// benchmark (make bench-report): DAYS days of EVENTS events each, through
// the exporter's own file sinks and encoders, with the simulator's key
// weights, 5,000 actors (-actors), a random address per event (the worst case for
// the top-addresses counters) and details for the sensitive keys.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

func main() {
	out := flag.String("out", "out/bench-report", "output directory (parquet/ and, with -ndjson, ndjson/)")
	days := flag.Int("days", 90, "days")
	perDay := flag.Int("events", 100_000, "events per day")
	from := flag.String("from", "2026-08-01", "first day")
	withNDJSON := flag.Bool("ndjson", false, "also write gzip NDJSON")
	actors := flag.Int("actors", 5000, "distinct actors (users 10001 on)")
	flag.Parse()
	start, err := time.Parse(time.DateOnly, *from)
	if err == nil {
		err = run(*out, start, *days, *perDay, *actors, *withNDJSON)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reportgen:", err)
		os.Exit(1)
	}
}

// weights are the simulator's relative key frequencies (simulator/keys.go).
var weights = map[string]int{"message_created": 40, "user_login": 25, "reaction_created": 12, "message_updated": 12,
	"user_logout": 6, "user_2fa_success": 6, "message_deleted": 3, "reaction_deleted": 3, "thread_created": 3,
	"user_2fa_fail": 3, "user_chat_join": 3, "search_messages_api": 3, "kms_encrypt": 3, "kms_decrypt": 3,
	"user_updated": 2, "user_chat_leave": 2, "video_call_started": 2, "video_call_finished": 2,
	"search_users_api": 2, "search_chats_api": 2}

var details = map[string]string{
	"user_role_changed":      `{"new_company_role":"admin","previous_company_role":"user","initiator_id":10001}`,
	"access_token_created":   `{"scopes":["messages:read","users:read"]}`,
	"dlp_violation_detected": `{"dlp_rule_id":5,"dlp_rule_name":"Card numbers (PCI DSS)","action_message":"The message was blocked","conditions_matched":true,"user_id":10002}`,
	"kms_encrypt":            `{"reason":"message_encryption"}`,
	"kms_decrypt":            `{"reason":"search_indexing"}`,
	"message_created":        `{"chat_id":300042,"message_id":1900123}`,
}

func run(out string, start time.Time, days, perDay, actors int, withNDJSON bool) error {
	pf, err := parquetfmt.Format("zstd")
	if err != nil {
		return err
	}
	targets := []sinks.Sink{filesink.New(filepath.Join(out, "parquet"), pf)}
	if withNDJSON {
		nf, err := ndjson.Format("gzip")
		if err != nil {
			return err
		}
		targets = append(targets, filesink.New(filepath.Join(out, "ndjson"), nf))
	}
	var keys []string
	for _, k := range transform.EventKeys() {
		w := max(weights[k], 1)
		for range w {
			keys = append(keys, k)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	batch := make([]transform.Record, 0, 5000)
	n := 0
	for d := range days {
		day := start.AddDate(0, 0, d)
		p := sinks.NewPartition(day, day, day.AddDate(0, 0, 1), "reportgen")
		var ws []sinks.Writer
		for _, s := range targets {
			w, err := s.Open(ctx, p)
			if err != nil {
				return err
			}
			ws = append(ws, w)
		}
		step := int64(24*time.Hour/time.Millisecond) / int64(perDay)
		for i := range perDay {
			n++
			key := keys[rng.IntN(len(keys))]
			actor := fmt.Sprint(10001 + rng.IntN(actors))
			r := transform.Record{
				ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", rng.Uint32(), n), CreatedAt: day.UnixMilli() + int64(i)*step,
				EventKey: key, EventCategory: transform.Category(key), ActorID: actor, ActorType: "User",
				EntityID: actor, EntityType: "User", DetailsJSON: "{}", Workspace: "bench",
			}
			if d, ok := details[key]; ok {
				r.DetailsJSON = d
			}
			if rng.IntN(100) >= 3 {
				r.IPAddress = transform.NullString{Valid: true, Str: fmt.Sprintf("%d.%d.%d.%d", 31+rng.IntN(190), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))}
				r.UserAgent = transform.NullString{Valid: true, Str: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}
			}
			batch = append(batch, r)
			if len(batch) == cap(batch) || i == perDay-1 {
				for _, w := range ws {
					if err := w.Write(ctx, batch); err != nil {
						return err
					}
				}
				batch = batch[:0]
			}
		}
		for _, w := range ws {
			if _, err := w.Commit(ctx); err != nil {
				return err
			}
		}
	}
	fmt.Printf("reportgen: %d events, %d days from %s, under %s\n", n, days, start.Format(time.DateOnly), out)
	return nil
}
