package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"time"
	// The zones of --time-zone where the host has no zone database: the
	// image is FROM scratch (400 KiB of the 51 MiB binary, stripped).
	_ "time/tzdata"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/report"
	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/sinkset"
)

func reportCommand() *command {
	var c *command // its flag errors read as every command's
	c = &command{
		name:     "report",
		synopsis: "[-c FILE [--sink N] | DIR] [--from T] [--to T] [--time-zone ZONE] [-o report.html]",
		summary:  "write a self-contained HTML security digest of a period",
		about: `Reads what a parquet, ndjson or S3 sink holds (the first one of FILE, sinks[N],
or the directory DIR) for the period and writes one HTML page that works
offline: events per day and category, failed 2FA by hour and actor with the
bursts the alert rules would flag, top actors and addresses, the sensitive
changes, and the comparison with the period before. Days, hours and times
are --time-zone's (UTC by default), whose days span two of the output's UTC
day folders each. A period the output does not cover exits 2 naming the
missing days; a damaged file exits 1 naming it.`,
		args: true,
		setup: func(fs *flags, e *env) func(context.Context, []string) error {
			cfgPath := fs.String("c", "", "the pipeline configuration `FILE`: read its first parquet, ndjson or s3 sink")
			sinkN := fs.Int("sink", 0, "with -c: read sinks[`N`] instead of the first file or s3 sink")
			from := fs.String("from", "", "start of the period, inclusive (`T`, a date is 00:00 of --time-zone; default: 7 days before --to)")
			to := fs.String("to", "", "end of the period, exclusive (`T`, a date is 00:00 of --time-zone; default: today 00:00 of --time-zone)")
			zone := fs.String("time-zone", "UTC", "the IANA time `ZONE` of the page's days, hours and times (Europe/Moscow)")
			out := fs.String("o", "report.html", "output `FILE` (- for standard output)")
			var lf logFlags
			lf.register(fs)
			return func(ctx context.Context, rest []string) error {
				// A directory may come before, between or after the flags.
				var dirs []string
				for len(rest) > 0 {
					dirs = append(dirs, rest[0])
					if err := fs.Parse(rest[1:]); errors.Is(err, flag.ErrHelp) {
						c.help(e.stdout, fs)
						return nil
					} else if err != nil {
						return c.flagError(fs, err)
					}
					rest = fs.Args()
				}
				n := -1 // not given
				sinkSet := false
				fs.Visit(func(f *flag.Flag) { sinkSet = sinkSet || f.Name == "sink" })
				if sinkSet {
					if *sinkN < 0 {
						return usageErr("report: --sink %d: give a sink's index, 0 or more", *sinkN)
					}
					n = *sinkN
				}
				log, err := lf.logger(e)
				if err != nil {
					return err
				}
				loc, err := reportZone(*zone)
				if err != nil {
					return err
				}
				return e.report1(ctx, log, dirs, *cfgPath, n, *from, *to, loc, *out)
			}
		},
	}
	return c
}

// reportZone loads the zone of --time-zone, from the zone database built
// into the binary (time/tzdata) where the host has none, as in the image,
// FROM scratch.
func reportZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		// LoadLocation takes both as the host's zone: a page would then
		// depend on where it was written without naming the zone.
		return nil, usageErr("report: --time-zone %q: give an IANA zone name such as Europe/Moscow, or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, usageErr("report: --time-zone %s: unknown zone: give an IANA zone name such as Europe/Moscow, or UTC", name)
	}
	return loc, nil
}

// inZone reads a --from or --to that is a date as 00:00 of that day in
// loc; a time with Z or an offset is the instant it names, whatever loc.
func inZone(v string, t time.Time, loc *time.Location) time.Time {
	if t.IsZero() || len(v) != len(time.DateOnly) {
		return t
	}
	y, m, d := t.Date() // ParseTime read the date as 00:00 UTC
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// report1 writes the report asked for.
func (e *env) report1(ctx context.Context, log *slog.Logger, dirs []string, cfgPath string, sinkN int, from, to string, loc *time.Location, out string) error {
	if to == "now" {
		// The output ends behind now (period.lag, the last run or follow
		// cycle): such a period is never covered, and would exit 2.
		return usageErr("report: --to now: the exported output ends behind now (by period.lag at least), so the period would not be covered; give the end of what was exported: %s", config.TimeForms)
	}
	f, t, _, err := parseRange(from, to, nil)
	if err != nil {
		return err
	}
	f, t = inZone(from, f, loc), inZone(to, t, loc)
	if t.IsZero() {
		// Today's midnight on the zone's clock; the 7 days before it by
		// its calendar, whose days may last 23 or 25 hours.
		y, m, d := time.Now().In(loc).Date()
		t = time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	if f.IsZero() {
		f = t.In(loc).AddDate(0, 0, -7)
	}
	if !f.Before(t) {
		if to == "" { // today so far: --to is not the day's end
			return usageErr("report: --from %s is not before today 00:00 %s, where the period ends without --to: give --to (an RFC 3339 time) to report on today so far",
				f.In(loc).Format(time.RFC3339), loc)
		}
		return usageErr("report: --from %s is not before --to %s", f.In(loc).Format(time.RFC3339), t.In(loc).Format(time.RFC3339))
	}
	o := report.Options{From: f, To: t, Location: loc, Version: version()}
	switch {
	case len(dirs) > 1:
		return usageErr("report: one directory, got %d (%s)", len(dirs), strings.Join(dirs, ", "))
	case len(dirs) == 1 && cfgPath != "":
		return usageErr("report: give -c pipeline.yaml or a directory, not both")
	case sinkN < -1 || sinkN >= 0 && cfgPath == "" && len(dirs) == 0:
		return usageErr("report: --sink %d: give -c pipeline.yaml and a sink's index, 0 or more", sinkN)
	case len(dirs) == 1:
		if sinkN >= 0 {
			return usageErr("report: --sink needs -c pipeline.yaml")
		}
		switch fi, err := os.Stat(dirs[0]); {
		case errors.Is(err, fs.ErrNotExist):
			return usageErr("report: %s: no such directory", dirs[0])
		case err != nil:
			return usageErr("report: %v", err)
		case !fi.IsDir():
			return usageErr("report: %s is not a directory", dirs[0])
		}
		if err := outsideOutput(out, dirs[0]); err != nil {
			return err
		}
		o.Store = filesink.ReadOnly(dirs[0])
		return e.writeReport(ctx, log, o, out)
	case cfgPath != "":
		sk, err := e.reportSink(ctx, cfgPath, sinkN, out, &o)
		if err != nil {
			return err
		}
		err = e.writeReport(ctx, log, o, out)
		if cerr := sk.Close(ctx); cerr != nil && err == nil {
			err = fmt.Errorf("report: close %s: %w", sk.Name(), cerr)
		}
		return err
	}
	return usageErr("report: which output? give -c pipeline.yaml or the directory of a parquet or ndjson sink")
}

// reportSink builds the sink of the configuration the report reads (with
// the one sink factory, sinkset), sets o's store to its root and takes the
// configuration's alert rules. The page's path out must lie outside every
// file sink's directory. The caller closes the sink.
func (e *env) reportSink(ctx context.Context, path string, n int, out string, o *report.Options) (sinks.Sink, error) {
	cfg, err := e.loadConfig(path, "", nil)
	if err != nil {
		return nil, err
	}
	o.Rules, o.RulesFrom = cfg.Alerts.Rules, filepath.Base(path)
	pick, ocsfSinks := -1, 0
	for i, s := range cfg.Sinks {
		if i == n {
			pick = i
			break
		}
		if n < 0 && (s.File != nil || s.S3 != nil) {
			if sinkOCSF(s) { // the report reads schema v1 only
				ocsfSinks++
				continue
			}
			pick = i
			break
		}
	}
	switch {
	case n >= len(cfg.Sinks):
		return nil, usageErr("report: --sink %d: %s has %d sink(s) (0..%d)", n, path, len(cfg.Sinks), len(cfg.Sinks)-1)
	case pick < 0 && ocsfSinks > 0:
		return nil, usageErr("report: %s has no parquet, ndjson or s3 sink of schema %s to read: the report cannot read OCSF events (schema: ocsf)", path, shape.SchemaV1)
	case pick < 0:
		return nil, usageErr("report: %s has no parquet, ndjson or s3 sink to read", path)
	case sinkOCSF(cfg.Sinks[pick]):
		return nil, usageErr("report: sinks[%d] writes OCSF events (schema: ocsf): the report reads only %s output; give --sink a sink without schema: ocsf", pick, shape.SchemaV1)
	}
	sc := cfg.Sinks[pick]
	if sc.File == nil && sc.S3 == nil {
		return nil, usageErr("report: sinks[%d] is %s: the report reads parquet, ndjson and s3 sinks", pick, sc.Type)
	}
	for _, s := range cfg.Sinks { // verify reads every one
		if s.File == nil {
			continue
		}
		if err := outsideOutput(out, s.File.Dir); err != nil {
			return nil, err
		}
	}
	sk, err := sinkset.BuildOne(ctx, sc, io.Discard)
	if err != nil {
		return nil, usageErr("%s: sinks[%d]: %w", path, pick, err)
	}
	rooted, ok := sk.(sinks.Rooted)
	if !ok { // every file and S3 sink is
		return nil, errors.Join(fmt.Errorf("report: sinks[%d] %s has no root to read", pick, sk.Name()), sk.Close(ctx))
	}
	o.Store = rooted.Root()
	if sc.S3 != nil {
		o.TempDir = sc.S3.TempDir
	}
	return sk, nil
}

// outsideOutput refuses a page path out inside dir, an output of the
// export: the page would be a file there that is not the export's, which
// verify reports as a failure.
func outsideOutput(out, dir string) error {
	if out == "-" {
		return nil
	}
	o, err := filepath.Abs(out)
	if err != nil {
		return nil // the write says why
	}
	d, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	if rel, err := filepath.Rel(d, o); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usageErr("report: -o %s is inside %s, an output of the export, where verify would fail on a file that is not the export's: write the page elsewhere", out, dir)
	}
	return nil
}

// sinkOCSF reports whether a file or S3 sink writes OCSF events.
func sinkOCSF(s config.Sink) bool {
	return (s.File != nil && s.File.OCSF()) || (s.S3 != nil && s.S3.OCSF())
}

// reportMemoryLimit is the soft limit of the Go runtime's memory while a
// report is written. The report's live heap is about 16 MiB over 9,000,000
// events (counters, not events), the binary's own pages some 31 MiB of RSS:
// at 32 MiB the peak RSS of that report stays under the export's 64 MiB
// (62 MiB, 14 s), at 40 MiB it was 69 MiB (12.7 s), and below 30 MiB the
// collector runs nearly all the time (BENCHMARKS.md, Report); it is raised
// to a larger live heap and half of it more (followLiveHeap). GOMEMLIMIT
// overrides it.
const reportMemoryLimit = 32 << 20

// liveHeapEvery is how often the soft limit is brought up to the live heap.
const liveHeapEvery = 500 * time.Millisecond

// liveHeapRoom is the least room above the live heap under the soft
// limit: the 16 MiB between the report's usual live heap and the limit.
const liveHeapRoom = 16 << 20

// followLiveHeap keeps the soft memory limit at least half the live heap,
// and 16 MiB, above it, and at least floor, until stop is called, which
// puts back the limit before. A report's live heap grows with the actors
// it counts (some 440 bytes an actor with failed 2FA, 110 one without) and
// with the largest day (the burst search keeps a day's events of its
// rules' keys): near or past a fixed limit the collector ran all the time
// (a week of 4,000,000 events a day: 99-133 s of CPU with 5,000 actors,
// 186-205 s and 108-112 MiB RSS with 50,000; now 50 s, and 59 s at 104 MiB).
func followLiveHeap(floor int64) (stop func()) {
	before := debug.SetMemoryLimit(-1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(liveHeapEvery)
		defer t.Stop()
		for {
			raiseToLiveHeap(floor)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		debug.SetMemoryLimit(before)
	}
}

// raiseToLiveHeap sets the soft memory limit to the live heap and half of
// it more, at least liveHeapRoom more, or floor when that is more.
func raiseToLiveHeap(floor int64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	limit := floor
	if s[0].Value.Kind() == metrics.KindUint64 {
		live := int64(s[0].Value.Uint64())
		limit = max(floor, live+max(live/2, liveHeapRoom))
	}
	debug.SetMemoryLimit(limit)
}

// writeReport renders into a temporary file next to out and renames it
// into place, so that a failed report leaves no partial page under out.
// The file is private (0600): it names people and their addresses. What
// was written is a line of log, a JSON object with --log-format json.
func (e *env) writeReport(ctx context.Context, log *slog.Logger, o report.Options, out string) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		defer followLiveHeap(reportMemoryLimit)()
	}
	if out == "-" {
		_, err := report.Write(ctx, o, e.stdout)
		return reportErr(err)
	}
	if err := atomicfile.Replaceable(out); err != nil {
		return usageErr("report: -o %v: give the path of a file, or - for standard output", err)
	}
	f, err := atomicfile.Create(filepath.Dir(out), filepath.Base(out), 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		// A mistake in -o, as --metrics-file's is: nothing was read yet.
		return usageErr("report: -o %s: the directory %s does not exist: create it, or write the page elsewhere", out, filepath.Dir(out))
	}
	if err != nil {
		return flagPathHint(fmt.Errorf("report: %w", atomicfile.FinalName(err, out)), "-o", ", or - for standard output")
	}
	defer f.Discard()
	st, err := report.Write(ctx, o, f)
	if err == nil {
		err = f.Commit(out)
	}
	if err != nil {
		return reportErr(atomicfile.FinalName(err, out))
	}
	prev := "previous period not in the output"
	if st.Previous {
		prev = fmt.Sprintf("compared with the previous period (%d file(s))", st.PreviousFiles)
	}
	// The period, as the defaults made it: a --from without --to ends
	// today 00:00 UTC, which an operator reporting "the last 7 days" during
	// an incident may take to include today. In --time-zone, as the page.
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	from, to := o.From.In(loc).Format(time.RFC3339), o.To.In(loc).Format(time.RFC3339)
	log.Info(fmt.Sprintf("report: %s events of %s .. %s from %d file(s), %s -> %s", group3(st.Events), from, to, st.Files, prev, out),
		"events", st.Events, "from", from, "to", to, "files", st.Files, "previous_files", st.PreviousFiles, "out", out)
	return nil
}

// reportErr makes what the output cannot answer a usage error (exit 2);
// damaged files and I/O failures stay run failures (exit 1). An interrupted
// report says so in its own words: it leaves no day unexported, as run's
// message of a cancelled context would say.
func reportErr(err error) error {
	var ie *reader.InputError
	if errors.As(err, &ie) {
		return usageErr("report: %v", ie)
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("report: interrupted; no page written")
	}
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// group3 writes n with thousands separators.
func group3(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// demoReport writes the report of the demo's week next to its files and
// says where.
func (e *env) demoReport(ctx context.Context, log *slog.Logger, dir string, from, to time.Time) error {
	out := filepath.Join(dir, "report.html")
	o := report.Options{Store: filesink.ReadOnly(filepath.Join(dir, "parquet")), From: from, To: to, Version: version()}
	if err := e.writeReport(ctx, log, o, out); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "demo: security digest of the week in %s (open it in a browser)\n", out)
	return nil
}
