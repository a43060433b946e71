package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/telemetry"
)

func runCommand() *command {
	return &command{
		name:        "run",
		interrupted: "days not delivered stay unexported and the next run resumes them",
		synopsis:    "-c FILE [--from T] [--to T] [--dry-run] [--replace] [--token TOKEN] [--metrics-file PATH] [--alerts-dry-run] [--log-format text|json] [--log-level LEVEL]",
		summary:     "export every complete UTC day not yet exported, or a range",
		about: `Exports the audit events of the configured period (period.default: yesterday =
every complete UTC day not yet exported; on a first run, yesterday only) or of
--from/--to to every sink of FILE, and records each day delivered. A run killed
or failed is resumed by the next one. --dry-run prints the plan and sends
nothing (no token needed).
The token comes from FILE (${PACHCA_TOKEN}, token_file) or --token.`,
		setup: func(fs *flags, e *env) func(context.Context, []string) error {
			cfgPath := fs.String("c", "", "the pipeline configuration `FILE` (pipeline.yaml)")
			from := fs.String("from", "", "start of the range, inclusive: `T` is RFC 3339 with Z or any offset, seconds optional (2026-11-01T10:00Z), or a date (2026-11-01 = that day 00:00 UTC)")
			to := fs.String("to", "", "end of the range, exclusive (`T` as for --from, or now: up to now minus period.lag; default with --from: the end of the last complete day)")
			dry := fs.Bool("dry-run", false, "print the plan and fetch nothing")
			token := fs.String("token", "", "the API `TOKEN` (prefer PACHCA_TOKEN or token_file: flags show in ps)")
			metrics := fs.String("metrics-file", "", "write Prometheus metrics to `PATH` after the run (node_exporter textfile collector)")
			alertsDry := fs.Bool("alerts-dry-run", false, "export, but print alert messages instead of sending them")
			replace := fs.Bool("replace", false, "let a day replace files that hold more events than it has (refused otherwise)")
			var lf logFlags
			lf.register(fs)
			return func(ctx context.Context, _ []string) error {
				log, err := lf.logger(e)
				if err != nil {
					return err
				}
				now, err := e.now()
				if err != nil {
					return err
				}
				f, t, toNow, err := parseRange(*from, *to, now)
				if err != nil {
					return err
				}
				cfg, err := e.loadConfig(*cfgPath, *token, log)
				if err != nil {
					if *metrics != "" && !*dry {
						// A broken configuration fails the job too: say so to the alerts.
						err = errors.Join(err, e.writeMetrics(*metrics, telemetry.TextfileWorkspace(*metrics), nil, telemetry.Failure, time.Now(), 0, log))
					}
					return err
				}
				log = e.labelled(log)
				if *metrics != "" && !*dry {
					if err := telemetry.CheckTextfile(*metrics); err != nil {
						return failure.Usagef("--metrics-file: %v", err)
					}
				}
				var alertsOut io.Writer = e.stdout
				if hasStdoutSink(cfg) {
					alertsOut = alertLog{log}
				}
				return e.export(ctx, pipeline.Options{Config: cfg, Logger: log, Now: now, Stdout: e.stdout, Mode: "run",
					AlertsDryRun: *alertsDry, AlertsOut: alertsOut, Replace: *replace}, pipeline.Range{From: f, To: t, ToNow: toNow}, *dry, *metrics)
			}
		},
	}
}

func hasStdoutSink(cfg *config.Config) bool {
	return slices.ContainsFunc(cfg.Sinks, func(s config.Sink) bool { return s.Stdout != nil })
}

// alertLog takes the messages of --alerts-dry-run to the log when stdout
// carries records (a stdout sink), so that stdout stays NDJSON (and stderr
// one JSON object a line with --log-format json). alerts.Notify writes each
// message, continuation lines included, in one Write: one log record each.
type alertLog struct{ log *slog.Logger }

func (a alertLog) Write(p []byte) (int, error) {
	a.log.Info("alert (dry run)", "message", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// export runs the pipeline, writes the metrics file and prints the plan (a
// dry run) or the summary, which ends every run, failed or interrupted too.
func (e *env) export(ctx context.Context, o pipeline.Options, rng pipeline.Range, dryRun bool, metricsFile string) error {
	if e.progress != nil && !dryRun {
		o.Progress = e.progress
	}
	start := time.Now()
	sum, err := pipeline.Run(ctx, o, rng, dryRun)
	if dryRun {
		if err == nil {
			var refused map[int]error
			refused, err = refusedLocations(ctx, o.Config)
			// The signing keys, read as the run reads them: a key the run
			// would refuse (exit 2) fails the dry run too.
			kerr := signingKeys(o.Config)
			printPlan(e, o.Config, sum.Plan, refused, kerr)
			if err == nil {
				err = kerr
			}
		}
		return err
	}
	began := sum != nil || !failure.IsUsage(err) // a usage error (no token) stops it before it begins
	if sum == nil {                              // stopped at the start: the state locked by another run
		sum = &pipeline.Summary{Started: start, Duration: time.Since(start), PerKey: map[string]int64{}, PerSink: map[string]*pipeline.SinkTotals{}}
	}
	res := result(ctx, err)
	if metricsFile != "" {
		if merr := e.writeMetrics(metricsFile, o.Config.Source.Workspace, sum, res, sum.Started.Add(sum.Duration), sum.Duration, o.Logger); merr != nil {
			err = errors.Join(err, merr)
			res = telemetry.Failure
		}
	}
	if began {
		e.printSummary(sum, res)
	}
	return err
}

// result is how a run that returned err ended.
func result(ctx context.Context, err error) telemetry.Result {
	switch {
	case err == nil:
		return telemetry.Success
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return telemetry.Interrupted
	}
	return telemetry.Failure
}

// printSummary ends the run: the summary as a table, or as one JSON object
// with --log-format json. It is output, not a log line: --log-level does not
// hide it.
func (e *env) printSummary(sum *pipeline.Summary, res telemetry.Result) {
	if e.jsonLog {
		attrs := append([]slog.Attr{slog.String("result", string(res))}, sum.Attrs()...)
		e.labelled(slog.New(slog.NewJSONHandler(&redactingWriter{e: e}, nil))).LogAttrs(context.Background(), slog.LevelInfo, "summary", attrs...)
		return
	}
	sum.Print(&redactingWriter{e: e}, string(res))
}

// writeMetrics writes the metrics file: the counters of the previous file
// plus this run's figures (sum may be nil: nothing was done), and how it
// ended, labelled workspace. A previous
// file that does not parse, or another workspace's, is replaced, with a
// warning.
func (e *env) writeMetrics(path, workspace string, sum *pipeline.Summary, res telemetry.Result, end time.Time, d time.Duration, log *slog.Logger) error {
	m := telemetry.New(workspace)
	if err := m.LoadTextfile(path); err != nil && log != nil {
		log.Warn("the previous metrics file is not carried over; counters restart from zero", "error", err)
	}
	if sum != nil {
		m.ObservePlan(sum)
	}
	m.ObserveRun(res, end, d)
	return m.WriteTextfile(path)
}

// signingKeys reads the signing key and the previous public keys as a run
// does; nil without them.
func signingKeys(cfg *config.Config) error {
	if _, err := pipeline.Signer(cfg); err != nil {
		return err
	}
	_, err := pipeline.PreviousKeys(cfg)
	return err
}

func printPlan(e *env, cfg *config.Config, p *pipeline.Plan, refused map[int]error, signing error) {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "dry run: nothing fetched\n")
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note\t%s\n", n)
	}
	if len(p.Days) == 0 {
		fmt.Fprintf(w, "%s\n", pipeline.NothingToExport(*p))
		w.Flush()
		return
	}
	// RFC3339Nano as the summary: a bound within a second (--from
	// ...T00:00:00.5Z) must not read as the second, or a day as whole.
	fmt.Fprintf(w, "range\t%s .. %s\n", p.From.UTC().Format(time.RFC3339Nano), p.To.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(w, "days\t%d (%s .. %s)\n", len(p.Days), p.Days[0].Date(), p.Days[len(p.Days)-1].Date())
	streams := "every event key"
	if len(p.Streams) > 1 || p.Streams[0] != "" {
		streams = strings.Join(p.Streams, ", ")
	}
	fmt.Fprintf(w, "streams\t%d (%s)\n", len(p.Streams), streams)
	windows := len(p.Days) * len(p.Streams)
	rps := cfg.Source.RequestsPerSecond
	fmt.Fprintf(w, "windows\t%d at first; dense ones are split while workers are idle\n", windows)
	fmt.Fprintf(w, "requests\tat least %d, plus one per %d events\n", windows, extract.PageSize)
	// The workers keep the rate only while a request takes at most
	// concurrency / rate: a distant API needs more of them (was: the
	// time was promised whatever the distance).
	workers := cfg.Source.Concurrency
	fmt.Fprintf(w, "time\tat %.0f req/s: %s per 100,000 events, if the API answers within %s (%d workers; farther away: raise source.concurrency)\n", rps,
		(time.Duration(float64(100000/extract.PageSize) / rps * float64(time.Second))).Round(time.Second),
		roundAnswer(time.Duration(float64(workers)/rps*float64(time.Second))), workers)
	if err := cfg.Source.RequireToken(cfg.File); err != nil {
		fmt.Fprintf(w, "token\tnot set (a dry run needs none; run does): %s\n", e.redact(err.Error()))
	}
	if signing != nil {
		fmt.Fprintf(w, "refused\t%s\n", e.redact(signing.Error()))
	}
	for i, s := range cfg.Sinks {
		fmt.Fprintf(w, "sink %d\t%s\n", i, describeSink(s))
		if err := refused[i]; err != nil {
			fmt.Fprintf(w, "refused\tsink %d: %s\n", i, e.redact(err.Error()))
		}
	}
	for _, r := range cfg.Alerts.Rules {
		fmt.Fprintf(w, "alert\t%s (%s on %s) -> %s; --alerts-dry-run prints findings instead of sending\n",
			r.Name, r.Kind, strings.Join(r.EventKeys, ", "), strings.Join(r.Recipients, ", "))
	}
	for _, d := range p.Days {
		fmt.Fprintf(w, "  %s\t%s .. %s\n", d.Dir(), d.From.UTC().Format(time.RFC3339Nano), d.To.UTC().Format(time.RFC3339Nano))
	}
	w.Flush()
}

// refusedLocations reads, for a dry run, the marker of each file sink's
// directory (reading only: a dry run writes nothing, and reaches no S3 or
// Kafka): the sinks whose directory holds another configuration's events,
// where the run would be refused, and the first of those refusals, so that
// the dry run ends as the run would (exit 2).
func refusedLocations(ctx context.Context, cfg *config.Config) (map[int]error, error) {
	refused := map[int]error{}
	var first error
	for i, sc := range cfg.Sinks {
		if sc.File == nil {
			continue
		}
		sk, err := sinkset.BuildOne(ctx, sc, io.Discard)
		if err != nil {
			return nil, err
		}
		c, ok := sk.(sinks.Claimer)
		if !ok {
			continue
		}
		if _, err := c.Claim(ctx, sinks.Claim{Identity: pipeline.DataIdentity(cfg)}); err != nil && failure.IsUsage(err) {
			refused[i] = err
			if first == nil {
				first = fmt.Errorf("sinks[%d]: %w", i, err)
			}
		}
	}
	return refused, first
}

func describeSink(s config.Sink) string {
	switch {
	case s.File != nil:
		return fmt.Sprintf("%s %s (compression %s%s)", s.Type, s.File.Dir, s.FileCompression(), shapeNote(s.File.Keys))
	case s.S3 != nil: // its compression has its default (s3sink.Config.SetDefaults)
		return fmt.Sprintf("s3 s3://%s/%s (%s, %s%s)", s.S3.Bucket, s.S3.Prefix, s.S3.Format, s.S3.Compression, shapeNote(s.S3.Keys))
	case s.Kafka != nil:
		return fmt.Sprintf("kafka %s topic %s", strings.Join(s.Kafka.Brokers, ","), s.Kafka.Topic)
	}
	return s.Type
}

// shapeNote names a record shape and layout other than the defaults.
func shapeNote(k shape.Keys) string {
	if k.Label() == "" {
		return ""
	}
	return ", " + k.Label()
}

// roundAnswer rounds the answer time of the dry run's plan to milliseconds,
// to microseconds below one (a high rate with few workers).
func roundAnswer(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
