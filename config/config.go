// Package config loads pipeline.yaml: strict decoding onto defaults (unknown
// keys and wrong types fail with their path and line), ${VAR} expansion from
// the environment, then a pure Validate.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/loopback"
	"github.com/pachca-export/pachca-export/internal/smallfile"
	"github.com/pachca-export/pachca-export/internal/tokenfile"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/transform"
)

// Config is the whole pipeline.yaml.
type Config struct {
	Source    Source    `yaml:"source"`
	Period    Period    `yaml:"period"`
	Transform Transform `yaml:"transform"`
	Sinks     []Sink    `yaml:"-"`
	State     State     `yaml:"state"`
	// Follow configures the follow mode, a continuous feed.
	Follow Follow `yaml:"follow"`
	// Output sets the permissions of the files the file sinks write and
	// where dead letters go.
	Output Output `yaml:"output"`
	// Alerts are rules over the exported events that message an administrator.
	Alerts alerts.Config `yaml:"alerts"`
	// Signing signs the day manifests of the file and S3 sinks.
	Signing Signing `yaml:"signing"`
	// File is the path the configuration was loaded from.
	File string `yaml:"-"`
	// SecretsExposed says, when the file holds secrets written in it (not
	// ${VAR}) and every user of the machine may read it, which ones; a
	// warning, as Source.TokenFileExposed.
	SecretsExposed string `yaml:"-"`
	// inline are the keys whose secret is written in the file (parse).
	inline []string
	// tokenFileAt is "file:line" of source.token_file, for the errors of
	// reading it (Load).
	tokenFileAt string
	// spelt maps each path of the file that was relative, resolved against
	// the real directory of the file, to the same path resolved against
	// that directory as filepath.Abs spells it, through symbolic links
	// (Load); nil when both are one.
	spelt map[string]string
}

// Source is where events come from.
type Source struct {
	BaseURL           string        `yaml:"base_url"`
	Token             string        `yaml:"token"`
	TokenFile         string        `yaml:"token_file"`
	Workspace         string        `yaml:"workspace"`
	Filters           Filters       `yaml:"filters"`
	RequestsPerSecond float64       `yaml:"requests_per_second"`
	Concurrency       int           `yaml:"concurrency"`
	Timeout           time.Duration `yaml:"timeout"`
	MaxRetries        int           `yaml:"max_retries"`
	// AllowInsecure permits an http:// base_url that is not loopback.
	AllowInsecure bool `yaml:"allow_insecure"`
	// TokenError says why Token is empty although the file names one: an
	// unset environment variable in token, or an unreadable or empty
	// token_file.
	// Loading does not fail on it, so that `check` can report it and a dry
	// run can do without a token; RequireToken returns it.
	TokenError error `yaml:"-"`
	// TokenFileExposed says, when token_file was read, that every user of
	// the machine may read it; a warning, not an error: Kubernetes mounts
	// a Secret 0644 unless its defaultMode says otherwise.
	TokenFileExposed string `yaml:"-"`
	// TokenWatch, when set, is token_file as it is now: the API client
	// takes the token from it at each request, Token being its first
	// (see WatchTokenFile).
	TokenWatch *tokenfile.File `yaml:"-"`
}

// WatchTokenFile sets TokenWatch when the token was read from token_file
// (a regular file), so that a token rotated by writing the file is used
// without a restart; o.Seen is told each token before it is sent.
func (s *Source) WatchTokenFile(o tokenfile.Options) {
	if s.TokenFile != "" && s.Token != "" && s.TokenError == nil {
		s.TokenWatch = tokenfile.Watch(s.TokenFile, s.Token, o)
	}
}

// RequireToken returns nil when the source has a token, else an error that
// says why not and how to set one (file names the configuration).
func (s Source) RequireToken(file string) error {
	switch {
	case s.Token != "":
		return nil
	case s.TokenError != nil:
		return s.TokenError
	}
	return fmt.Errorf("%s: source.token: required (set it in the file, with token_file, the PACHCA_TOKEN variable it names, or --token)", file)
}

// CheckToken reports a token that no HTTP request can carry: one with a
// control character, such as the line break of a copied line, or one the
// API cannot take for the token meant: an invisible format character (a
// byte order mark, a zero-width space). The error does not show the
// token; callers name where it came from.
func CheckToken(tok string) error { return tokenfile.Check(tok) }

// MinRequestsPerSecond and MaxRequestsPerSecond bound
// source.requests_per_second: one request in 100 s at least (a slower
// limiter's slots overflow a time.Duration), and at most 10,000 a second,
// some 200 times what an API grants (the limiter keeps a second of sends).
const (
	MinRequestsPerSecond = 0.01
	MaxRequestsPerSecond = 10000
)

// rateProblem says what is wrong with a requests_per_second, or "".
func rateProblem(rps float64) string {
	if !(rps >= MinRequestsPerSecond && rps <= MaxRequestsPerSecond) { // NaN too
		return fmt.Sprintf("must be between %g and %g (requests per second for the whole process)", float64(MinRequestsPerSecond), float64(MaxRequestsPerSecond))
	}
	return ""
}

// Filters are the API's optional filters; several event keys are several streams.
type Filters struct {
	EventKeys  []string `yaml:"event_keys"`
	ActorID    string   `yaml:"actor_id"`
	ActorType  string   `yaml:"actor_type"`
	EntityID   string   `yaml:"entity_id"`
	EntityType string   `yaml:"entity_type"`
}

// readsOwnTrail tells whether the streams certainly return the
// audit_events_accessed events of the exporter's own requests: every key or
// that one listed, and no actor or entity filter but actor_type User, which
// those events have (the token's owner, a user: no bot has the scope).
func (f Filters) readsOwnTrail() bool {
	return (len(f.EventKeys) == 0 || slices.Contains(f.EventKeys, transform.AccessedKey)) &&
		f.ActorID == "" && (f.ActorType == "" || f.ActorType == ownerType) && f.EntityID == "" && f.EntityType == ""
}

// ownerType is the actor_type of the token's owner, the only one with scope
// audit_events:read.
const ownerType = "User"

// Extract returns the filters the API client sends with every request.
func (f Filters) Extract() extract.Filters {
	return extract.Filters{ActorID: f.ActorID, ActorType: f.ActorType, EntityID: f.EntityID, EntityType: f.EntityType}
}

// ClientConfig is the API client's configuration for this source; hc may be
// nil (the client's own transport).
func (s Source) ClientConfig(hc *http.Client) extract.ClientConfig {
	return extract.ClientConfig{
		BaseURL: s.BaseURL, Token: s.Token, TokenFile: s.TokenWatch, Filters: s.Filters.Extract(),
		RPS: s.RequestsPerSecond, Timeout: s.Timeout, MaxRetries: s.MaxRetries, HTTPClient: hc,
	}
}

// Period is what a run without --from/--to exports.
type Period struct {
	// Default is "yesterday": every complete UTC day not yet exported.
	Default string `yaml:"default"`
	// From and To fix the period instead (T as on the command line).
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Lag keeps runs away from the present, which may still change.
	Lag time.Duration `yaml:"lag"`
	// Retention is how far back the API keeps events.
	Retention time.Duration `yaml:"retention"`
}

// Transform configures the normalization step.
type Transform struct {
	DropEventKeys []string `yaml:"drop_event_keys"`
	// DropOwnReads drops the audit_events_accessed events of the
	// exporter's own requests (their user agent names the state's reader
	// id), keeping every other read of the log.
	DropOwnReads bool `yaml:"drop_own_reads"`
}

// Follow configures `pachca-export follow`: every Interval it exports what
// is older than period.lag, re-reading Lookback behind its watermark for
// events the API publishes late.
type Follow struct {
	Interval time.Duration `yaml:"interval"`
	Lookback time.Duration `yaml:"lookback"`
	// KeepCycleFiles keeps the files of a day's cycles when the day is
	// sealed, instead of compacting them into one file.
	KeepCycleFiles bool `yaml:"keep_cycle_files"`
	// GiveUpAfter ends the process (exit 1) when cycles have failed for so
	// long, so that the supervisor restarts it and someone is told.
	GiveUpAfter time.Duration `yaml:"give_up_after"`
	// Listen is the address of /metrics, /healthz and /readyz; "" for none.
	Listen string `yaml:"listen"`
}

// Signing is the optional Ed25519 key that signs every day manifest, so that
// a copy of an export can be verified by someone who does not trust the
// machine that wrote it.
type Signing struct {
	// PrivateKeyFile is a PEM PKCS #8 Ed25519 key (openssl genpkey
	// -algorithm ed25519); empty for unsigned manifests.
	PrivateKeyFile string `yaml:"private_key_file"`
	// PreviousPublicKeyFiles are PEM Ed25519 public keys of signing keys
	// replaced by PrivateKeyFile: a run signs again, with PrivateKeyFile,
	// a manifest it relinks whose signature checks with one of them, and
	// verify accepts their signatures.
	PreviousPublicKeyFiles []string `yaml:"previous_public_key_files"`
}

// State is where checkpoints and the record of exported days live.
type State struct {
	Dir string `yaml:"dir"`
}

// Sink is one entry of sinks: its type and that type's settings.
type Sink struct {
	Type   string
	Line   int
	File   *FileSink         // ndjson, parquet
	S3     *s3sink.Config    // s3
	Kafka  *kafkasink.Config // kafka
	Stdout *StdoutSink       // stdout
}

// FileSink writes day-partitioned files under Dir.
type FileSink struct {
	Dir         string `yaml:"dir"`
	Compression string `yaml:"compression"`
	// Keys choose the record shape (schema) and, for parquet, the layout
	// (layout, security_lake); see package shape.
	shape.Keys `yaml:",inline"`
	// FileMode and DirMode are output.file_mode and output.dir_mode, copied
	// here by Parse (zero in a FileSink built by hand: the sink's defaults).
	FileMode, DirMode fs.FileMode `yaml:"-"`
}

// DefaultFileCompression is the codec a file sink of type typ writes with
// when the file gives none: the encoder's default, none for ndjson
// (ndjson.Format) and zstd for parquet (parquetfmt's codec).
func DefaultFileCompression(typ string) string {
	if typ == "parquet" {
		return "zstd"
	}
	return "none"
}

// FileCompression is the codec a file sink (s.File set) writes with. The
// configuration keeps the compression as written: the state's key of the
// versions before 2026-12 holds it so (see pipeline.FormerIdentities).
func (s Sink) FileCompression() string {
	if s.File.Compression != "" {
		return s.File.Compression
	}
	return DefaultFileCompression(s.Type)
}

// StdoutSink writes NDJSON lines to standard output.
type StdoutSink struct{}

// SinkTypes lists the accepted values of sinks[].type.
var SinkTypes = []string{"ndjson", "parquet", "s3", "kafka", "stdout"}

// Default returns a configuration with every default set and no sinks.
func Default() Config {
	return Config{
		Source: Source{
			BaseURL:           extract.DefaultBaseURL,
			RequestsPerSecond: 50,
			Concurrency:       8,
			Timeout:           30 * time.Second,
			MaxRetries:        10,
		},
		Period: Period{Default: "yesterday", Lag: 2 * time.Minute, Retention: 90 * 24 * time.Hour},
		Follow: Follow{Interval: time.Minute, Lookback: 15 * time.Minute, GiveUpAfter: 30 * time.Minute},
		State:  State{Dir: ".pachca-export"},
		Output: Output{FileMode: "0600", DirMode: "0750"},
	}
}

// Load reads, decodes and validates the file at path; lookup reads the
// environment (os.LookupEnv in production). Every error names the file, line
// and key; several problems are joined. Relative paths in the file are
// resolved against the file's directory, whatever the working directory. A
// token that cannot be read is not an error here: see Source.TokenError.
func Load(path string, lookup func(string) (string, bool)) (*Config, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	// Relative paths are the file's neighbours; a configuration read from a
	// pipe or a terminal (-c /dev/stdin) has none but the working directory.
	dir := filepath.Dir(path)
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		dir = "."
	}
	spelt, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Against the directory's real path: filepath.Abs takes the working
	// directory from $PWD when it names it, and a shell's $PWD keeps the
	// symbolic links it went through, while cron's `env -i`, a systemd
	// unit's WorkingDirectory= or another spelling of -c would not: the
	// same configuration would key another state and export its days again.
	base := spelt
	if real, err := filepath.EvalSymlinks(spelt); err == nil {
		base = real
	}
	cfg, err := parse(b, path, lookup, base, spelt)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 != 0 && len(cfg.inline) > 0 {
		cfg.SecretsExposed = fmt.Sprintf("%s: %s written in the file, which every user of this machine may read (mode %04o): whoever reads it has them; "+
			"chmod o-r %s, or give them as ${VAR} from the environment (source.token_file for the token)",
			path, strings.Join(cfg.inline, ", "), fi.Mode().Perm(), path)
	}
	if cfg.Source.TokenFile != "" && cfg.Source.Token == "" {
		tok, err := tokenfile.Read(cfg.Source.TokenFile)
		var inv *tokenfile.InvalidError
		switch {
		case errors.Is(err, smallfile.ErrTooLarge), errors.As(err, &inv):
			return nil, fmt.Errorf("%s: source.token_file: %s", cfg.tokenFileAt, tokenfile.Problem(cfg.Source.TokenFile, err))
		case errors.Is(err, tokenfile.ErrEmpty):
			cfg.Source.TokenError = fmt.Errorf("%s: source.token_file: %s", cfg.tokenFileAt, tokenfile.Problem(cfg.Source.TokenFile, err))
		case err != nil:
			cfg.Source.TokenError = fmt.Errorf("%s: source.token_file: %w", cfg.tokenFileAt, err)
		default:
			cfg.Source.Token = tok
		}
		if fi, serr := os.Stat(cfg.Source.TokenFile); (err == nil || errors.Is(err, tokenfile.ErrEmpty)) && serr == nil && fi.Mode().Perm()&0o004 != 0 {
			cfg.Source.TokenFileExposed = fmt.Sprintf("source.token_file: %s is readable by every user of this machine (mode %04o): whoever reads it reads the workspace's audit log; chmod o-r %s (0600, or 0440 for a group)",
				cfg.Source.TokenFile, fi.Mode().Perm(), cfg.Source.TokenFile)
		}
	}
	if cfg.Source.Token == "" && cfg.Source.TokenFile == "" && cfg.Source.TokenError == nil {
		// The README's first lines export PACHCA_TOKEN: a file that does
		// not name it would otherwise say "required" while it is set.
		if v, ok := lookup(TokenVariable); ok && v != "" {
			cfg.Source.TokenError = fmt.Errorf("%s: source.token: required: %s is set in the environment, but the file does not name it: add `token: ${%s}` under source (or give token_file, or --token)",
				path, TokenVariable, TokenVariable)
		}
	}
	return cfg, nil
}

// TokenVariable is the environment variable the README and the examples
// give the token in, as source.token: ${PACHCA_TOKEN}.
const TokenVariable = "PACHCA_TOKEN"

// document is the shape checked and decoded first; sinks are decoded one by one.
type document struct {
	Config `yaml:",inline"`
	Sinks  []yaml.Node `yaml:"sinks"`
}

var nodeType = reflect.TypeFor[yaml.Node]()

// Parse decodes b (named file in messages) onto the defaults and validates
// it; relative paths stay relative.
func Parse(b []byte, file string, lookup func(string) (string, bool)) (*Config, error) {
	return parse(b, file, lookup, "", "")
}

// parse is Parse, then, when base is set, resolves relative paths against
// it and checks the places they name; spelt is base as the command line
// spelt it (see Config.SpeltPath). No error shows the value of an
// environment variable: see checker.unexpand.
func parse(b []byte, file string, lookup func(string) (string, bool), base, spelt string) (*Config, error) {
	c := &checker{file: file}
	cfg, err := c.parse(b, lookup, base, spelt)
	return cfg, c.unexpand(err)
}

// emptyDocument reports whether a YAML document holds nothing: a trailing
// --- with at most comments after it.
func emptyDocument(d *yaml.Node) bool {
	return len(d.Content) == 0 || len(d.Content) == 1 && d.Content[0].Kind == yaml.ScalarNode && d.Content[0].Tag == "!!null"
}

func (c *checker) parse(b []byte, lookup func(string) (string, bool), base, spelt string) (*Config, error) {
	file := c.file
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, b, err)
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case err == nil && !emptyDocument(&more):
		return nil, fmt.Errorf("%s:%d: a second YAML document (after ---): the configuration is one document", file, more.Line)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, syntaxError(file, b, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty configuration (see pipeline.yaml in the repository for an example)", file)
	}
	c.expandEnv(&root, "", lookup)
	doc := root.Content[0]
	c.check(doc, reflect.TypeFor[document](), "")
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	d := document{Config: Default()}
	if err := doc.Decode(&d); err != nil {
		// What the checks above let through, one line as every error.
		var te *yaml.TypeError
		if errors.As(err, &te) {
			lines := make([]string, len(te.Errors))
			for i, e := range te.Errors {
				lines[i] = file + ":" + strings.TrimPrefix(e, "line ")
			}
			return nil, errors.New(strings.Join(lines, "; "))
		}
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	cfg := d.Config
	cfg.File = file
	cfg.Source.TokenError = c.tokenErr
	cfg.inline = c.inline
	cfg.tokenFileAt = c.file
	if n := keyAt(doc, "source.token_file"); n != nil {
		cfg.tokenFileAt = fmt.Sprintf("%s:%d", c.file, n.Line)
	}
	for i := range d.Sinks {
		s, ok := c.decodeSink(&d.Sinks[i], fmt.Sprintf("sinks[%d]", i))
		if ok {
			cfg.Sinks = append(cfg.Sinks, s)
		}
	}
	if err := CheckToken(cfg.Source.Token); err != nil {
		n := child(doc, "source", "token")
		if w, ok := c.written[n]; ok {
			c.fail(n, "source.token", "the value of %s %v", w, err)
		} else {
			c.fail(n, "source.token", "%v", err)
		}
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, c.withLines(doc, err)
	}
	fileMode, dirMode := cfg.Output.Modes()
	for _, s := range cfg.Sinks {
		if s.File != nil {
			s.File.FileMode, s.File.DirMode = fileMode, dirMode
		}
	}
	if base != "" {
		cfg.resolvePaths(base, spelt)
		if err := cfg.checkPaths(); err != nil {
			return nil, c.withLines(doc, err)
		}
	}
	return &cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError turns "yaml: line 3: did not find expected key" into
// "pipeline.yaml:8: did not find expected key (not valid YAML)", naming the
// line the document stops being YAML at (badLine): the parser's own number
// is, for most of its errors, the line before the mapping or list that
// holds the mistake (a key indented one space less under source: names the
// comment above source:). A line of b indented with a tab is named as
// such: the parser's words for it ("found character that cannot start any
// token") do not say what to change, and it may name the line before.
func syntaxError(file string, b []byte, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		for _, l := range []int{n, n + 1} {
			if tabIndented(b, l) {
				return fmt.Errorf("%s:%d: a tab in the indentation: YAML indents with spaces only (replace the tab with spaces)", file, l)
			}
		}
		return fmt.Errorf("%s:%d: %s (not valid YAML)", file, badLine(b, n), msg[len(m[0]):])
	}
	return fmt.Errorf("%s: %s", file, strings.TrimPrefix(msg, "yaml: "))
}

// maxBadLineWork bounds the bytes badLine parses, at most the file once a
// line it searches: a pipeline.yaml of some hundred lines and a few KiB
// takes a fraction of it, and a file of many thousands keeps the parser's
// number.
const maxBadLineWork = 32 << 20

// badLine is the line (from 1) at which b stops being YAML: the one after
// the longest run of its first lines that parses, searched from the end so
// that a list or string that spans lines, which its first lines alone
// leave open, is not taken for the mistake. from is the parser's number,
// never past the mistake (it names where the enclosing mapping, or the
// scalar, begins), and is returned when the search is out of bounds.
func badLine(b []byte, from int) int {
	lines := bytes.SplitAfter(b, []byte("\n"))
	if from < 1 || from > len(lines) || (len(lines)-from)*len(b) > maxBadLineWork {
		return from
	}
	end := len(b)
	for k := len(lines) - 1; k >= from-1; k-- {
		end -= len(lines[k])
		if validYAML(b[:end]) {
			return k + 1
		}
	}
	return from
}

// validYAML reports whether every document of b parses.
func validYAML(b []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		switch err := dec.Decode(&n); {
		case errors.Is(err, io.EOF):
			return true
		case err != nil:
			return false
		}
	}
}

// tabIndented reports whether line n (from 1) of b has a tab before its
// first other character.
func tabIndented(b []byte, n int) bool {
	lines := bytes.Split(b, []byte("\n"))
	if n < 1 || n > len(lines) {
		return false
	}
	indent := bytes.TrimLeft(lines[n-1], " \t")
	return bytes.ContainsRune(lines[n-1][:len(lines[n-1])-len(indent)], '\t')
}

// decodeSink decodes one sinks entry: first its type, then strictly into the
// settings of that type.
func (c *checker) decodeSink(n *yaml.Node, path string) (Sink, bool) {
	var head struct {
		Type string `yaml:"type"`
	}
	s := Sink{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		c.fail(n, path, "want a mapping with a type key")
		return s, false
	}
	if c.checkTwice(n, path) {
		return s, false // the decoder below would refuse the mapping
	}
	if err := n.Decode(&head); err != nil || head.Type == "" {
		c.fail(n, path+".type", "required (%s)", strings.Join(SinkTypes, ", "))
		return s, false
	}
	s.Type = head.Type
	var options any // the settings of the type: one of s's pointers
	switch head.Type {
	case "ndjson", "parquet":
		s.File = &FileSink{}
		s.File.SetDefaults()
		options = s.File
	case "s3":
		s.S3 = &s3sink.Config{}
		s.S3.SetDefaults()
		options = s.S3
	case "kafka":
		s.Kafka = &kafkasink.Config{}
		s.Kafka.SetDefaults()
		options = s.Kafka
	case "stdout":
		s.Stdout = &StdoutSink{}
		options = s.Stdout
	default:
		c.fail(n, path+".type", "unknown sink type %q (%s)", head.Type, strings.Join(SinkTypes, ", "))
		return s, false
	}
	// The type key is checked with the settings, then dropped from them.
	wrapper := reflect.StructOf([]reflect.StructField{
		{Name: "Type", Type: reflect.TypeFor[string](), Tag: `yaml:"type"`},
		{Name: "Options", Type: reflect.TypeOf(options).Elem(), Tag: `yaml:",inline"`},
	})
	before := len(c.errs)
	c.check(n, wrapper, path)
	if len(c.errs) > before {
		return s, false
	}
	settings := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "type" {
			settings.Content = append(settings.Content, n.Content[i], n.Content[i+1])
		}
	}
	if err := settings.Decode(options); err != nil {
		c.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return s, false
	}
	return s, true
}

// withLines names the file before each of the joined errors of Validate,
// and the line of the key each names when the file gives that key, else
// of the nearest key above it the file gives (a key required and missing:
// "p.yaml:12: sinks[1].bucket: required" names the sink's item; was: no
// line, in a file of several sinks of one type), else none (a default):
// "p.yaml:7: period.lag: must be 0 or more".
func (c *checker) withLines(doc *yaml.Node, err error) error {
	var out []error
	for _, e := range unjoin(err) {
		msg := e.Error()
		path, _, _ := strings.Cut(msg, ": ")
		line := 0
		for p := path; p != "" && line == 0; p = parentPath(p) {
			if n := keyAt(doc, p); n != nil {
				line = n.Line
			}
		}
		out = append(out, &fieldError{file: c.file, line: line, msg: msg})
	}
	return errors.Join(out...)
}

// parentPath is path without its last step: "sinks[1].bucket" → "sinks[1]"
// → "sinks" → "".
func parentPath(path string) string {
	return path[:max(strings.LastIndexAny(path, ".["), 0)]
}

// keyAt is the node that names path ("sinks[1].security_lake.region") in
// the tree under doc: the key of a mapping entry, the item of a list; nil
// when the file does not give it. "period" stands for the one of
// period.from and period.to that is given.
func keyAt(doc *yaml.Node, path string) *yaml.Node {
	if path == "period" {
		if n := keyAt(doc, "period.from"); n != nil {
			return n
		}
		return keyAt(doc, "period.to")
	}
	n, key := doc, (*yaml.Node)(nil)
	for _, seg := range strings.Split(path, ".") {
		name, index, _ := strings.Cut(seg, "[")
		key = nil
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				key, next = n.Content[i], n.Content[i+1]
			}
		}
		n = next
		for index != "" { // one or more [i]
			var is string
			is, index, _ = strings.Cut(index, "]")
			index = strings.TrimPrefix(index, "[")
			i, err := strconv.Atoi(is)
			if n == nil || n.Kind != yaml.SequenceNode || err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			key, n = n.Content[i], n.Content[i]
		}
	}
	return key
}

// validPort reports whether p is a TCP port a URL may name: 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// Validate checks the decoded configuration without any I/O. Errors are
// joined, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	s := c.Source
	if u, err := url.Parse(s.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		bad("source.base_url", "want an http(s) URL such as %s", extract.DefaultBaseURL)
	} else if port := u.Port(); strings.HasSuffix(u.Host, ":") || port != "" && !validPort(port) {
		// url.Parse takes "host:" and any digits; the client would dial
		// port 80 or 443 for the first, fail for the others.
		bad("source.base_url", "the port of %s must be a number from 1 to 65535 (or no colon at all)", u.Host)
	} else if u.Scheme == "http" && !loopback.Host(u.Hostname()) && !s.AllowInsecure {
		bad("source.base_url", "plain http to %s would send the token unencrypted; use https, or set source.allow_insecure: true", u.Hostname())
	} else if base, ok := strings.CutSuffix(strings.TrimRight(u.Path, "/"), "/audit_events"); ok {
		// The endpoint's URL as the API reference gives it: the client
		// adds /audit_events, and the API would answer 404.
		api := url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: base}
		bad("source.base_url", "ends in the endpoint /audit_events, which the exporter adds: give the API's base, %s", api.Redacted())
	}
	if s.Token != "" && s.TokenFile != "" {
		bad("source.token_file", "set either token or token_file, not both")
	}
	if msg := rateProblem(s.RequestsPerSecond); msg != "" {
		bad("source.requests_per_second", "%s", msg)
	}
	if s.Concurrency < 1 || s.Concurrency > 64 {
		bad("source.concurrency", "must be between 1 and 64")
	}
	if s.Timeout <= 0 {
		bad("source.timeout", "must be above 0")
	}
	if s.MaxRetries < 0 {
		bad("source.max_retries", "must be 0 or more")
	}
	for i, k := range s.Filters.EventKeys {
		if k == "" {
			bad(fmt.Sprintf("source.filters.event_keys[%d]", i), "empty event key")
		} else if slices.Index(s.Filters.EventKeys, k) != i {
			bad(fmt.Sprintf("source.filters.event_keys[%d]", i), "%s is listed twice", k)
		}
	}
	for _, l := range []struct {
		at   string
		keys []string
	}{{"source.filters.event_keys", s.Filters.EventKeys}, {"transform.drop_event_keys", c.Transform.DropEventKeys}} {
		for i, k := range l.keys {
			if meant := miswrittenKey(k); meant != "" {
				bad(fmt.Sprintf("%s[%d]", l.at, i), "%q is not an event key: write %s (keys are matched exactly)", k, meant)
			}
		}
	}
	for j, k := range c.Transform.DropEventKeys {
		if slices.Contains(s.Filters.EventKeys, k) {
			bad(fmt.Sprintf("transform.drop_event_keys[%d]", j), "%s is also in source.filters.event_keys: its events would be fetched only to be dropped; leave it out of one of the two", k)
		}
	}
	p := c.Period
	if p.Default != "yesterday" {
		bad("period.default", "unknown value %q (yesterday)", p.Default)
	}
	if p.Lag < 0 {
		bad("period.lag", "must be 0 or more")
	}
	if p.Retention <= 0 {
		bad("period.retention", "must be above 0")
	}
	var from, to time.Time
	var err error
	if p.From != "" {
		if from, err = ParseTime(p.From); err != nil {
			bad("period.from", "%v", err)
		}
	}
	if p.To != "" {
		if to, err = ParseTime(p.To); err != nil {
			bad("period.to", "%v", err)
		}
	}
	if (p.From == "") != (p.To == "") {
		bad("period", "set both from and to, or neither")
	} else if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		bad("period.to", "must be after period.from (%s)", p.From)
	}
	if len(c.Sinks) == 0 {
		bad("sinks", "at least one sink is required (%s)", strings.Join(SinkTypes, ", "))
	}
	for i, sk := range c.Sinks {
		if err := sk.Validate(); err != nil {
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("sinks[%d].%w", i, e))
			}
		}
	}
	if c.State.Dir == "" {
		bad("state.dir", "required")
	}
	errs = append(errs, c.checkTilde()...)
	f := c.Follow
	if f.Interval < 100*time.Millisecond {
		bad("follow.interval", "must be 100ms or more")
	}
	if f.Lookback < 0 {
		bad("follow.lookback", "must be 0 or more")
	}
	if p.Retention > 0 && f.Lookback > 0 && p.Lag+f.Lookback > p.Retention-24*time.Hour {
		// A day is sealed (read once more whole) lag + lookback after
		// its end: later than that, the API no longer holds all of it.
		bad("follow.lookback", "%s and period.lag (%s) must add up to at most period.retention (%s) minus a day, so that a day is sealed while the API still holds it whole",
			f.Lookback, p.Lag, p.Retention)
	}
	if f.Interval > 0 && f.Lookback+f.Interval >= extract.PageSize*f.Interval && s.Filters.readsOwnTrail() {
		// A cycle reads lookback + interval of the log, a page a request,
		// and each request writes one event into that span: at a page per
		// interval or more, every cycle needs more requests than the last,
		// until the requests take the whole rate limit.
		bad("follow.lookback", "%s is %d times follow.interval (%s) or more while the streams include %s: each request writes one into the span a cycle re-reads (%d events a request), so every cycle would need more requests than the last, until they take the whole rate limit; keep it below %s, raise follow.interval, or list the keys to read in source.filters.event_keys",
			f.Lookback, extract.PageSize-1, f.Interval, transform.AccessedKey, extract.PageSize, (extract.PageSize-1)*f.Interval)
	}
	if f.GiveUpAfter < f.Interval {
		bad("follow.give_up_after", "must be at least follow.interval (%s)", f.Interval)
	}
	if f.Listen != "" {
		if err := CheckListen(f.Listen); err != nil {
			bad("follow.listen", "%v", err)
		}
	}
	if err := c.Output.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("output.%w", e))
		}
	}
	if err := c.Alerts.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("alerts.%w", e))
		}
	}
	// Rules see the records delivered: a key never exported would make a
	// rule that silently never fires.
	for i, r := range c.Alerts.Rules {
		for k, key := range r.EventKeys {
			at := fmt.Sprintf("alerts.rules[%d].event_keys[%d]", i, k)
			switch {
			case slices.Contains(c.Transform.DropEventKeys, key):
				bad(at, "%s is dropped by transform.drop_event_keys: the rule would never see it", key)
			case len(s.Filters.EventKeys) > 0 && !slices.Contains(s.Filters.EventKeys, key):
				bad(at, "%s is not among source.filters.event_keys: the rule would never see it", key)
			}
		}
	}
	return errors.Join(errs...)
}

// miswrittenKey returns the event key k stands for when k is one written
// with capitals or spaces around it (" User_Login"), else "": keys are
// matched exactly, so such a key would drop nothing, without a word (the
// API refuses it as a filter, but only once a run has begun). A key no
// list knows passes: the API adds keys.
func miswrittenKey(k string) string {
	meant := strings.ToLower(strings.TrimSpace(k))
	if meant != k && transform.Category(meant) != transform.CategoryOther {
		return meant
	}
	return ""
}

// Validate checks one sink's settings; errors name keys relative to the sink.
func (s Sink) Validate() error {
	switch {
	case s.File != nil:
		var errs []error
		if s.File.Dir == "" {
			errs = append(errs, errors.New("dir: required"))
		}
		allowed := []string{"", "none", "gzip", "zstd"}
		if s.Type == "parquet" {
			allowed = []string{"", "none", "snappy", "gzip", "zstd"}
		}
		if !slices.Contains(allowed, s.File.Compression) {
			errs = append(errs, fmt.Errorf("compression: unknown %q (%s)", s.File.Compression, strings.Join(allowed[1:], ", ")))
		}
		if err := s.File.Keys.Validate(s.Type, ""); err != nil {
			errs = append(errs, unjoin(err)...)
		}
		return errors.Join(errs...)
	case s.S3 != nil:
		return s.S3.Validate()
	case s.Kafka != nil:
		return s.Kafka.Validate()
	}
	return nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TimeForms lists, with examples, the forms ParseTime reads: the end of
// its errors, and of the commands' errors of a --from/--to value.
const TimeForms = "a date (2026-11-01 = 00:00 UTC) or RFC 3339 with Z or an offset, seconds optional (2026-11-01T10:00Z, 2026-11-01T10:00:00+03:00)"

// ErrTimeForm is wrapped by ParseTime's error for a value in none of its
// forms, so that a command reading more forms (--to now) can name them.
var ErrTimeForm = errors.New("use " + TimeForms)

// rfc3339Minutes is RFC 3339 without its seconds, as typed by hand
// (2026-11-01T10:00Z): the same instant as with ":00".
const rfc3339Minutes = "2006-01-02T15:04Z07:00"

// ParseTime reads a command-line time: RFC 3339 (2026-11-01T00:00:00Z),
// with or without seconds, with a lowercase t or z (RFC 3339 5.6 allows
// both) and with an offset without its colon (+0300, +03: ISO 8601's, and
// date's %z), or a date (2026-11-01, meaning 00:00 UTC of that day). A time of
// day without Z or an offset is an error, not taken for UTC or local time:
// either guess would shift a range by hours unsaid. A time before 1970 is
// an error: callers take the zero time.Time (year 1) for a bound not given.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t, err = parseRFC3339(s)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q: %w", s, err)
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, fmt.Errorf("invalid time %q: before 1970, older than any event the API holds", s)
	}
	// Events carry milliseconds: a bound inside one takes in the events of
	// the next millisecond on, whether it begins a range or ends it.
	if ns := time.Duration(t.Nanosecond()) % time.Millisecond; ns != 0 {
		t = t.Add(time.Millisecond - ns)
	}
	return t.UTC(), nil
}

// offsetNoColon is a time of day with an offset without its colon: +hhmm,
// what date +%Y-%m-%dT%H:%M:%S%z prints (2026-12-02T10:00:00+0300), or +hh
// (ISO 8601 allows both). Nothing else could be meant: the time's own
// hours and minutes are colon-separated, and time.Parse checks the figures
// once the offset is RFC 3339's +hh:mm.
var offsetNoColon = regexp.MustCompile(`^(.*T\d\d:\d\d(?::\d\d(?:\.\d+)?)?[+-])(\d\d)(\d\d)?$`)

// parseRFC3339 reads RFC 3339 with or without seconds, and offsets
// without a colon; its error says what to add to a time without an offset,
// or is ErrTimeForm.
func parseRFC3339(s string) (time.Time, error) {
	if len(s) > len(time.DateOnly) && s[len(time.DateOnly)] == 't' {
		s = s[:len(time.DateOnly)] + "T" + s[len(time.DateOnly)+1:]
	}
	if z, ok := strings.CutSuffix(s, "z"); ok {
		s = z + "Z"
	}
	if m := offsetNoColon.FindStringSubmatch(s); m != nil {
		s = m[1] + m[2] + ":" + cmp.Or(m[3], "00")
	}
	for _, layout := range []string{time.RFC3339Nano, rfc3339Minutes} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		if _, err := time.Parse(layout, s); err == nil {
			return time.Time{}, fmt.Errorf("no Z nor offset, so UTC or local time? add Z for UTC (%sZ) or the offset (%s+03:00)", s, s)
		}
	}
	return time.Time{}, ErrTimeForm
}

// CheckListen checks an address to listen on (follow.listen, --listen)
// without binding it: host:port with a port from 0 to 65535 (0 picks a free
// one). The error says what is wanted.
func CheckListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return errors.New("want host:port with a port from 0 to 65535, such as 127.0.0.1:9464 or :9464")
	}
	return nil
}
