package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/simulator"
)

// KillResult is a run killed with SIGKILL part way, then run again.
type KillResult struct {
	Run          WholeRun
	At           float64 // the share of the full run's pages fetched at the kill
	FullRequests int     // requests of an uninterrupted run
	KilledAfter  int     // pages answered before the kill
	Rerun        int     // requests of the rerun
	RerunWall    time.Duration
	Events       int  // distinct events in the output
	Exact        bool // every event once, the same set as the full run
}

// RunKill runs w once to the end, then again in a fresh state, kills that run
// with SIGKILL once at of the full run's pages were answered, and runs it
// again with the same arguments.
func RunKill(ctx context.Context, b Bins, w WholeRun, at float64) (KillResult, error) {
	res := KillResult{Run: w, At: at}
	fullIDs, full, err := exportOnce(ctx, b, w)
	if err != nil {
		return res, err
	}
	res.FullRequests = full

	st, err := prepare(ctx, b, &w, "kill")
	if err != nil {
		return res, err
	}
	defer st.close()
	cmd := exportCmd(ctx, b.Export, st.cfg, w.Sim.From, w.Sim.To)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return res, err
	}
	killAt := int(at * float64((w.Sim.Events+49)/50))
	for {
		stats, err := st.sim.stats(ctx)
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return res, err
		}
		if stats.OK >= killAt {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill() // SIGKILL
	_ = cmd.Wait()
	time.Sleep(300 * time.Millisecond) // requests in flight reach the server and are logged
	before, err := st.sim.stats(ctx)
	if err != nil {
		return res, err
	}
	res.KilledAfter = before.OK

	rerun := exportCmd(ctx, b.Export, st.cfg, w.Sim.From, w.Sim.To)
	var stderr bytes.Buffer
	rerun.Stderr = &stderr
	start := time.Now()
	if err := rerun.Run(); err != nil {
		return res, fmt.Errorf("rerun after SIGKILL: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	res.RerunWall = time.Since(start)
	after, err := st.sim.stats(ctx)
	if err != nil {
		return res, err
	}
	res.Rerun = answered(after.Log) - answered(before.Log)
	ids, err := readIDs(filepath.Join(st.dir, "ndjson"))
	if err != nil {
		return res, err
	}
	res.Events = len(ids)
	res.Exact = len(ids) == w.Sim.Events && len(ids) == len(fullIDs)
	for id, n := range ids {
		if n != 1 || fullIDs[id] != 1 {
			res.Exact = false
		}
	}
	return res, nil
}

// exportOnce runs w to the end in a fresh directory and returns the ids
// written and the requests the server answered.
func exportOnce(ctx context.Context, b Bins, w WholeRun) (map[string]int, int, error) {
	st, err := prepare(ctx, b, &w, "full")
	if err != nil {
		return nil, 0, err
	}
	defer st.close()
	cmd := exportCmd(ctx, b.Export, st.cfg, w.Sim.From, w.Sim.To)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("full run: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	stats, err := st.sim.stats(ctx)
	if err != nil {
		return nil, 0, err
	}
	ids, err := readIDs(filepath.Join(st.dir, "ndjson"))
	return ids, answered(stats.Log), err
}

// answered counts the requests of log that got an answer (429s included).
func answered(log []simulator.Request) int {
	n := 0
	for _, r := range log {
		if r.Status != 0 {
			n++
		}
	}
	return n
}

// readIDs counts each event id in the NDJSON files under dir.
func readIDs(dir string) (map[string]int, error) {
	ids := map[string]int{}
	err := eachNDJSON(dir, func(f *os.File) error {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for sc.Scan() {
			var rec struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				return err
			}
			ids[rec.ID]++
		}
		return sc.Err()
	})
	return ids, err
}

// PrintKill writes the kill-and-rerun figures.
func PrintKill(out io.Writer, r KillResult) {
	fmt.Fprintf(out, "kill: %d events over %d days, server %g req/s (%s), client %g req/s x %d workers\n",
		r.Run.Sim.Events, r.Run.Days, r.Run.Sim.Rate, r.Run.Sim.Model, r.Run.ClientRate, r.Run.Workers)
	fmt.Fprintf(out, "  full run            %d requests\n", r.FullRequests)
	fmt.Fprintf(out, "  SIGKILL after       %d pages answered (%.0f%% of the pages)\n", r.KilledAfter, 100*r.At)
	fmt.Fprintf(out, "  rerun               %d requests = %.1f%% of a full run, %.1f s\n", r.Rerun, 100*float64(r.Rerun)/float64(r.FullRequests), r.RerunWall.Seconds())
	fmt.Fprintf(out, "  output              %d distinct events, exact: %v\n", r.Events, r.Exact)
}
