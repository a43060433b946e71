package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// RSSConfig describes the peak-memory run: a real pachca-export process
// exporting Events events of Days UTC days to NDJSON and Parquet, against a
// pachca-sim process with no latency and no rate limit.
type RSSConfig struct {
	ExportBin, SimBin string
	Events            int
	Days              int
	TieGroup          int    // this many of the events in one millisecond (0: none)
	Dir               string // scratch directory; removed afterwards
}

// RSSResult is what the run measured.
type RSSResult struct {
	Config    RSSConfig
	PeakRSS   int64 // bytes, from the child's rusage
	Elapsed   time.Duration
	Lines     int64 // NDJSON lines written
	NDJSON    int64 // bytes of NDJSON files
	Parquet   int64 // bytes of Parquet files
	UserCPU   time.Duration
	SystemCPU time.Duration
}

// RunRSS starts pachca-sim, then pachca-export run, waits for both and reads
// the exporter's peak resident set size. The simulator is a separate process
// so that its copy of the events is not counted.
func RunRSS(ctx context.Context, c RSSConfig) (RSSResult, error) {
	res := RSSResult{Config: c}
	w := WholeRun{Sim: SimConfig{Events: c.Events, TieGroup: c.TieGroup}, Days: c.Days, ClientRate: 2000, Workers: 8}
	st, err := prepare(ctx, Bins{Export: c.ExportBin, Sim: c.SimBin, Dir: c.Dir}, &w, "rss")
	if err != nil {
		return res, err
	}
	defer st.close()
	exp := exportCmd(ctx, c.ExportBin, st.cfg, w.Sim.From, w.Sim.To)
	var stderr bytes.Buffer
	exp.Stderr = &stderr
	t0 := time.Now()
	if err := exp.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", c.ExportBin, err)
	}
	// ru_maxrss of a child counts the parent's resident set at fork time
	// (Linux keeps it across exec), and this process may hold a simulator
	// from the extraction runs: read the child's own high-water mark instead.
	hwm := make(chan int64, 1)
	stop := make(chan struct{})
	go func() { hwm <- pollHWM(exp.Process.Pid, stop) }()
	err = exp.Wait()
	close(stop)
	peak := <-hwm
	if err != nil {
		return res, fmt.Errorf("pachca-export run: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	res.Elapsed = time.Since(t0)
	ru, ok := exp.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return res, errors.New("no rusage for the child on this platform")
	}
	res.PeakRSS = peak
	if peak == 0 { // no /proc: fall back to rusage, which may overstate
		res.PeakRSS = ru.Maxrss
		if runtime.GOOS != "darwin" {
			res.PeakRSS *= 1024 // Linux reports KiB; macOS bytes
		}
	}
	res.UserCPU, res.SystemCPU = time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
	res.Lines, res.NDJSON, err = countLines(filepath.Join(st.dir, "ndjson"))
	if err != nil {
		return res, err
	}
	res.Parquet, err = dirSize(filepath.Join(st.dir, "parquet"))
	return res, err
}

func countLines(dir string) (lines, size int64, err error) {
	buf := make([]byte, 1<<20)
	err = eachNDJSON(dir, func(f *os.File) error {
		for {
			n, rerr := f.Read(buf)
			lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
			size += int64(n)
			if rerr == io.EOF {
				return nil
			}
			if rerr != nil {
				return rerr
			}
		}
	})
	return lines, size, err
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}

// PrintRSS writes the peak-memory figures as labelled lines.
func PrintRSS(w io.Writer, r RSSResult) {
	c := r.Config
	ties := ""
	if c.TieGroup > 0 {
		ties = fmt.Sprintf(" (%d of them in one millisecond)", c.TieGroup)
	}
	fmt.Fprintf(w, "rss: pachca-export run, %d events%s over %d day(s) to NDJSON (none) and Parquet (zstd), simulator in its own process, no latency, no limit\n", c.Events, ties, c.Days)
	fmt.Fprintf(w, "  peak RSS            %.1f MiB\n", float64(r.PeakRSS)/(1<<20))
	fmt.Fprintf(w, "  wall time           %s (%.0f events/s)\n", r.Elapsed.Round(10*time.Millisecond), float64(r.Lines)/r.Elapsed.Seconds())
	fmt.Fprintf(w, "  cpu time            user %s, system %s\n", r.UserCPU.Round(10*time.Millisecond), r.SystemCPU.Round(10*time.Millisecond))
	fmt.Fprintf(w, "  records written     %d NDJSON lines (%.0f MiB), Parquet %.1f MiB\n", r.Lines, float64(r.NDJSON)/(1<<20), float64(r.Parquet)/(1<<20))
}

// pollHWM reads VmHWM (the peak resident set of the process's own memory)
// from /proc every 20 ms until stop is closed, and returns the last value
// read, in bytes; 0 without /proc.
func pollHWM(pid int, stop <-chan struct{}) int64 {
	var peak int64
	path := fmt.Sprintf("/proc/%d/status", pid)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kib int64
					if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kib); err == nil && kib*1024 > peak {
						peak = kib * 1024
					}
				}
			}
		}
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}
