// Package ocsftest gives the tests of the OCSF encoders their records and
// expected events: one raw API event per case of transform/testdata/golden
// (every event key of the OpenAPI document, edge cases, an unknown key),
// normalized, and the JSON form of each record's OCSF event.
package ocsftest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// Records returns one record per raw event of transform/testdata/golden,
// sorted by time (ties by id).
func Records(t testing.TB) []transform.Record {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	require.True(t, ok)
	dir := filepath.Join(filepath.Dir(self), "..", "..", "transform", "testdata", "golden")
	paths, err := filepath.Glob(filepath.Join(dir, "*.input.json"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := make([]transform.Record, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		require.NoError(t, err)
		rec, err := transform.Normalize(raw, "acme")
		require.NoError(t, err, p)
		out = append(out, rec)
	}
	sortByTime(out)
	return out
}

// Many returns n records cycling through Records, each with its own id and
// a time 37 ms after the previous one.
func Many(t testing.TB, n int) []transform.Record {
	t.Helper()
	base := Records(t)
	out := make([]transform.Record, n)
	start := base[0].CreatedAt
	for i := range out {
		r := base[i%len(base)]
		r.ID = r.ID[:min(len(r.ID), 24)] + "-" + strconv.Itoa(i)
		r.CreatedAt = start + int64(i)*37
		out[i] = r
	}
	return out
}

func sortByTime(recs []transform.Record) {
	slices.SortStableFunc(recs, func(a, b transform.Record) int {
		if c := cmp.Compare(a.CreatedAt, b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// Event returns the OCSF event of r as JSON decodes it (numbers exact).
func Event(t testing.TB, r *transform.Record) map[string]any {
	t.Helper()
	ev := ocsf.Map(r)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(&ev))
	doc, err := ocsfschema.Decode(buf.Bytes())
	require.NoError(t, err)
	return doc
}

// Simulated returns n records normalized from the simulator's events: the
// realistic mix of keys, details, bot actors and server-side events, with
// keys and details fields no spec lists yet when unknownKeys is set.
func Simulated(t testing.TB, n int, unknownKeys bool) []transform.Record {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Events, cfg.UnknownKeys, cfg.Seed = n, unknownKeys, 7
	srv, err := simulator.New(cfg)
	require.NoError(t, err)
	var out []transform.Record
	for _, e := range srv.Events() {
		rec, err := transform.Normalize(e.Raw, "acme")
		require.NoError(t, err)
		out = append(out, rec)
	}
	return out
}
