package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/verify"
)

func verifyCommand() *command {
	return &command{
		name:     "verify",
		synopsis: "-c FILE [--from T] [--to T] [--against-api] [--repair] [--token TOKEN] [--public-key FILE] [--print-public-key] [--format text|json]",
		summary:  "read the file and S3 sinks back and check every day, as OK/FAIL lines",
		about: `Reads back what the file and S3 sinks of FILE hold and checks each day against
its manifest (files present, sizes, sha256, record counts, schema version, no
id twice in a day, S3 checksums), the location's identity, the chain of
manifests and their signatures, and the days the state records as exported.
Prints one OK or FAIL line per day and sink (and one per sink whose root holds
what does not belong) and exits 1 if any failed, or if there was nothing to check.
--against-api also compares each day with what the API returns now;
--repair delivers the failing days again and checks them once more.
--format json prints each line as a JSON object instead, for a SIEM or a
script: {"status","day","sink","detail","pass"}, pass "check" or, after
--repair, "after_repair".`,
		setup: func(fs *flags, e *env) func(context.Context, []string) error {
			cfgPath := fs.String("c", "", "the pipeline configuration `FILE` (pipeline.yaml)")
			from := fs.String("from", "", "first day to check, inclusive (`T`; default: every day the sinks hold)")
			to := fs.String("to", "", "end of the days to check, exclusive (`T`, or now: today's day included; default: every day the sinks hold from --from on)")
			againstAPI := fs.Bool("against-api", false, "also compare each day with what the API returns now")
			repair := fs.Bool("repair", false, "deliver the days that fail again, then check them once more (implies --against-api)")
			var pubFiles stringList
			fs.Var(&pubFiles, "public-key", "PEM Ed25519 public key `FILE` every manifest must be signed with (repeat it for the keys of a rotation: each manifest signed with one of them)")
			printKey := fs.Bool("print-public-key", false, "print the public key of signing.private_key_file and exit")
			token := fs.String("token", "", "the API `TOKEN`, for --against-api and --repair")
			format := fs.String("format", "text", "the verdicts' `FORMAT`: text (aligned lines) or json (one object a line)")
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
				f, t, _, err := parseRange(*from, *to, now)
				if err != nil {
					return err
				}
				if *format != "text" && *format != "json" {
					return usageErr("verify: --format %q: want text or json", *format)
				}
				cfg, err := e.loadConfig(*cfgPath, *token, log)
				if err != nil {
					return err
				}
				log = e.labelled(log)
				if *printKey {
					return e.printPublicKey(cfg)
				}
				o := verify.Options{Config: cfg, Logger: log, From: f, To: t, AgainstAPI: *againstAPI, Repair: *repair}
				for i, path := range pubFiles {
					key, err := readPublicKey(path)
					if err != nil {
						return err
					}
					if i == 0 {
						o.PublicKey = key
					} else {
						o.PreviousKeys = append(o.PreviousKeys, key)
					}
				}
				return e.verify(ctx, o, *format == "json")
			}
		},
	}
}

// verifyMemoryLimit is the soft limit of the Go runtime's memory during a
// verify. Its live heap is mostly the ids of the days being read, one day
// of one sink per core, 24 bytes an id: two days of 300,000 events are 14
// MB. Under the export's 26 MiB the collector ran most of the time for
// them, a quarter more CPU than reading the days one by one; at 40 MiB
// it takes no more CPU than that, and 4 days of 300,000 events to three
// sinks peak at 67 MiB RSS (BENCHMARKS.md, Verify). GOMEMLIMIT overrides it.
const verifyMemoryLimit = 40 << 20

// verify runs the verification and prints its verdicts, as JSON objects
// with asJSON.
func (e *env) verify(ctx context.Context, o verify.Options, asJSON bool) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(verifyMemoryLimit))
	}
	rep, err := verify.Run(ctx, o)
	switch {
	case rep != nil && asJSON:
		e.printVerdictsJSON(rep.Lines, "check")
		e.printVerdictsJSON(rep.After, "after_repair")
	case rep != nil:
		e.printVerdicts(rep.Lines)
		if len(rep.Repaired) > 0 {
			fmt.Fprintf(e.stdout, "delivered again: %d day(s); checked once more:\n", len(rep.Repaired))
			e.printVerdicts(rep.After)
		}
	}
	if err != nil {
		return err
	}
	if rep.Empty && rep.Streams {
		return fmt.Errorf("verify: nothing to verify: every sink of %s is a stream (kafka, stdout), whose messages cannot be read back; verify checks file and S3 sinks", o.Config.File)
	}
	if rep.Empty {
		rng, of := "", ""
		if !o.From.IsZero() {
			rng, of = " from "+o.From.UTC().Format(time.RFC3339), " of it"
		}
		if !o.To.IsZero() {
			rng, of = rng+" to "+o.To.UTC().Format(time.RFC3339), " of it"
		}
		return fmt.Errorf("verify: nothing to verify%s: no sink holds a day%s and the state records none as exported (another configuration, or state.dir?)", rng, of)
	}
	if rep.Failed() {
		return fmt.Errorf("verify: the output does not match its manifests or the API (FAIL lines above)")
	}
	return nil
}

func (e *env) printVerdicts(lines []verify.Line) {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, l := range lines {
		day := "-"
		if l.Day != "" {
			day = "dt=" + l.Day
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", l.Status, day, e.shown(l.Sink), e.shown(l.Detail))
	}
	w.Flush()
}

// printVerdictsJSON prints each line as one JSON object: day "" for a line
// of a sink's root.
func (e *env) printVerdictsJSON(lines []verify.Line, pass string) {
	enc := json.NewEncoder(e.stdout)
	for _, l := range lines {
		enc.Encode(struct {
			Status string `json:"status"`
			Day    string `json:"day"`
			Sink   string `json:"sink"`
			Detail string `json:"detail"`
			Pass   string `json:"pass"`
		}{string(l.Status), l.Day, l.Sink, e.redact(l.Detail), pass})
	}
}

// printPublicKey prints the public half of the configured signing key, as
// `openssl pkey -pubout` would.
func (e *env) printPublicKey(cfg *config.Config) error {
	key, err := pipeline.Signer(cfg)
	if err != nil {
		return err
	}
	if key == nil {
		return usageErr("verify: --print-public-key: %s sets no signing.private_key_file", cfg.File)
	}
	_, err = e.stdout.Write(sinks.PublicKeyPEM(key.Public().(ed25519.PublicKey)))
	return err
}

func readPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := sinks.ReadKeyFile(path)
	if err != nil {
		return nil, usageErr("--public-key: %v", err)
	}
	pub, err := sinks.ParsePublicKey(b)
	if err != nil {
		return nil, usageErr("--public-key: %s: %v", path, err)
	}
	return pub, nil
}

// stringList is a flag that may be given more than once.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
