package pipeline_test

import (
	"bufio"
	"cmp"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestBigTieGroupDelivered: a day with a bulk operation's events, all in
// one millisecond and more than the records of a window held in memory to
// sort them, is delivered whole, each event once, the dropped key left out
// and counted, in the order of a day file (time, then id).
func TestBigTieGroupDelivered(t *testing.T) {
	const group = 5000
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.TieGroup = 8000, group
		c.From, c.To = day0(), day0().AddDate(0, 0, 1)
	})
	cfg := testConfig(t, base)
	cfg.Sinks[0].File.Compression = "none"
	cfg.Transform.DropEventKeys = []string{"user_login"}
	require.NoError(t, cfg.Validate())
	from, to := day0(), day0().AddDate(0, 0, 1)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)

	want := exporttest.Expected(sim, from, to, "user_login")
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
	require.EqualValues(t, 8000-len(want), sum.Dropped)

	// The file in the order of a day file.
	type key struct{ at, id string }
	var order []key
	f, err := os.Open(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+from.Format("2006-01-02"), "pachca-audit-"+from.Format("2006-01-02")+".ndjson"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			CreatedAt string `json:"created_at"`
			ID        string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		order = append(order, key{r.CreatedAt, r.ID})
	}
	require.NoError(t, sc.Err())
	require.Len(t, order, len(want))
	require.True(t, slices.IsSortedFunc(order, func(a, b key) int {
		return cmp.Or(strings.Compare(a.at, b.at), strings.Compare(a.id, b.id))
	}), "records out of order")
}
