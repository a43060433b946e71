package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/simulator"
)

// SimConfig is what a pachca-sim process serves.
type SimConfig struct {
	Events   int
	From, To time.Time
	Seed     int64
	// Rate is the server's limit in requests per second (0: none), enforced
	// as Model (a simulator.Limit* name) with a token bucket of Burst.
	Rate       float64
	Model      string
	Burst      int
	BlockAfter int
	Latency    time.Duration
	Jitter     time.Duration
	TieGroup   int // this many of the events in one millisecond (0: none)
}

// sim is a running pachca-sim process.
type sim struct {
	cmd  *exec.Cmd
	base string // the API base URL
}

// startSim starts bin as a pachca-sim process on a free loopback port.
func startSim(ctx context.Context, bin string, c SimConfig) (*sim, error) {
	args := []string{"-addr", "127.0.0.1:0", "-events", fmt.Sprint(c.Events),
		"-from", c.From.Format(time.RFC3339), "-to", c.To.Format(time.RFC3339), "-faults", "",
		"-seed", fmt.Sprint(max(c.Seed, 1)), "-latency", c.Latency.String(), "-jitter", c.Jitter.String()}
	if c.TieGroup > 0 {
		args = append(args, "-tie-group", fmt.Sprint(c.TieGroup))
	}
	if c.Rate > 0 {
		model := c.Model
		if model == "" {
			model = simulator.LimitTokenBucket
		}
		args = append(args, "-rate", fmt.Sprint(c.Rate), "-limit-model", model,
			"-burst", fmt.Sprint(max(c.Burst, 1)), "-block-after", fmt.Sprint(c.BlockAfter), "-block-for", "1m")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &sim{cmd: cmd}
	if s.base, err = firstLine(out, time.Minute); err != nil {
		s.stop()
		return nil, fmt.Errorf("pachca-sim: %w", err)
	}
	return s, nil
}

// stats reads the server's counters and request log.
func (s *sim) stats(ctx context.Context) (simulator.Stats, error) {
	var st simulator.Stats
	u := strings.TrimSuffix(s.base, simulator.BasePath) + "/_sim/stats"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("pachca-sim stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("pachca-sim stats: %w", err)
	}
	return st, nil
}

func (s *sim) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
}

// ExportConfig is the pipeline.yaml of a benchmarked pachca-export run.
type ExportConfig struct {
	Base    string
	Rate    float64 // source.requests_per_second
	Workers int     // source.concurrency
	Dir     string  // sinks and state go under it
}

// writeExportConfig writes a pipeline.yaml with an NDJSON sink (no
// compression) and a Parquet sink (zstd) under c.Dir and returns its path.
func writeExportConfig(c ExportConfig) (string, error) {
	path := filepath.Join(c.Dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`source:
  base_url: %s
  token: sim-token
  workspace: bench
  requests_per_second: %g
  concurrency: %d
sinks:
  - type: ndjson
    dir: %[4]s/ndjson
    compression: none
  - type: parquet
    dir: %[4]s/parquet
    compression: zstd
state:
  dir: %[4]s/state
`, c.Base, c.Rate, c.Workers, c.Dir)
	return path, os.WriteFile(path, []byte(yaml), 0o600)
}

// exportCmd is `pachca-export run` of [from, to) with the config at cfg.
func exportCmd(ctx context.Context, bin, cfg string, from, to time.Time) *exec.Cmd {
	return exec.CommandContext(ctx, bin, "run", "-c", cfg,
		"--from", from.Format(time.DateOnly), "--to", to.Format(time.DateOnly), "--log-level", "warn")
}

// firstLine reads the first line of r, the base URL pachca-sim prints.
func firstLine(r io.Reader, timeout time.Duration) (string, error) {
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() {
		br := bufio.NewReader(r)
		s, err := br.ReadString('\n')
		ch <- line{strings.TrimSpace(s), err}
		_, _ = io.Copy(io.Discard, br) // until the process exits
	}()
	select {
	case l := <-ch:
		if l.err != nil {
			return "", fmt.Errorf("no base URL on stdout: %w", l.err)
		}
		return l.s, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no base URL on stdout after %s", timeout)
	}
}

// period is the n UTC days before today.
func period(days int) (from, to time.Time) {
	to = time.Now().UTC().Truncate(24 * time.Hour)
	return to.AddDate(0, 0, -days), to
}

// stage is an export ready to run: a simulator of its own and a pipeline.yaml
// in a scratch directory.
type stage struct {
	sim *sim
	dir string // sinks and state
	cfg string // the pipeline.yaml
}

// prepare starts w's simulator (over w's period, which it sets) and writes
// its config; close undoes both.
func prepare(ctx context.Context, b Bins, w *WholeRun, prefix string) (*stage, error) {
	dir, err := os.MkdirTemp(b.Dir, "pachca-bench-"+prefix+"-")
	if err != nil {
		return nil, err
	}
	w.Sim.From, w.Sim.To = period(w.Days)
	s, err := startSim(ctx, b.Sim, w.Sim)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	st := &stage{sim: s, dir: dir}
	if st.cfg, err = writeExportConfig(ExportConfig{Base: s.base, Rate: w.ClientRate, Workers: w.Workers, Dir: dir}); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

func (st *stage) close() {
	st.sim.stop()
	os.RemoveAll(st.dir)
}

// eachNDJSON calls fn with every NDJSON file under dir, open.
func eachNDJSON(dir string, fn func(f *os.File) error) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ndjson") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := fn(f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
}
