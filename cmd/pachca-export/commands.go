package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/sinkset"
	"github.com/pachca-export/pachca-export/transform"
)

func (e *env) run(ctx context.Context, args []string) error {
	fs := newFlagSet("run", e)
	cfgPath := fs.String("c", "", "path of pipeline.yaml")
	from := fs.String("from", "", "start of the range, inclusive (RFC 3339 or YYYY-MM-DD)")
	to := fs.String("to", "", "end of the range, exclusive")
	dry := fs.Bool("dry-run", false, "print the plan and fetch nothing")
	token := fs.String("token", "", "API token (prefer PACHCA_TOKEN or token_file: flags show in ps)")
	metrics := fs.String("metrics-file", "", "write Prometheus metrics here (node_exporter textfile collector)")
	alertsDry := fs.Bool("alerts-dry-run", false, "export, but print alert messages instead of sending them")
	var lf logFlags
	lf.register(fs)
	log, err := lf.parse(fs, args, e)
	if err != nil {
		return err
	}
	f, err := parseTimeFlag("from", *from)
	if err != nil {
		return err
	}
	t, err := parseTimeFlag("to", *to)
	if err != nil {
		return err
	}
	cfg, err := e.loadConfig(*cfgPath, *token)
	if err != nil {
		return err
	}
	return e.export(ctx, pipeline.Options{Config: cfg, Logger: log, Stdout: e.stdout,
		AlertsDryRun: *alertsDry, AlertsOut: e.stdout}, pipeline.Range{From: f, To: t}, *dry, *metrics)
}

// export runs the pipeline and prints the plan or the summary.
func (e *env) export(ctx context.Context, o pipeline.Options, rng pipeline.Range, dryRun bool, metricsFile string) error {
	if e.progress != nil && !dryRun {
		o.Progress = e.progress
	}
	sum, err := pipeline.Run(ctx, o, rng, dryRun)
	if metricsFile != "" && sum != nil && sum.Plan == nil {
		if merr := sum.WriteMetrics(metricsFile, err == nil); merr != nil && err == nil {
			err = merr
		}
	}
	if sum != nil && sum.Plan != nil {
		printPlan(e, o.Config, sum.Plan)
		return err
	}
	if sum != nil && err == nil {
		sum.Print(e.stderr)
	}
	if err != nil && sum != nil && len(sum.Days) > 0 {
		fmt.Fprintf(e.stderr, "pachca-export: %d day(s) were delivered before the failure: %s\n", len(sum.Days), strings.Join(sum.Days, ", "))
	}
	return err
}

func printPlan(e *env, cfg *config.Config, p *pipeline.Plan) {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "dry run: nothing fetched\n")
	if len(p.Days) == 0 {
		fmt.Fprintf(w, "nothing to export: every complete day is already exported\n")
		w.Flush()
		return
	}
	fmt.Fprintf(w, "range\t%s .. %s\n", p.From.Format(time.RFC3339), p.To.Format(time.RFC3339))
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
	fmt.Fprintf(w, "time\tat %.0f req/s: %s per 100,000 events (%d workers)\n", rps,
		(time.Duration(float64(100000/extract.PageSize) / rps * float64(time.Second))).Round(time.Second), cfg.Source.Concurrency)
	for i, s := range cfg.Sinks {
		fmt.Fprintf(w, "sink %d\t%s\n", i, describeSink(s))
	}
	for _, r := range cfg.Alerts.Rules {
		fmt.Fprintf(w, "alert\t%s (%s on %s) -> %s; --alerts-dry-run prints findings instead of sending\n",
			r.Name, r.Kind, strings.Join(r.EventKeys, ", "), strings.Join(r.Recipients, ", "))
	}
	for _, d := range p.Days {
		fmt.Fprintf(w, "  %s\t%s .. %s\n", d.Dir(), d.From.Format(time.RFC3339), d.To.Format(time.RFC3339))
	}
	w.Flush()
}

func describeSink(s config.Sink) string {
	switch {
	case s.File != nil:
		return fmt.Sprintf("%s %s (compression %s)", s.Type, s.File.Dir, orDefault(s.File.Compression))
	case s.S3 != nil:
		return fmt.Sprintf("s3 s3://%s/%s (%s, %s)", s.S3.Bucket, s.S3.Prefix, s.S3.Format, orDefault(s.S3.Compression))
	case s.Kafka != nil:
		return fmt.Sprintf("kafka %s topic %s", strings.Join(s.Kafka.Brokers, ","), s.Kafka.Topic)
	}
	return s.Type
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

func (e *env) check(ctx context.Context, args []string) error {
	fs := newFlagSet("check", e)
	cfgPath := fs.String("c", "", "path of pipeline.yaml")
	token := fs.String("token", "", "API token")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := e.loadConfig(*cfgPath, *token)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	failed := 0
	line := func(ok bool, what, detail string) {
		status := "OK"
		if !ok {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", status, what, e.redact(detail))
	}
	line(true, "config", fmt.Sprintf("%s: %d sink(s)", cfg.File, len(cfg.Sinks)))
	if cfg.Source.Token == "" {
		line(false, "token", "source.token is empty (set PACHCA_TOKEN, token_file or --token)")
	} else {
		cc := cfg.Source.ClientConfig(nil)
		cc.MaxRetries = 2
		cctx, cancel := context.WithTimeout(ctx, 2*cfg.Source.Timeout)
		err := extract.NewClient(cc).Probe(cctx)
		cancel()
		if err != nil {
			line(false, "token", err.Error())
		} else {
			line(true, "token", "accepted by "+cfg.Source.BaseURL+" with scope audit_events:read")
		}
	}
	set, err := sinkset.Build(ctx, cfg.Sinks, e.stdout)
	if err != nil {
		line(false, "sinks", err.Error())
	} else {
		for i, err := range set.Check(ctx) {
			name := set.Sinks[i].Name()
			if err != nil {
				line(false, fmt.Sprintf("sinks[%d]", i), err.Error())
			} else if _, probed := set.Sinks[i].(sinks.Checker); probed {
				line(true, fmt.Sprintf("sinks[%d]", i), name+" reachable and writable")
			} else {
				line(true, fmt.Sprintf("sinks[%d]", i), name)
			}
		}
		if err := set.Close(ctx); err != nil {
			line(false, "sinks", err.Error())
		}
	}
	w.Flush()
	if failed > 0 {
		return fmt.Errorf("check: %d problem(s)", failed)
	}
	return nil
}

func (e *env) schema(args []string) error {
	fs := newFlagSet("schema", e)
	format := fs.String("format", "json", "json, arrow or sql")
	table := fs.String("table", "pachca_audit", "table name for --format sql")
	location := fs.String("location", "s3://pachca-audit/audit/", "LOCATION for --format sql")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *format {
	case "json":
		type col struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			Nullable bool   `json:"nullable"`
			Doc      string `json:"doc"`
		}
		var cols []col
		for _, c := range transform.Columns() {
			cols = append(cols, col{c.Name, c.Kind.String(), c.Nullable, c.Doc})
		}
		b, _ := json.MarshalIndent(struct {
			Version string `json:"schema_version"`
			Columns []col  `json:"columns"`
		}{transform.SchemaVersion, cols}, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
	case "arrow":
		fmt.Fprintln(e.stdout, parquetfmt.ArrowSchema().String())
	case "sql":
		fmt.Fprintln(e.stdout, parquetfmt.SchemaSQL(*table, *location))
	default:
		return usageErr("schema: unknown --format %q (json, arrow, sql)", *format)
	}
	return nil
}

// demo exports a week of simulated events with the default file sinks.
func (e *env) demo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", e)
	out := fs.String("out", "out/demo", "output directory")
	events := fs.Int("events", 20000, "simulated events over the week")
	var lf logFlags
	lf.register(fs)
	log, err := lf.parse(fs, args, e)
	if err != nil {
		return err
	}
	end := time.Now().UTC().Truncate(24 * time.Hour)
	start := end.Add(-7 * 24 * time.Hour)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = *events, start, end, 1
	sc.RateLimit, sc.Burst = 50, 10
	sim, err := simulator.New(sc)
	if err != nil {
		return err
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Fprintf(e.stderr, "demo: simulated Pachca API at %s with %d events, %s .. %s\n", base, sc.Events,
		start.Format(time.DateOnly), end.Add(-time.Second).Format(time.DateOnly))
	cfg := config.Default()
	cfg.File = "demo"
	cfg.Source.BaseURL, cfg.Source.Token, cfg.Source.Workspace = base, sc.Token, "demo"
	cfg.State.Dir = filepath.Join(*out, ".state")
	cfg.Sinks = []config.Sink{
		{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(*out, "ndjson"), Compression: "gzip"}},
		{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(*out, "parquet"), Compression: "zstd"}},
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := e.export(ctx, pipeline.Options{Config: &cfg, Logger: log}, pipeline.Range{From: start, To: end}, false, ""); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "demo: files under %s\n", *out)
	fmt.Fprintf(e.stdout, "  zcat %s | head -1\n", filepath.Join(*out, "ndjson", "dt="+start.Format(time.DateOnly), "pachca-audit-"+start.Format(time.DateOnly)+".ndjson.gz"))
	fmt.Fprintf(e.stdout, "  duckdb -c \"SELECT event_category, count(*) FROM read_parquet('%s/parquet/*/*.parquet', hive_partitioning=true) GROUP BY 1\"\n", *out)
	return e.demoReport(ctx, *out, start, end)
}
