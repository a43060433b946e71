package pipeline_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/verify"
)

// killedAt is a file sink whose Open of day at leaves the disk as a
// process killed there would (snap copies it) and stops the run.
type killedAt struct {
	*filesink.Sink
	at   string
	snap func()
}

func (k killedAt) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	if p.Date() == k.at {
		k.snap()
		return nil, errors.New("killed")
	}
	return k.Sink.Open(ctx, p)
}

// TestKilledBackfillChainRelinkedByTheNextRun: a backfill over days the
// sink holds, killed (SIGKILL) after rewriting two of them and never run
// again, leaves the third day linked to the manifest the second replaced.
// The next nightly run, of another day, links the days after the rewritten
// ones again, and verify passes (was: the chain stayed broken, and every
// weekly verify failed, until that range ran again).
func TestKilledBackfillChainRelinkedByTheNextRun(t *testing.T) {
	const days = 5
	_, base := startSim(t, func(c *simulator.Config) { c.Events, c.To = 1000, day0().AddDate(0, 0, days) })
	cfg := testConfig(t, base)
	all := pipeline.Range{From: day0(), To: day0().AddDate(0, 0, days)}
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, all, false)
	require.NoError(t, err)

	// The backfill: killed as it opens the third day.
	saved := t.TempDir()
	dirs := []string{cfg.State.Dir, cfg.Sinks[0].File.Dir}
	snap := func() {
		for i, d := range dirs {
			require.NoError(t, os.CopyFS(saved+"/"+string(rune('a'+i)), os.DirFS(d)))
		}
	}
	set, err := sinkset.Build(t.Context(), cfg.Sinks, nil)
	require.NoError(t, err)
	fs, ok := set.Sinks[0].(*filesink.Sink)
	require.True(t, ok)
	killed := killedAt{Sink: fs, at: day0().AddDate(0, 0, 2).Format(time.DateOnly), snap: snap}
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Sinks: []sinks.Sink{killed}}, all, false)
	require.ErrorContains(t, err, "killed")
	for i, d := range dirs {
		require.NoError(t, os.RemoveAll(d))
		require.NoError(t, os.Rename(saved+"/"+string(rune('a'+i)), d))
	}
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	require.True(t, rep.Failed(), "the chain is broken after the second day rewritten: %v", rep.Lines)

	// The next night exports the last day again (no later day to relink).
	last := pipeline.Range{From: day0().AddDate(0, 0, days-1), To: day0().AddDate(0, 0, days)}
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, last, false)
	require.NoError(t, err)
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
}
