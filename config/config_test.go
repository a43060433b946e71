package config_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/smallfile"
	"github.com/pachca-export/pachca-export/sinks/shape"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// TestBadConfigs: every testdata/bad-*.yaml fails with exactly the lines of
// its .err file, each naming the file, the key and (for decoding errors) the line.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(path, ".yaml") + ".err")
			require.NoError(t, err)
			_, err = config.Parse(mustRead(t, path), filepath.Base(path), env(nil))
			require.Error(t, err)
			got := strings.Split(err.Error(), "\n")
			for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				require.Contains(t, got, line, "all errors:\n%s", err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestGoodConfig(t *testing.T) {
	cfg, err := config.Load("testdata/good-full.yaml", env(map[string]string{"PACHCA_TOKEN": "tok-123"}))
	require.NoError(t, err)
	require.Equal(t, "tok-123", cfg.Source.Token)
	require.Equal(t, []string{"user_login", "user_2fa_fail"}, cfg.Source.Filters.EventKeys)
	require.Equal(t, 25.0, cfg.Source.RequestsPerSecond)
	require.Equal(t, 10*time.Second, cfg.Source.Timeout)
	require.Equal(t, 5*time.Minute, cfg.Period.Lag)
	require.Len(t, cfg.Sinks, 5)
	require.Equal(t, "zstd", cfg.Sinks[0].File.Compression)
	require.Equal(t, "ndjson", cfg.Sinks[2].S3.Format)
	require.Equal(t, "gzip", cfg.Sinks[2].S3.Compression)
	require.True(t, cfg.Sinks[2].S3.ForcePathStyle)
	require.Equal(t, 10*time.Millisecond, cfg.Sinks[3].Kafka.BatchTimeout)
	require.NotNil(t, cfg.Sinks[4].Stdout)
	require.Len(t, cfg.Alerts.Rules, 2)
	require.Equal(t, []string{"10001", "10002"}, cfg.Alerts.Rules[0].Recipients)
	require.Equal(t, 10*time.Minute, cfg.Alerts.Rules[0].Window)
	require.Equal(t, "/etc/pachca-export/signing.pem", cfg.Signing.PrivateKeyFile)
}

// TestS3CompressionDefault: an S3 sink without compression gets zstd
// whatever its format; for ndjson, what the first version wrote (the
// prefixes it marked say ndjson.zst, and another default would refuse them).
func TestS3CompressionDefault(t *testing.T) {
	for format, want := range map[string]string{"ndjson": "zstd", "parquet": "zstd", "": "zstd"} {
		t.Run(format, func(t *testing.T) {
			yaml := "source:\n  token: x\nsinks:\n  - type: s3\n    bucket: b-1\n    region: us-east-1\n"
			if format != "" {
				yaml += "    format: " + format + "\n"
			}
			cfg, err := config.Parse([]byte(yaml), "p.yaml", env(nil))
			require.NoError(t, err)
			require.Equal(t, want, cfg.Sinks[0].S3.Compression)
			// The same as a configuration given to s3sink.New, which sets
			// the defaults after the format.
			c := *cfg.Sinks[0].S3
			c.Compression = ""
			c.SetDefaults()
			require.Equal(t, want, c.Compression)
		})
	}
}

// TestShippedPipeline: the example in the repository root is valid as shipped.
func TestShippedPipeline(t *testing.T) {
	cfg, err := config.Load("../pipeline.yaml", env(map[string]string{"PACHCA_TOKEN": "x"}))
	require.NoError(t, err)
	require.Equal(t, 50.0, cfg.Source.RequestsPerSecond)
	require.Equal(t, 8, cfg.Source.Concurrency)
	require.Equal(t, "yesterday", cfg.Period.Default)
	require.Len(t, cfg.Sinks, 2)
}

func TestDefaultsAndTokenFile(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tok, []byte("from-file\n"), 0o600))
	path := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(path, []byte("source:\n  token_file: "+tok+"\n  requests_per_second: ${RPS:-20}\nsinks:\n  - type: stdout\n"), 0o600))
	cfg, err := config.Load(path, env(nil))
	require.NoError(t, err)
	require.Equal(t, "from-file", cfg.Source.Token)
	require.Equal(t, 20.0, cfg.Source.RequestsPerSecond, "default of ${VAR:-default}, resolved as a number")
	require.Equal(t, config.Default().Source.BaseURL, cfg.Source.BaseURL)
	require.Equal(t, 2*time.Minute, cfg.Period.Lag)
	require.Equal(t, filepath.Join(dir, ".pachca-export"), cfg.State.Dir, "relative to the file's directory")
	require.NoError(t, cfg.Source.RequireToken(path))
	fm, dm := cfg.Output.Modes()
	require.Equal(t, [2]fs.FileMode{0o600, 0o750}, [2]fs.FileMode{fm, dm})
}

// TestTokenProblemsDoNotFailLoading: an unset or empty variable in source.token or an
// unreadable or empty token_file loads (check reports it, a dry run needs no token);
// RequireToken returns the reason, naming the file, line and key.
// PACHCA_TOKEN set in the environment of a file that names no token is
// said (was: "required", to a user who had exported it as the README's
// first lines do).
func TestTokenProblemsDoNotFailLoading(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	for _, tc := range []struct{ name, source, want string }{
		{"unset variable", "  token: ${PACHCA_TEST_UNSET}\n", "p.yaml:2: source.token: environment variable PACHCA_TEST_UNSET is not set"},
		{"empty variable", "  token: ${PACHCA_TEST_EMPTY}\n", "p.yaml:2: source.token: environment variable PACHCA_TEST_EMPTY is set but empty"},
		{"part of the value", "  token: Bearer-${PACHCA_TEST_UNSET}\n", "source.token: environment variable PACHCA_TEST_UNSET is not set"},
		{"missing token_file", "  token_file: missing-token\n", "p.yaml:2: source.token_file: open " + filepath.Join(dir, "missing-token") + ": no such file or directory"},
		{"no token at all", "  workspace: acme\n", "source.token: required"},
		{"a variable without braces", "  token: $PACHCA_TOKEN\n", "p.yaml:2: source.token: a variable written $NAME is not expanded: write ${NAME}"},
		{"a reference with spaces", "  token: ${ PACHCA_TOKEN }\n", "p.yaml:2: source.token: a ${ that starts no variable"},
		{"an unclosed reference", "  token: ${PACHCA_TOKEN\n", "p.yaml:2: source.token: a ${ that starts no variable"},
		{"empty token_file", "  token_file: empty-token\n", "p.yaml:2: source.token_file: " + filepath.Join(dir, "empty-token") + " is empty: write the token into it"},
		{"PACHCA_TOKEN set, not named", "  workspace: acme\n", "p.yaml: source.token: required: PACHCA_TOKEN is set in the environment, but the file does not name it: add `token: ${PACHCA_TOKEN}` under source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "empty-token"), []byte(" \n"), 0o600))
			require.NoError(t, os.WriteFile(path, []byte("source:\n"+tc.source+"sinks:\n  - type: stdout\n"), 0o600))
			vars := map[string]string{"PACHCA_TEST_EMPTY": ""}
			if strings.HasPrefix(tc.name, "PACHCA_TOKEN set") {
				vars["PACHCA_TOKEN"] = "from-the-environment"
			}
			cfg, err := config.Load(path, env(vars))
			require.NoError(t, err)
			require.Empty(t, cfg.Source.Token, "no part of a token")
			require.ErrorContains(t, cfg.Source.RequireToken(path), tc.want)
		})
	}
}

// TestRelativePathsFromAPipe: a configuration read from a pipe (-c
// /dev/stdin) has no directory of its own: its relative paths resolve
// against the working directory, not the pipe's (/dev).
func TestRelativePathsFromAPipe(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dev"), 0o700))
	fifo := filepath.Join(dir, "dev", "stdin")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			f.WriteString("source:\n  token: x\nsinks:\n  - type: ndjson\n    dir: out\nstate:\n  dir: st\n")
			f.Close()
		}
	}()
	cfg, err := config.Load(fifo, env(nil))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "out"), cfg.Sinks[0].File.Dir)
	require.Equal(t, filepath.Join(dir, "st"), cfg.State.Dir)
}

// TestRelativePaths: every relative path of the file resolves against the
// file's directory, not the working directory.
func TestRelativePaths(t *testing.T) {
	root := t.TempDir()
	confDir := filepath.Join(root, "etc", "pachca")
	require.NoError(t, os.MkdirAll(confDir, 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "token"), []byte("tok-relative\n"), 0o600))
	body := `source:
  token_file: token
sinks:
  - type: ndjson
    dir: out/ndjson
  - type: s3
    bucket: pachca-audit
    region: us-east-1
    temp_dir: tmp
  - type: kafka
    brokers: [127.0.0.1:9092]
    topic: t
    tls: {enabled: true, ca_file: tls/ca.pem, cert_file: tls/cert.pem, key_file: /abs/key.pem}
state:
  dir: ../state
output:
  dead_letter_dir: dead
`
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "pipeline.yaml"), []byte(body), 0o600))
	elsewhere := filepath.Join(root, "elsewhere")
	require.NoError(t, os.MkdirAll(elsewhere, 0o750))
	t.Chdir(elsewhere)

	cfg, err := config.Load("../etc/pachca/pipeline.yaml", env(nil))
	require.NoError(t, err)
	require.Equal(t, "tok-relative", cfg.Source.Token)
	require.Equal(t, filepath.Join(confDir, "token"), cfg.Source.TokenFile)
	require.Equal(t, filepath.Join(root, "etc", "state"), cfg.State.Dir)
	require.Equal(t, filepath.Join(confDir, "out/ndjson"), cfg.Sinks[0].File.Dir)
	require.Equal(t, filepath.Join(confDir, "tmp"), cfg.Sinks[1].S3.TempDir)
	require.Equal(t, filepath.Join(confDir, "tls/ca.pem"), cfg.Sinks[2].Kafka.TLS.CAFile)
	require.Equal(t, filepath.Join(confDir, "tls/cert.pem"), cfg.Sinks[2].Kafka.TLS.CertFile)
	require.Equal(t, "/abs/key.pem", cfg.Sinks[2].Kafka.TLS.KeyFile, "absolute paths stay")
	require.Equal(t, filepath.Join(confDir, "dead"), cfg.Output.DeadLetterDir)
}

func TestOutputModesAndDeadLetterDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	write := func(output string) {
		body := "sinks:\n  - type: ndjson\n    dir: out\n  - type: parquet\n    dir: pq\noutput:\n" + output
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	}
	write("  file_mode: 0640\n  dir_mode: \"0o2750\"\n")
	_, err := config.Load(path, env(nil))
	require.ErrorContains(t, err, `output.dir_mode: want an octal mode such as "0640", got "0o2750"`)

	write("  file_mode: 0640\n  dir_mode: \"0o750\"\n")
	cfg, err := config.Load(path, env(nil))
	require.NoError(t, err)
	for _, s := range cfg.Sinks {
		require.Equal(t, fs.FileMode(0o640), s.File.FileMode, "unquoted 0640 is the octal mode")
		require.Equal(t, fs.FileMode(0o750), s.File.DirMode)
	}

	write("  dead_letter_dir: pq/_dead\n")
	_, err = config.Load(path, env(nil))
	require.ErrorContains(t, err, "p.yaml:7: output.dead_letter_dir: "+filepath.Join(dir, "pq/_dead")+" is inside sinks[1].dir")
	write("  dead_letter_dir: out\n")
	_, err = config.Load(path, env(nil))
	require.ErrorContains(t, err, "is inside sinks[0].dir")
	write("  dead_letter_dir: outside\n")
	_, err = config.Load(path, env(nil))
	require.NoError(t, err, "a sibling whose name starts like a sink's is outside it")
	// Through a symbolic link, to the sink's dir or above it, as for two sinks.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "out"), 0o700))
	require.NoError(t, os.Symlink("out", filepath.Join(dir, "letters")))
	write("  dead_letter_dir: letters/dead\n")
	_, err = config.Load(path, env(nil))
	require.ErrorContains(t, err, "output.dead_letter_dir: "+filepath.Join(dir, "letters/dead")+" is inside sinks[0].dir ("+filepath.Join(dir, "out")+"), through a symbolic link")
	require.NoError(t, os.Symlink(dir, filepath.Join(dir, "up")))
	write("  dead_letter_dir: up/pq\n")
	_, err = config.Load(path, env(nil))
	require.ErrorContains(t, err, "is inside sinks[1].dir")
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-11-01":                time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T00:00:00Z":      time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T03:00:00+03:00": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T00:00:00.250Z":  time.Date(2026, 11, 1, 0, 0, 0, 250e6, time.UTC),
		"2026-11-01T03:00+03:00":    time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01t10:00z":         time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		"2026-11-01T03:00:00+0300":  time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T03:00+03":       time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := config.ParseTime(in)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), in)
	}
	_, err := config.ParseTime("11/01/2026")
	require.ErrorContains(t, err, `invalid time "11/01/2026"`)
	require.ErrorIs(t, err, config.ErrTimeForm)
	_, err = config.ParseTime("2026-11-01T10:00")
	require.EqualError(t, err, `invalid time "2026-11-01T10:00": no Z nor offset, so UTC or local time? add Z for UTC (2026-11-01T10:00Z) or the offset (2026-11-01T10:00+03:00)`)
	// The zero time.Time means "not given" to the commands: a time before
	// the Unix epoch is refused, not taken for an absent bound.
	for _, in := range []string{"0001-01-01", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "1970-01-01T02:00:00+03:00"} {
		_, err = config.ParseTime(in)
		require.EqualError(t, err, `invalid time "`+in+`": before 1970, older than any event the API holds`, in)
	}
	_, err = config.ParseTime("1970-01-01")
	require.NoError(t, err)
	// A bound inside a millisecond: events carry milliseconds, and the
	// first after the bound is the next one.
	got, err := config.ParseTime("2026-11-20T00:00:00.0001Z")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 20, 0, 0, 0, 1e6, time.UTC), got)
}

// TestPeriodOffsetWithoutColon: period.from and period.to take what the
// flags take, an offset without its colon (date +%z) among them, written
// bare in the YAML as quoted (was: "period.from: invalid time").
func TestPeriodOffsetWithoutColon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	require.NoError(t, os.WriteFile(path, []byte("source:\n  token: x\nperiod:\n  from: 2026-11-01T03:00:00+0300\n  to: \"2026-11-02T00:00-0530\"\nsinks:\n  - type: ndjson\n    dir: out\n"), 0o600))
	cfg, err := config.Load(path, env(nil))
	require.NoError(t, err)
	from, err := config.ParseTime(cfg.Period.From)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), from)
	to, err := config.ParseTime(cfg.Period.To)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 2, 5, 30, 0, 0, time.UTC), to)
}

// TestZeroDurations: a duration written as a bare 0 is zero, as
// time.ParseDuration reads it, where zero is a valid value; where it is not,
// the key's own message (see bad-zero-duration.yaml).
func TestZeroDurations(t *testing.T) {
	cfg, err := config.Load("testdata/good-zero-durations.yaml", env(nil))
	require.NoError(t, err)
	require.Zero(t, cfg.Period.Lag)
	require.Zero(t, cfg.Follow.Lookback)
}

// TestFollowOwnTrail: a look-back of a page of requests per interval or
// more is refused only where the streams return the audit_events_accessed
// events those requests write (see bad-follow-own-trail.yaml).
func TestFollowOwnTrail(t *testing.T) {
	for _, tc := range []struct {
		name, follow, filters string
		refused               bool
	}{
		{"every key", "{interval: 2s, lookback: 3m}", "{}", true},
		{"just below", "{interval: 2s, lookback: 97s}", "{}", false},
		{"at the limit", "{interval: 2s, lookback: 98s}", "{}", true},
		{"the defaults", "{}", "{}", false},
		{"a short interval, the default look-back", "{interval: 100ms}", "{}", true},
		{"accessed listed", "{interval: 2s, lookback: 3m}", "{event_keys: [user_login, audit_events_accessed]}", true},
		{"other keys", "{interval: 2s, lookback: 3m}", "{event_keys: [user_login, user_2fa_fail]}", false},
		{"an actor", "{interval: 2s, lookback: 3m}", "{actor_id: \"7\"}", false},
		{"users", "{interval: 2s, lookback: 3m}", "{actor_type: User}", true}, // the token's owner among them
		{"bots", "{interval: 2s, lookback: 3m}", "{actor_type: Bot}", false},
		{"users of other keys", "{interval: 2s, lookback: 3m}", "{actor_type: User, event_keys: [user_login]}", false},
		{"no look-back", "{interval: 100ms, lookback: 0s}", "{}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "source: {token: x, filters: " + tc.filters + "}\nfollow: " + tc.follow + "\nsinks: [{type: ndjson, dir: out}]\n"
			_, err := config.Parse([]byte(yaml), "p.yaml", env(nil))
			if !tc.refused {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "follow.lookback: ")
			require.ErrorContains(t, err, "audit_events_accessed")
		})
	}
}

// TestGoodOCSFConfig: the record shape and layout keys of file and S3
// sinks, with their defaults; an unquoted account id stays its digits.
func TestGoodOCSFConfig(t *testing.T) {
	cfg, err := config.Load("testdata/good-ocsf.yaml", env(nil))
	require.NoError(t, err)
	require.Len(t, cfg.Sinks, 3)
	nd := cfg.Sinks[0].File
	require.Equal(t, shape.Keys{Schema: shape.SchemaOCSF, Layout: shape.LayoutDaily}, nd.Keys)
	s3 := cfg.Sinks[1].S3
	require.True(t, s3.OCSF())
	require.True(t, s3.SecurityLakeLayout())
	require.Equal(t, "123456789012", s3.SecurityLake.AccountID)
	require.Equal(t, "pachca-export/", s3.SecurityLake.Meta())
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, "ext/acme-pachca-auth/region=eu-central-1/accountId=123456789012/eventDay=20261101",
		s3.SecurityLake.Dir(s3.SecurityLake.SourceOf()[3002], day, s3.Region), "the sink's region by default")
	lake := cfg.Sinks[2].File.SecurityLake
	require.Equal(t, "manifests/", lake.Meta())
	require.Equal(t, "ext/pachca-other/1.0/region=us-east-1/accountId=012345678901/eventDay=20261101",
		lake.Dir(lake.SourceOf()[0], day, ""))

	// Without the keys: schema v1, daily.
	cfg, err = config.Load("testdata/good-full.yaml", env(map[string]string{"PACHCA_TOKEN": "x"}))
	require.NoError(t, err)
	require.Equal(t, shape.Keys{Schema: shape.SchemaV1, Layout: shape.LayoutDaily}, cfg.Sinks[0].File.Keys)
	require.Equal(t, "", cfg.Sinks[2].S3.Label())
}

// TestRequestsPerSecondRange: rates the limiter cannot keep (overflowing
// slots, a second's window of 1e19 entries) fail with the key and line.
func TestRequestsPerSecondRange(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"0.01", true}, {"10000", true}, {"50", true},
		{"0", false}, {"-1", false}, {"0.009", false}, {"1e-300", false}, {"10001", false}, {"1e19", false}, {"1e300", false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			body := "source:\n  requests_per_second: " + tc.value + "\nsinks:\n  - type: stdout\n"
			_, err := config.Parse([]byte(body), "p.yaml", env(nil))
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, "p.yaml:2: source.requests_per_second: must be between 0.01 and 10000 (requests per second for the whole process)")
		})
	}
}

// TestConfigSizeLimit: a file that never ends (/dev/zero) or is absurdly
// large is refused after MaxFileSize bytes, in one line.
func TestConfigSizeLimit(t *testing.T) {
	_, err := config.Load("/dev/zero", env(nil))
	require.EqualError(t, err, "/dev/zero: larger than 4 MiB: not a pipeline configuration (see pipeline.yaml in the repository)")
	path := filepath.Join(t.TempDir(), "big.yaml")
	body := "sinks:\n  - type: stdout\n#" + strings.Repeat("x", config.MaxFileSize) + "\n"
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	_, err = config.Load(path, env(nil))
	require.ErrorContains(t, err, "larger than 4 MiB")
}

// TestTokenFileSizeLimit: a token_file that never ends (/dev/zero) or is
// far larger than a token (the path of another file) is refused in one
// line after 64 KiB (was: read whole: /dev/zero ran the memory out, and
// the Go runtime crashed with its stack trace).
func TestTokenFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("x", 64<<10+1)), 0o600))
	for _, file := range []string{"/dev/zero", big} {
		path := filepath.Join(dir, "p.yaml")
		require.NoError(t, os.WriteFile(path, []byte("source:\n  token_file: "+file+"\nsinks:\n  - type: stdout\n"), 0o600))
		_, err := config.Load(path, env(nil))
		require.EqualError(t, err, path+":2: source.token_file: "+file+" is larger than 64 KiB: not a token file (the token, one line)")
	}
}

// TestTokenFileNamedPipe: a token_file that is a named pipe no process
// writes into is an error after a few seconds (was: the configuration's
// load waited for a writer for ever, and SIGTERM did not end it); the
// configuration itself given through a shell's <(...) pipe is read.
func TestTokenFileNamedPipe(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "token")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	path := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(path, []byte("source:\n  token_file: "+fifo+"\nsinks:\n  - type: stdout\n"), 0o600))
	loaded := make(chan error, 1)
	go func() {
		cfg, err := config.Load(path, env(nil))
		if err == nil {
			err = cfg.Source.TokenError
		}
		loaded <- err
	}()
	select {
	case err := <-loaded:
		require.EqualError(t, err, path+":2: source.token_file: "+fifo+" is a pipe that no process wrote into within 5s")
	case <-time.After(smallfile.PipeWait + 30*time.Second):
		t.Fatal("the configuration's load waits for a writer of the token file")
	}

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	go func() {
		w.WriteString("source:\n  token: x\nsinks:\n  - type: stdout\n")
		w.Close()
	}()
	cfg, err := config.Load("/dev/fd/"+strconv.Itoa(int(r.Fd())), env(nil))
	require.NoError(t, err)
	require.Equal(t, "x", cfg.Source.Token)
}

// TestTrailingDocumentMarker: a --- at the end, with at most comments after
// it, is no second document.
func TestTrailingDocumentMarker(t *testing.T) {
	for _, tail := range []string{"---\n", "---\n# nothing more\n", "...\n"} {
		_, err := config.Parse([]byte("source:\n  token: x\nsinks:\n  - type: ndjson\n    dir: out\n"+tail), "p.yaml", env(nil))
		require.NoError(t, err, "%q", tail)
	}
}

// TestSigningPathsResolve: the signing key files resolve against the
// configuration file's directory, as the other paths do.
func TestSigningPathsResolve(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(path, []byte("sinks:\n  - type: stdout\nsigning:\n  private_key_file: keys/new.pem\n  previous_public_key_files: [keys/old.pub, /etc/k.pub]\n"), 0o600))
	cfg, err := config.Load(path, env(nil))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "keys/new.pem"), cfg.Signing.PrivateKeyFile)
	require.Equal(t, []string{filepath.Join(dir, "keys/old.pub"), "/etc/k.pub"}, cfg.Signing.PreviousPublicKeyFiles)
}

// TestInlineSecretsInAReadableFile: secrets written in a configuration file
// that every user may read are named in a warning, as a token_file every
// user may read is (was: nothing said); secrets from the environment, or a
// file of the owner's, are not.
func TestInlineSecretsInAReadableFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	const sinks = `sinks:
  - type: s3
    bucket: audit
    region: eu-central-1
    access_key_id: AKIAEXAMPLE
    secret_access_key: %s
  - type: kafka
    brokers: [127.0.0.1:9092]
    topic: audit
    sasl:
      mechanism: scram-sha-512
      username: exporter
      password: %s
`
	for _, tc := range []struct {
		name, token, key, password string
		mode                       os.FileMode
		want                       string
	}{
		{"written, readable by all", "tok", "s3cret", "kpass", 0o644, "source.token, sinks[0].secret_access_key, sinks[1].sasl.password written in the file"},
		{"one written", "${TOKEN}", "${KEY}", "kpass", 0o644, "sinks[1].sasl.password written in the file"},
		{"from the environment", "${TOKEN}", "${KEY}", "${PASS}", 0o644, ""},
		{"the owner's file", "tok", "s3cret", "kpass", 0o600, ""},
		{"the group's file", "tok", "s3cret", "kpass", 0o640, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "source:\n  token: " + tc.token + "\n" + fmt.Sprintf(sinks, tc.key, tc.password)
			require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
			require.NoError(t, os.Chmod(path, tc.mode))
			cfg, err := config.Load(path, env(map[string]string{"TOKEN": "t", "KEY": "k", "PASS": "p"}))
			require.NoError(t, err)
			if tc.want == "" {
				require.Empty(t, cfg.SecretsExposed)
				return
			}
			require.Equal(t, fmt.Sprintf("%s: %s, which every user of this machine may read (mode %04o): whoever reads it has them; chmod o-r %s, or give them as ${VAR} from the environment (source.token_file for the token)",
				path, tc.want, tc.mode, path), cfg.SecretsExposed)
			require.NotContains(t, cfg.SecretsExposed, "s3cret")
		})
	}
}
