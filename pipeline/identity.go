package pipeline

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/secret"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/state"
)

// Identity is what defines the data of a state: the source (its workspace
// label included: two workspaces behind one base URL, feeding one Kafka
// topic, must not share a record of exported days), its filters and the
// destinations. It names the state directory and is written into it; it
// holds no secret.
func Identity(cfg *config.Config) any {
	return stateIdentity(cfg, spelling{workspace: cfg.Source.Workspace})
}

// FormerIdentities are the identities that named cfg's state in earlier
// versions, for state.Open to take that state over: before the workspace
// label was part of it, before an S3 prefix was keyed as the folder it
// names, "audit/" whether written "audit" or "audit/" (those versions keyed
// it as written: a state of "audit" is taken over by either spelling),
// before an S3 endpoint was keyed without its trailing slash (likewise),
// and before the event keys were keyed in order (those versions keyed them
// as written: a state of [b, a] is taken over by the keys in any order;
// one found under state.dir, whatever its order, if not as now written),
// and before a file sink's default compression was keyed as none written
// (those versions keyed `compression: zstd` of a parquet sink apart from
// none: either state is taken over whether it is written out or not).
func FormerIdentities(cfg *config.Config) []any {
	own, _ := json.Marshal(Identity(cfg)) // strings only: always encodes
	workspaces := []string{cfg.Source.Workspace}
	if cfg.Source.Workspace != "" {
		workspaces = append(workspaces, "")
	}
	bares, slashes := []bool{false}, []bool{false}
	if slices.ContainsFunc(cfg.Sinks, func(s config.Sink) bool { return s.S3 != nil && s.S3.Prefix != "" }) {
		bares = append(bares, true)
	}
	if slices.ContainsFunc(cfg.Sinks, func(s config.Sink) bool { return s.S3 != nil && s.S3.Endpoint != "" }) {
		slashes = append(slashes, true)
	}
	// Each file sink at its default compression was keyed as written: by
	// its name or by none. A few sinks at most: every combination.
	var defaults []int
	for i, s := range cfg.Sinks {
		if s.File != nil && s.FileCompression() == config.DefaultFileCompression(s.Type) && len(defaults) < 4 {
			defaults = append(defaults, i)
		}
	}
	// A file sink's relative dir, as keyed through the symbolic links of
	// the configuration's directory.
	spelts := []bool{false}
	if slices.ContainsFunc(cfg.Sinks, func(s config.Sink) bool { return s.File != nil && cfg.SpeltPath(s.File.Dir) != s.File.Dir }) {
		spelts = append(spelts, true)
	}
	var ids []any
	add := func(sp spelling) {
		id := stateIdentity(cfg, sp)
		if b, _ := json.Marshal(id); !bytes.Equal(b, own) {
			ids = append(ids, id)
		}
	}
	for _, spelt := range spelts {
		for mask := range 1 << len(defaults) {
			named := map[int]bool{}
			for bit, i := range defaults {
				named[i] = mask&(1<<bit) != 0
			}
			if mask != 0 || spelt { // the current spelling but for the compressions or the dirs
				add(spelling{workspace: cfg.Source.Workspace, defaultNamed: named, spelt: spelt})
			}
			for _, bare := range bares {
				for _, slash := range slashes {
					for _, ws := range workspaces {
						add(spelling{workspace: ws, barePrefix: bare, written: true, endpointSlash: slash, defaultNamed: named, spelt: spelt})
					}
				}
			}
		}
	}
	return append(ids, reordered(cfg, own)...)
}

// spelling is how a version of pachca-export wrote a state's key.
type spelling struct {
	workspace string // the label; "" is left out, as before it was keyed
	// barePrefix: S3 prefixes without their trailing slash, as versions
	// before 2026-12 keyed "audit".
	barePrefix bool
	// written: the filters as written, and S3 endpoints as written, with
	// one trailing slash or none (endpointSlash), as versions before
	// 2026-12 keyed them; else as keyedFilters and sinkIdentity have them.
	written, endpointSlash bool
	// defaultNamed are the sinks (by index) whose file compression, their
	// type's default (ndjson none, parquet zstd), is keyed by its name, as
	// versions before 2026-12 keyed it when the file wrote it out; the
	// others' default is keyed as none written.
	defaultNamed map[int]bool
	// spelt: file sinks' relative dirs resolved through the symbolic
	// links of the configuration's directory, as the command line and
	// $PWD spelt it (config.Config.SpeltPath), as versions before 2026-12
	// keyed them; else against its real path.
	spelt bool
}

// reordered are the identities of the states under state.dir that differ
// from own, cfg's, only in the order of their event keys, or in [] for
// none, as versions before 2026-12 keyed them.
func reordered(cfg *config.Config, own []byte) []any {
	type key struct {
		BaseURL   string         `json:"base_url"`
		Workspace string         `json:"workspace,omitempty"`
		Filters   config.Filters `json:"filters"`
		Sinks     []string       `json:"sinks"`
	}
	var mine key
	if json.Unmarshal(own, &mine) != nil {
		return nil
	}
	var ids []any
	for _, raw := range state.Identities(cfg.State.Dir) {
		var k key
		if b, err := json.Marshal(raw); err != nil || bytes.Equal(b, own) { // compact, as own
			continue
		}
		if json.Unmarshal(raw, &k) != nil || k.BaseURL != mine.BaseURL || k.Workspace != mine.Workspace ||
			!slices.Equal(k.Sinks, mine.Sinks) || !sameFilters(k.Filters, mine.Filters) {
			continue
		}
		ids = append(ids, raw)
	}
	return ids
}

// stateIdentity is Identity as spelt by sp.
func stateIdentity(cfg *config.Config, sp spelling) any {
	var dests []string
	for i, s := range cfg.Sinks {
		if s.File != nil && sp.spelt {
			f := *s.File
			f.Dir = cfg.SpeltPath(f.Dir)
			s.File = &f
		}
		dests = append(dests, sinkIdentity(s, sp, sp.defaultNamed[i]))
	}
	filters := cfg.Source.Filters
	if !sp.written {
		filters = keyedFilters(filters)
	}
	return struct {
		BaseURL   string         `json:"base_url"`
		Workspace string         `json:"workspace,omitempty"`
		Filters   config.Filters `json:"filters"`
		Sinks     []string       `json:"sinks"`
	}{strings.TrimRight(secret.WithoutUser(cfg.Source.BaseURL), "/"), sp.workspace, filters, dests}
}

// keyedFilters are f as a state's key holds them: the event keys sorted,
// and no list for an empty one, since neither their order nor `[]` for
// none changes what the streams return.
func keyedFilters(f config.Filters) config.Filters {
	if len(f.EventKeys) == 0 {
		f.EventKeys = nil
	} else {
		f.EventKeys = slices.Sorted(slices.Values(f.EventKeys))
	}
	return f
}

// sinkIdentity names a sink's destination and what it writes there; the
// record shape and layout are appended only when they are not the defaults,
// so that the states of configurations older than them keep their keys.
// An S3 prefix is the folder it names, as a directory is its absolute
// path, and an endpoint is keyed without its trailing slash, as the base
// URL is: another spelling is the same place (see spelling for the keys of
// earlier versions). A file sink's default compression is keyed as none
// written, unless defaultNamed: it writes the same files.
func sinkIdentity(s config.Sink, sp spelling, defaultNamed bool) string {
	switch {
	case s.File != nil:
		compression := s.File.Compression
		if c := s.FileCompression(); c == config.DefaultFileCompression(s.Type) {
			compression = "" // the default, written out or not
			if defaultNamed {
				compression = c
			}
		}
		return sinkPlace(s, sp) + compression + shapeSuffix(s.File.Keys)
	case s.S3 != nil:
		return sinkPlace(s, sp) + s.S3.Format + ":" + s.S3.Compression + shapeSuffix(s.S3.Keys)
	case s.Kafka != nil:
		b := slices.Sorted(slices.Values(s.Kafka.Brokers))
		return fmt.Sprintf("kafka:%s:%s", strings.Join(b, ","), s.Kafka.Topic)
	}
	return s.Type
}

// sinkPlace is the start of a file or S3 sink's identity, which names
// where it writes (`ndjson:/abs/dir:`, `s3:endpoint:bucket/prefix/:`); ""
// for another sink.
func sinkPlace(s config.Sink, sp spelling) string {
	switch {
	case s.File != nil:
		dir, err := filepath.Abs(s.File.Dir)
		if err != nil {
			dir = s.File.Dir
		}
		return fmt.Sprintf("%s:%s:", s.Type, dir)
	case s.S3 != nil:
		prefix := s.S3.KeyPrefix()
		if sp.barePrefix {
			prefix = strings.TrimSuffix(prefix, "/")
		}
		endpoint := strings.TrimRight(secret.WithoutUser(s.S3.Endpoint), "/")
		if sp.endpointSlash && endpoint != "" {
			endpoint += "/"
		}
		return fmt.Sprintf("s3:%s:%s/%s:", endpoint, s.S3.Bucket, prefix)
	}
	return ""
}

// shapeSuffix is ":" and the shape's label (shape.Keys.Label), or "" for
// the defaults. A Security Lake layout adds where its objects go.
func shapeSuffix(k shape.Keys) string {
	label := k.Label()
	if label == "" {
		return ""
	}
	if sl := k.SecurityLake; k.SecurityLakeLayout() && sl != nil {
		b, _ := json.Marshal(sl) // strings and a map of strings: always encodes, keys sorted
		label += string(b)
	}
	return ":" + label
}

// DataIdentity is the identity of the data this configuration writes to a
// file or S3 sink (each sink adds its format, record shape and layout):
// what its files hold. A sink's root holds one identity only; see
// sinks.Identity.
func DataIdentity(cfg *config.Config) sinks.Identity {
	f := cfg.Source.Filters
	return sinks.Identity{
		BaseURL: secret.WithoutUser(cfg.Source.BaseURL), Workspace: cfg.Source.Workspace,
		EventKeys: f.EventKeys, ActorID: f.ActorID, ActorType: f.ActorType, EntityID: f.EntityID, EntityType: f.EntityType,
		DropEventKeys: cfg.Transform.DropEventKeys, DropOwnReads: cfg.Transform.DropOwnReads,
	}.Normal()
}

// Signer reads the manifest signing key of cfg (signing.private_key_file);
// nil without one. A key that cannot be read, or that other users may read
// or write (whoever reads it can sign manifests as this exporter), is a
// usage error; the group may read it (a Secret mounted for an fsGroup).
func Signer(cfg *config.Config) (ed25519.PrivateKey, error) {
	path := cfg.Signing.PrivateKeyFile
	if path == "" {
		return nil, nil
	}
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().Perm()&0o007 != 0 {
		return nil, failure.Usagef("signing.private_key_file: %s is open to other users (mode %04o): whoever reads it can sign manifests as this exporter; make it private (chmod o-rwx %s) and, if others have read it, replace it (see Rotating the signing key)",
			path, fi.Mode().Perm(), path)
	}
	b, err := sinks.ReadKeyFile(path)
	if err != nil {
		return nil, failure.Usagef("signing.private_key_file: %w", err)
	}
	key, err := sinks.ParsePrivateKey(b)
	if err != nil {
		return nil, failure.Usagef("signing.private_key_file: %s: %w", path, err)
	}
	return key, nil
}

// PreviousKeys reads the public keys of signing keys replaced by
// signing.private_key_file (signing.previous_public_key_files); a key that
// cannot be read is a usage error.
func PreviousKeys(cfg *config.Config) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, path := range cfg.Signing.PreviousPublicKeyFiles {
		b, err := sinks.ReadKeyFile(path)
		if err != nil {
			return nil, failure.Usagef("signing.previous_public_key_files[%d]: %w", i, err)
		}
		key, err := sinks.ParsePublicKey(b)
		if err != nil {
			return nil, failure.Usagef("signing.previous_public_key_files[%d]: %s: %w (write it with: pachca-export verify -c pipeline.yaml --print-public-key, before replacing the key)", i, path, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// sourceSibling is a state beside cfg's of the same source, workspace and
// filters, with other sinks (their identities, as key.json has them).
type sourceSibling struct {
	state.Sibling
	sinks []string
}

// sourceSiblings returns cfg's sinks' identities and the states beside v's
// of the same source, workspace and filters whose sinks differ.
func sourceSiblings(cfg *config.Config, v *state.View) ([]string, []sourceSibling) {
	own, other := sameSource(cfg)
	var out []sourceSibling
	for _, s := range v.Siblings() {
		if sinks, ok := other(s.Identity); ok {
			out = append(out, sourceSibling{s, sinks})
		}
	}
	return own, out
}

// sameSource returns cfg's sinks' identities, and a function that tells
// whether a state's identity (its key.json) is of cfg's source, workspace
// and filters with other sinks, and which.
func sameSource(cfg *config.Config) ([]string, func(json.RawMessage) ([]string, bool)) {
	type key struct {
		BaseURL   string         `json:"base_url"`
		Workspace string         `json:"workspace"`
		Filters   config.Filters `json:"filters"`
		Sinks     []string       `json:"sinks"`
	}
	var own key
	b, err := json.Marshal(Identity(cfg))
	if err != nil || json.Unmarshal(b, &own) != nil {
		return nil, func(json.RawMessage) ([]string, bool) { return nil, false }
	}
	return own.Sinks, func(id json.RawMessage) ([]string, bool) {
		var k key
		if json.Unmarshal(id, &k) != nil || k.BaseURL != own.BaseURL || k.Workspace != own.Workspace ||
			!sameFilters(k.Filters, own.Filters) || slices.Equal(k.Sinks, own.Sinks) {
			return nil, false
		}
		return k.Sinks, true
	}
}

// FollowedNotes warn the first start of a follow loop on a new state (v's),
// at start, of the loops of the states beside it, of the same source,
// workspace and filters with other sinks (a sink added, removed or
// moved), whose watermark is past start: the sinks of cfg they delivered
// to get the events between again, into new cycle files beside theirs.
func FollowedNotes(cfg *config.Config, v *state.View, start time.Time) []string {
	own, other := sameSource(cfg)
	var notes []string
	for _, s := range v.FollowSiblings() {
		theirs, ok := other(s.Identity)
		if !ok || !s.Follow.Watermark.After(start) {
			continue
		}
		var again []string
		files := false
		for i, sk := range own {
			place := sinkPlace(cfg.Sinks[i], spelling{workspace: cfg.Source.Workspace})
			if slices.ContainsFunc(theirs, func(k string) bool { return k == sk || place != "" && strings.HasPrefix(k, place) }) {
				again = append(again, fmt.Sprintf("sinks[%d] %s", i, cfg.Sinks[i].Type))
				files = files || place != ""
			}
		}
		if len(again) == 0 {
			continue
		}
		verb := "gets"
		if len(again) > 1 {
			verb = "get"
		}
		note := fmt.Sprintf("a new state: the follow loop of %s, the state of this source and filters with other sinks, delivered up to %s, and this one starts at %s: %s %s the events between again",
			s.Dir, fmtT(s.Follow.Watermark), fmtT(start), strings.Join(again, ", "), verb)
		if files {
			note += ", in cycle files beside that loop's: twice in the day until its seal compacts it"
			if cfg.Follow.KeepCycleFiles {
				note += " (with follow.keep_cycle_files, for good: a repair of the day compacts it)"
			}
		}
		notes = append(notes, note)
	}
	return notes
}

// CaughtUp are the days v records exported, and those a state beside it of
// the same source, workspace and filters records exported to every sink of
// cfg and others (a configuration before a sink was removed): a day
// exported to every sink counts as exported, whichever state recorded it,
// so that going back to an earlier configuration's state does not export
// again, or report lost, the days the other exported meanwhile (a day on
// the retention edge, exported again, would be refused: the API no longer
// returns all its events). The catch-up and a follow loop's first start
// read it; exported is v's own record.
func CaughtUp(cfg *config.Config, v *state.View, exported map[string]state.Day) map[string]state.Day {
	own, sibs := sourceSiblings(cfg, v)
	// Only from v's first day on: the catch-up starts there, and days
	// before it are no concern of this state's.
	first := ""
	for d := range exported {
		if first == "" || d < first {
			first = d
		}
	}
	out := exported
	for _, s := range sibs {
		if slices.ContainsFunc(own, func(sk string) bool { return !slices.Contains(s.sinks, sk) }) {
			continue
		}
		out = maps.Clone(out)
		for d, rec := range s.Days {
			if _, ok := out[d]; !ok && d >= first {
				out[d] = rec
			}
		}
	}
	return out
}

// MovedSinkNotes warn a new state, whose first catch-up or follow starts at
// first (YYYY-MM-DD), of the states beside v's of the same source,
// workspace and filters whose sinks differ, that exported days before
// first: moving a sink (a Kafka broker to another port) makes a new state,
// and the days none of them had exported yet would be exported by
// nothing; adding a file or S3 sink (a place none of them writes to)
// makes one too, and the new sink would hold none of the days before
// first, which verify then fails on it, and only the days the API still
// holds at now (period.retention) can be given to it. held names, by
// index, the first day each sink that was read holds whole (nil: none was
// read): a sink that holds the days from the other states' first on (or
// from the retention's edge) moved with its data, and is no sink added.
func MovedSinkNotes(cfg *config.Config, v *state.View, first string, now time.Time, held map[int]string) []string {
	own, sibs := sourceSiblings(cfg, v)
	var notes, dirs, known []string // known: the sinks of those states
	from := first                   // the first day they exported
	latest := ""                    // the last day any of them exported
	for _, s := range sibs {
		latest = max(latest, s.Last)
	}
	for _, s := range sibs {
		known = append(known, s.sinks...)
		if s.First < first {
			from = min(from, s.First)
			dirs = append(dirs, s.Dir)
		}
		last, err := time.Parse(time.DateOnly, s.Last)
		if err != nil || s.Last < latest {
			continue // another state exported the days after its last
		}
		next := last.AddDate(0, 0, 1).Format(time.DateOnly)
		if next >= first {
			continue // no day between
		}
		notes = append(notes, fmt.Sprintf("a new state: %s, the state of this source and filters with other sinks (%s), exported up to %s, and this new state starts at %s; if a sink only moved (a Kafka broker's address changed), export the days between with run --from %s --to %s",
			s.Dir, strings.Join(s.sinks, ", "), s.Last, first, next, first))
	}
	// The first whole day the API still holds.
	edge := now.Add(-cfg.Period.Retention).Add(day - time.Nanosecond).UTC().Truncate(day).Format(time.DateOnly)
	var added []string
	for i, s := range cfg.Sinks {
		// By place: a Parquet sink's compression changed holds its days.
		place := sinkPlace(s, spelling{workspace: cfg.Source.Workspace})
		if place == "" || slices.ContainsFunc(known, func(k string) bool { return strings.HasPrefix(k, place) }) {
			continue
		}
		// Moved with its data (a directory renamed, the output and the
		// state copied to another path or host): it holds those days.
		if h, ok := held[i]; ok && h <= max(from, edge) {
			continue
		}
		added = append(added, fmt.Sprintf("sinks[%d] (%s)", i, own[i]))
	}
	if len(added) == 0 || from >= first {
		return notes
	}
	note := fmt.Sprintf("a new state: no state of this source and filters beside it (%s), which exported days from %s, wrote where %s writes; such a sink gets the days from %s on, and verify fails the days before on it",
		strings.Join(dirs, ", "), from, strings.Join(added, ", "), first)
	if from < edge {
		note += fmt.Sprintf(": those before %s are past the API's retention and cannot be given to it (give verify a --from %s)", edge, edge)
		from = edge
	}
	if from < first {
		note += fmt.Sprintf(": if it was added (not moved with its data), give it the days from %s with pachca-export verify --repair --from %s --to %s (it takes this state's lock: stop a follow loop meanwhile), which delivers them to every sink again (the other sinks' files rewritten with the same events, Kafka sent them again)",
			from, from, first)
	}
	return append(notes, note)
}

// sameFilters tells whether two states' filters select the same events
// (a state keyed before keyedFilters may hold its keys in another order).
func sameFilters(a, b config.Filters) bool {
	a, b = keyedFilters(a), keyedFilters(b)
	return slices.Equal(a.EventKeys, b.EventKeys) && a.ActorID == b.ActorID && a.ActorType == b.ActorType &&
		a.EntityID == b.EntityID && a.EntityType == b.EntityType
}
