package sinks

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/failure"
)

// Claim is what a run binds a file-like sink to before it writes anything.
type Claim struct {
	// Identity of the data; the sink fills in Format, Schema and Layout
	// itself.
	Identity Identity
	// Signer signs every manifest the sink writes; nil for unsigned ones.
	Signer ed25519.PrivateKey
	// Previous are the public keys of signing keys Signer replaced: a
	// manifest signed by one of them is signed again with Signer when the
	// run changes it (see Ledger.resigner).
	Previous []ed25519.PublicKey
	// Create writes the marker when the root has none. Without it (check,
	// verify) nothing is written.
	Create bool
}

// ClaimResult says what Claim found.
type ClaimResult struct {
	Location string // where the marker is, for messages
	// Identity is the identity claimed, with the sink's format, schema and
	// layout filled in and normalized.
	Identity Identity
	// IdentityHash is the claimed identity's hash (with the sink's format),
	// which the manifests of the root must record.
	IdentityHash string
	Marked       bool // the root has a marker (written before, or now with Create)
	// Adopted: the root had data but no marker, which Claim wrote now (with
	// Create) or would write: the data is taken as this identity's.
	Adopted bool
	// Others are entries of a root without a marker that are none of the
	// exporter's (at most a few, the daily layout only): files a reader of
	// the location reads too, and verify reports.
	Others []string
	// Within is the marker of another location that encloses this marked
	// one (see Enclosed): its readers and verify read this one's files.
	Within string
}

// Claimer is implemented by file-like sinks, whose root holds the data of
// one identity (see Identity). Claim is called once, before any Open.
type Claimer interface {
	// Claim reads the root's marker: absent, it is written (with Create),
	// adopting data already there; present, it must record c.Identity, or
	// Claim fails with a usage error that names the differing keys and
	// writes nothing. After Claim the sink's manifests record the identity
	// and are signed with c.Signer.
	Claim(ctx context.Context, c Claim) (ClaimResult, error)
}

// Holder is implemented by sinks that keep what they committed (files,
// objects), so that a run can refuse to replace a file with a smaller one.
type Holder interface {
	// Existing reports the records of the files that committing p would
	// replace, from the day's manifest (a lower bound of the distinct
	// events they hold); ok is false when there is none. A
	// day whose manifest was written for another identity gives a
	// *ForeignDayError, part of a day whose manifest lists the whole
	// day's file a *WholeDayError.
	Existing(ctx context.Context, p Partition) (records int64, ok bool, err error)
}

// Linker is implemented by sinks whose day manifests form a chain (see
// Manifest). Committing a day links its manifest to the previous day's;
// the days after it, if any exist already, must be linked again: the run
// calls Relink after the last day of each block of consecutive days it
// delivers, so that a backfill of many days relinks the days after them
// once, not once per day.
type Linker interface {
	// Relink links the manifests of the days after p's day again, in
	// order, until one links already.
	Relink(ctx context.Context, p Partition) error
}

// ForeignDayError means a day's manifest records another data identity
// than the sink's (its marker was removed, or files were copied in).
// In the Security Lake layout it also means that another configuration's
// manifest of the day, in another manifest folder of the same root, lists
// a file the day would replace (File): both write the same sources.
type ForeignDayError struct {
	Manifest string // location of the manifest
	Identity string // the identity hash it records
	File     string // the file of ours it lists, "" when the manifest is of our day directory
}

func (e *ForeignDayError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s lists %s, of another identity (%.12s…): the two configurations write the same Security Lake sources; "+
			"give this one sources of its own (security_lake.sources) besides its own manifest_prefix", e.Manifest, e.File, e.Identity)
	}
	return fmt.Sprintf("%s was written for another identity (%.12s…) than this configuration's; "+
		"export this configuration to another location, or move that day away", e.Manifest, e.Identity)
}

// WholeDayError refuses a partition of part of a day whose manifest lists
// the file of the whole day (written by a run with another state, which
// does not know the day is exported): that file holds its events already.
type WholeDayError struct {
	Manifest string // location of the manifest
	File     string // the whole day's file, as the manifest names it
}

func (e *WholeDayError) Error() string {
	return fmt.Sprintf("the day is held whole here (%s lists %s): a range of part of it would repeat its events; export the whole day instead", e.Manifest, e.File)
}

// Ledger keeps the marker and the chained manifests of one root for the
// sink that owns it. It holds no lock: the sink serialises its calls (one
// partition at a time) and guards the store against other processes, by a
// lock file or by conditional writes.
type Ledger struct {
	store  Store
	format Format
	layout Layout
	now    func() time.Time
	hash   string // the claimed identity's hash, "" before Claim
	signer ed25519.PrivateKey
	// retired are the public keys of keys signer replaced, whose
	// signatures are signed again with signer.
	retired []ed25519.PublicKey
}

// NewLedger returns the ledger of store for files of format f placed by
// layout l.
func NewLedger(store Store, f Format, l Layout) *Ledger {
	return &Ledger{store: store, format: f, layout: l, now: time.Now}
}

// FormatLabel is the format part of an identity: the extension without its
// leading dot ("ndjson.gz", "parquet").
func FormatLabel(f Format) string { return strings.TrimPrefix(f.Ext, ".") }

// Claim implements Claimer for the sink that owns the ledger.
func (l *Ledger) Claim(ctx context.Context, c Claim) (ClaimResult, error) {
	id := c.Identity
	id.Format = FormatLabel(l.format)
	id.Schema = l.format.SchemaVersion()
	id.Layout = l.layout.Name
	id = id.Normal()
	marker := l.layout.MarkerName()
	res := ClaimResult{Location: l.store.Location(marker), Identity: id, IdentityHash: id.Hash()}
	within := ""
	if e, ok := l.store.(Enclosed); ok {
		within = e.Enclosing(ctx)
	}
	for range manifestTries {
		b, _, err := l.store.Get(ctx, marker)
		if err == nil {
			if err := l.compare(b, id, res.Location, false); err != nil {
				if failure.IsUsage(err) && l.holdsNoDay(ctx) {
					err = l.compare(b, id, res.Location, true)
				}
				return res, err
			}
			// Marked before this check existed: said, not refused, so
			// that a job that ran goes on.
			res.Marked, res.Within = true, within
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return res, err
		}
		foreign, err := l.foreign(ctx)
		if err != nil {
			return res, err
		}
		if err := l.otherLayout(ctx, id, foreign); err != nil {
			return res, err
		}
		if within != "" {
			return res, failure.Usagef("this location lies inside another sink's (%s), whose readers and verify would read this configuration's files as its own: "+
				"give this configuration a location outside it (dir, or S3 prefix)", within)
		}
		res.Others = others(foreign)
		days, err := l.store.Days(ctx, l.layout.Meta)
		if err != nil {
			return res, err
		}
		if len(days) > 0 {
			if err := l.adoptable(ctx, days, id); err != nil {
				return res, err
			}
			res.Adopted = true
		}
		if !c.Create {
			break
		}
		err = l.store.Put(ctx, marker, newMarker(id, l.now()), NoVersion)
		if errors.Is(err, ErrChanged) {
			continue // another run marked it first: compare with that
		}
		if err != nil {
			return res, err
		}
		res.Marked = true
		break
	}
	if c.Create && !res.Marked {
		return res, fmt.Errorf("%s: %w %d times in a row", res.Location, ErrChanged, manifestTries)
	}
	l.hash, l.signer, l.retired = id.Hash(), c.Signer, c.Previous
	return res, nil
}

// maxOthers bounds the foreign entries Claim names.
const maxOthers = 3

// others names the foreign entries (foreign), at most maxOthers of them.
func others(foreign []Object) []string {
	var out []string
	for _, e := range foreign {
		if len(out) == maxOthers {
			out = append(out, "...")
			break
		}
		out = append(out, strings.TrimSuffix(e.Name, "/"))
	}
	return out
}

// foreign lists the entries at the root of the daily layout that are not
// the exporter's: neither a dt= directory nor a temporary file of a write;
// none for the Security Lake layout, which shares its bucket by design.
func (l *Ledger) foreign(ctx context.Context) ([]Object, error) {
	if l.layout.Meta != "" {
		return nil, nil
	}
	entries, err := l.store.Entries(ctx, "")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(entries, func(e Object) bool {
		name := strings.TrimSuffix(e.Name, "/")
		return strings.HasPrefix(name, "dt=") || atomicfile.IsTemp(name)
	}), nil
}

// maxFolders bounds the folders at a root whose markers otherLayout reads
// (one request each): a lake's root holds a few (ext/, its manifest_prefix,
// Security Lake's own aws/).
const maxFolders = 16

// otherLayout refuses a location that a sink of the other layout claimed:
// a Security Lake sink over a daily sink's root (its marker there), or a
// daily sink over a lake's (the lake's marker in a folder at the root, its
// manifest_prefix), whose readers would read both. A marker that cannot be
// read says nothing: a lake's bucket policy need not let the exporter read
// its root. foreign are the root's entries (foreign), whose folders may
// hold a lake's marker.
func (l *Ledger) otherLayout(ctx context.Context, id Identity, foreign []Object) error {
	var names []string
	if l.layout.Name != "" {
		names = []string{MarkerName}
	}
	for _, e := range foreign {
		if e.Dir && len(names) < maxFolders {
			names = append(names, strings.TrimSuffix(e.Name, "/")+"/"+MarkerName)
		}
	}
	for _, name := range names {
		b, _, err := l.store.Get(ctx, name)
		if err != nil {
			continue
		}
		var m Marker
		if json.Unmarshal(b, &m) != nil || m.Identity.Layout == l.layout.Name {
			continue // not a marker, or one of this layout: a sink nested in another's is warned of (others)
		}
		return l.compare(b, id, l.store.Location(name), false)
	}
	return nil
}

// adoptable checks data found without a marker: the newest manifest must
// record id, or no identity (versions before markers).
func (l *Ledger) adoptable(ctx context.Context, days []string, id Identity) error {
	for i := len(days) - 1; i >= 0; i-- {
		m, _, ok, err := l.read(ctx, days[i])
		if err != nil || !ok {
			continue // a damaged manifest is verify's to report
		}
		if m.Identity != "" && m.Identity != id.Hash() {
			return failure.Usagef("this location has no marker (%s) but its manifests record another identity (%.12s…, in %s): give this configuration another location (dir, or S3 prefix), or move the existing data away",
				MarkerName, m.Identity, l.store.Location(l.layout.ManifestName(days[i])))
		}
		return nil
	}
	return nil
}

// compare checks the marker b against id; empty says the location holds no
// day, which the refusal then says with what to do.
func (l *Ledger) compare(b []byte, id Identity, where string, empty bool) error {
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil || m.IdentityHash == "" {
		return failure.Permanentf("%s is damaged or not pachca-export's; restore it, or move it away to adopt the data as this configuration's", where)
	}
	if m.IdentityHash == id.Hash() {
		if m.Identity.Hash() != m.IdentityHash {
			// What it says the location holds is not what it vouches for.
			return failure.Permanentf("%s is damaged: its identity is not the one of its identity_hash (edited?); restore it, or move it away to adopt the data as this configuration's", where)
		}
		return nil
	}
	diff := id.Diff(m.Identity)
	if len(diff) == 0 { // a marker edited by hand, or of a newer version
		diff = []string{"identity hash " + id.Hash()[:12] + " here, " + m.IdentityHash[:min(12, len(m.IdentityHash))] + " there"}
	}
	if empty {
		return failure.Usagef("this location holds no events yet, but is marked as another configuration's (%s; see %s, written %s): a run of that configuration may have failed before writing any (an event key the API refused); if that configuration is given up and none of its runs is running, remove %s, else give this configuration another location (dir, or S3 prefix)",
			strings.Join(diff, "; "), where, m.CreatedAt.UTC().Format(time.RFC3339), where)
	}
	return failure.Usagef("this location holds the events of another configuration (%s; see %s): give this configuration another location (dir, or S3 prefix), or move the existing data away",
		strings.Join(diff, "; "), where)
}

// holdsNoDay tells whether the location holds no day: a run whose
// configuration marked it may have failed before writing (an event key the
// API refused), and the marker alone stands in another's way.
func (l *Ledger) holdsNoDay(ctx context.Context) bool {
	days, err := l.store.Days(ctx, l.layout.Meta)
	return err == nil && len(days) == 0
}

// replaces returns whether committing p replaces the file a manifest entry
// names: every file of the day for a whole day (a Compact partition, or a
// full day of a run, which holds every event a partial range of the day
// wrote before), else the files p writes (Layout.Replaces: one, or one per
// key of a split layout, wherever the keys' directories were).
func (l *Ledger) replaces(p Partition) func(ManifestFile) bool {
	if p.Compact || p.FullDay() {
		return func(ManifestFile) bool { return true }
	}
	return func(e ManifestFile) bool {
		name := EntryPath(p.Dir(), e.Name)
		return l.layout.Replaces(p, l.format, name) || within(e, p) && l.isData(p, name)
	}
}

// within reports whether e is the file of a partial range inside p's, such
// as the same range ending at now minus period.lag, run again later: p
// holds every event of it (in its format: isData). A follow cycle's part
// holds only some events of its range: it neither replaces nor is
// replaced so.
func within(e ManifestFile, p Partition) bool {
	return !p.Part && !e.Part && !e.From.Before(p.From) && !e.To.After(p.To)
}

// Existing implements Holder: the records of the files committing p
// replaces (see replaces), counted as heldAtLeast does; for a Compact
// partition (a followed day, whose cycle files hold each event once
// although their ranges overlap) their sum, or what the day's other files
// hold at least, when more.
func (l *Ledger) Existing(ctx context.Context, p Partition) (int64, bool, error) {
	if err := l.shared(ctx, p); err != nil {
		return 0, false, err
	}
	m, _, ok, err := l.read(ctx, p.Dir())
	if err != nil || !ok {
		return 0, false, err
	}
	if err := l.own(m, p.Dir()); err != nil {
		return 0, false, err
	}
	if err := l.heldWhole(p, m); err != nil {
		return 0, false, err
	}
	var files, others []ManifestFile
	var parts int64
	replaces := l.replaces(p)
	for _, e := range m.Files {
		if replaces(e) {
			files = append(files, e)
			if p.Compact && e.Part {
				parts += e.Records
			} else {
				others = append(others, e)
			}
		}
	}
	if p.Compact {
		// The cycle files hold each event once; a run's file of part of
		// the day beside them (another state's run into this directory)
		// holds some of their events again: at least the larger of the two.
		return max(parts, heldAtLeast(others)), len(files) > 0, nil
	}
	return heldAtLeast(files), len(files) > 0, nil
}

// heldAtLeast is how many distinct events files hold at the least: the
// most records of files whose ranges do not overlap. Files of one range (a
// split layout's, one per key) hold different events and add up; files of
// overlapping ranges (a partial range, then its whole day) may hold the
// same events, and do not.
func heldAtLeast(files []ManifestFile) int64 {
	type span struct {
		from, to time.Time
		records  int64
	}
	var spans []span
	for _, f := range files {
		i := slices.IndexFunc(spans, func(s span) bool { return s.from.Equal(f.From) && s.to.Equal(f.To) })
		if i < 0 {
			spans = append(spans, span{from: f.From, to: f.To})
			i = len(spans) - 1
		}
		spans[i].records += f.Records
	}
	// The heaviest set of spans that do not overlap, by their ends.
	slices.SortFunc(spans, func(a, b span) int { return a.to.Compare(b.to) })
	best := make([]int64, len(spans)+1) // best[i]: of spans[:i]
	for i, s := range spans {
		before := sort.Search(i, func(k int) bool { return spans[k].to.After(s.from) }) // spans[:before] end by s.from
		best[i+1] = max(best[i], best[before]+s.records)
	}
	return best[len(spans)]
}

// heldWhole fails with a WholeDayError when p is part of a day whose
// manifest m lists the whole day's file. A follow cycle's part (Part) is
// not refused: the seal of its day replaces it.
func (l *Ledger) heldWhole(p Partition, m Manifest) error {
	if p.Compact || p.FullDay() || p.Part {
		return nil
	}
	day := Partition{Day: p.Day, From: p.Day, To: p.Day.AddDate(0, 0, 1)}
	paths := l.layout.Paths(day, l.format)
	for _, e := range m.Files {
		if e.From.Equal(day.From) && e.To.Equal(day.To) && slices.Contains(paths, EntryPath(p.Dir(), e.Name)) {
			return &WholeDayError{Manifest: l.store.Location(l.layout.ManifestName(p.Dir())), File: e.Name}
		}
	}
	return nil
}

// shared fails with a ForeignDayError when, in a layout whose manifests
// are kept apart (Security Lake), the day's manifest in another folder at
// the root, written for another identity, lists a file in a data
// directory of p's day: the two write the same sources, whose objects
// would mix, and be replaced or removed by each run in turn.
func (l *Ledger) shared(ctx context.Context, p Partition) error {
	if l.layout.Meta == "" || l.hash == "" {
		return nil
	}
	entries, err := l.store.Entries(ctx, "")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	dirs := l.layout.DataDirs(p.Day)
	for _, e := range entries {
		meta := strings.TrimSuffix(e.Name, "/") + "/"
		if !e.Dir || meta == l.layout.Meta || slices.ContainsFunc(dirs, func(d string) bool { return strings.HasPrefix(d, meta) }) {
			continue
		}
		manifest := Layout{Meta: meta}.ManifestName(p.Dir())
		b, _, err := l.store.Get(ctx, manifest)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		m, err := DecodeManifest(b)
		if err != nil || m.Identity == "" || m.Identity == l.hash {
			continue // not a manifest of another configuration's (a damaged one is its verify's to report)
		}
		for _, f := range m.Files {
			// Not Replaces: its other directories are ours moved, not theirs.
			if name := EntryPath(p.Dir(), f.Name); slices.Contains(dirs, path.Dir(name)) {
				return &ForeignDayError{Manifest: l.store.Location(manifest), Identity: m.Identity, File: name}
			}
		}
	}
	return nil
}

// own fails with a ForeignDayError when m was written for another identity.
// Manifests of versions that recorded none are taken as ours.
func (l *Ledger) own(m Manifest, dayDir string) error {
	if l.hash != "" && m.Identity != "" && m.Identity != l.hash {
		return &ForeignDayError{Manifest: l.store.Location(l.layout.ManifestName(dayDir)), Identity: m.Identity}
	}
	return nil
}

// read returns the manifest of a day directory and its version; ok is
// false when there is none.
func (l *Ledger) read(ctx context.Context, dayDir string) (m Manifest, version string, ok bool, err error) {
	b, version, err := l.store.Get(ctx, l.layout.ManifestName(dayDir))
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, NoVersion, false, nil
	}
	if err != nil {
		return Manifest{}, "", false, err
	}
	m, err = DecodeManifest(b)
	if err != nil {
		return Manifest{}, "", false, failure.Permanentf("manifest %s is damaged (%v): move it away and export the day again", l.store.Location(l.layout.ManifestName(dayDir)), err)
	}
	return m, version, true, nil
}

// Prepared is a day's next manifest, for its sink to write.
type Prepared struct {
	Body []byte
	// Version is that of the manifest it replaces, for a conditional write.
	Version string
	// Replaced names (as manifest entries do, see EntryPath) the files the
	// manifest listed and no longer does: the files the partition replaces
	// (see replaces) that it did not write again; for a whole day, every
	// other data file of the day (see isData), listed or not. The sink
	// removes them.
	Replaced []string
	// Overlaps names the files of a partial range the manifest keeps whose
	// ranges overlap the partition's without lying inside it: they hold
	// some of its events again (see Result.Overlaps).
	Overlaps []string
}

// Prepare returns the new manifest of p's day with files in place of the
// entries p replaces, linked to the previous day's and signed, for the
// caller to write in place of the one it read. The days after it are
// relinked by Relink (see Linker).
func (l *Ledger) Prepare(ctx context.Context, p Partition, files ...ManifestFile) (Prepared, error) {
	m, version, ok, err := l.read(ctx, p.Dir())
	if err != nil {
		return Prepared{}, err
	}
	if ok {
		if err := l.own(m, p.Dir()); err != nil {
			return Prepared{}, err
		}
	}
	if ok && m.Day != p.Date() {
		m = Manifest{} // another day's manifest moved here: its entries are not this day's files
	}
	if err := l.heldWhole(p, m); err != nil {
		return Prepared{}, err
	}
	if m.Signature != "" && l.signer == nil {
		// Even rewritten whole, the day would lose its signature and the
		// next day's link to it.
		_, err := l.resigner(m, l.layout.ManifestName(p.Dir()))
		return Prepared{}, err
	}
	written := map[string]bool{}
	for _, f := range files {
		written[f.Name] = true
	}
	whole := p.Compact || p.FullDay()
	var objects []Object // the day's data files
	if len(m.Files) > 0 || whole || !p.Part {
		// With the directories of the files the manifest lists elsewhere
		// (sources renamed): a whole day replaces them too.
		names := make([]string, len(m.Files))
		for i, e := range m.Files {
			names[i] = e.Name
		}
		for _, dir := range l.layout.ListedDirs(p.Day, p.Dir(), names) {
			in, err := l.store.List(ctx, dir)
			if err != nil {
				return Prepared{}, err
			}
			objects = append(objects, in...)
		}
	}
	if len(m.Files) > 0 {
		// A manifest describes what its day holds: the entry of a file
		// someone removed (a partial range that doubled the day) goes.
		present := map[string]bool{}
		for _, o := range objects {
			present[o.Name] = true
		}
		m.Files = slices.DeleteFunc(m.Files, func(e ManifestFile) bool {
			return !written[e.Name] && !present[EntryPath(p.Dir(), e.Name)]
		})
	}
	var replaced []string
	replaces := l.replaces(p)
	m.Files = slices.DeleteFunc(m.Files, func(e ManifestFile) bool {
		if !replaces(e) {
			return false
		}
		if !written[e.Name] {
			replaced = append(replaced, e.Name)
		}
		return true
	})
	if whole {
		// Every data file of the day goes, listed or not: a run killed
		// between writing the manifest and removing the files it replaced
		// left them listed by no manifest.
		for _, o := range objects {
			if name := EntryName(p.Dir(), o.Name); l.isData(p, o.Name) && !written[name] && !slices.Contains(replaced, name) {
				replaced = append(replaced, name)
			}
		}
	} else if !p.Part {
		// So does a file of a partial range inside p's that no manifest
		// lists: a run killed before its manifest left it (the same range
		// again, its end clipped to now minus period.lag, has another name).
		for _, o := range objects {
			name := EntryName(p.Dir(), o.Name)
			listed := slices.ContainsFunc(m.Files, func(e ManifestFile) bool { return e.Name == name })
			from, to, ok := nameRange(path.Base(o.Name))
			if ok && l.isData(p, o.Name) && !written[name] && !listed && !slices.Contains(replaced, name) &&
				within(ManifestFile{From: from, To: to}, p) {
				replaced = append(replaced, name)
			}
		}
	}
	var overlaps []string
	if !whole && !p.Part {
		for _, e := range m.Files {
			if !written[e.Name] && !e.Part && e.From.Before(p.To) && p.From.Before(e.To) {
				overlaps = append(overlaps, e.Name)
			}
		}
	}
	key := l.signer
	if slices.ContainsFunc(m.Files, func(e ManifestFile) bool { return !written[e.Name] }) {
		// The entries kept were signed, or not, by whoever wrote them.
		if key, err = l.resigner(m, l.layout.ManifestName(p.Dir())); err != nil {
			return Prepared{}, err
		}
	}
	m.Day = p.Date()
	m.SchemaVersion = l.format.SchemaVersion()
	m.Identity = l.hash
	for _, f := range files {
		m.Put(f)
	}
	m.count()
	if m.Previous, err = l.previous(ctx, p.Dir()); err != nil {
		return Prepared{}, err
	}
	m.Sign(key)
	return Prepared{Body: m.Encode(), Version: version, Replaced: replaced, Overlaps: overlaps}, nil
}

// isData reports whether the object at name (from the root), in a data
// directory of p's day, is a data file this ledger's sink writes: named
// with FilePrefix and the extension of its format there.
func (l *Ledger) isData(p Partition, name string) bool {
	base := path.Base(name)
	if !strings.HasPrefix(base, FilePrefix) {
		return false
	}
	for _, own := range l.layout.Paths(p, l.format) {
		if path.Dir(own) == path.Dir(name) && strings.HasSuffix(base, strings.TrimPrefix(path.Base(own), p.BaseName())) {
			return true
		}
	}
	return false
}

// previous is the link of dayDir's manifest: the sum of the closest
// earlier day's manifest, "" when there is none.
func (l *Ledger) previous(ctx context.Context, dayDir string) (string, error) {
	days, err := l.store.Days(ctx, l.layout.Meta)
	if err != nil {
		return "", err
	}
	for i := sort.SearchStrings(days, dayDir) - 1; i >= 0; i-- {
		b, _, err := l.store.Get(ctx, l.layout.ManifestName(days[i]))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a day directory left by a failed commit
		}
		if err != nil {
			return "", err
		}
		return Sum(b), nil
	}
	return "", nil
}

// manifestTries bounds the read-modify-write rounds against concurrent writers.
const manifestTries = 8

// Record adds f to the manifest of p's day with conditional writes: for
// stores that write small objects atomically in place (S3). It returns the
// manifest written, whose Replaced are the files it no longer lists, for
// the sink to delete.
func (l *Ledger) Record(ctx context.Context, p Partition, files ...ManifestFile) (Prepared, error) {
	for try := range manifestTries {
		if err := backoff(ctx, try); err != nil {
			return Prepared{}, err
		}
		next, err := l.Prepare(ctx, p, files...)
		if err != nil {
			return Prepared{}, err
		}
		err = l.store.Put(ctx, l.layout.ManifestName(p.Dir()), next.Body, next.Version)
		if errors.Is(err, ErrChanged) {
			continue
		}
		return next, err
	}
	return Prepared{}, fmt.Errorf("manifest %s: %w %d times in a row", l.store.Location(l.layout.ManifestName(p.Dir())), ErrChanged, manifestTries)
}

// backoff waits before try (0-based) of a read-modify-write round a random
// while, so that writers racing for one object take turns.
func backoff(ctx context.Context, try int) error {
	if try == 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(rand.N(10 * time.Millisecond << try)):
		return nil
	}
}

// Relink implements Linker: each manifest after p's day is linked (and
// signed) again, in order, until one already links to its predecessor.
// Rare: it happens when a day is rewritten or a gap filled after later
// days were exported.
func (l *Ledger) Relink(ctx context.Context, p Partition) error {
	dayDir := p.Dir()
	prev, _, err := l.store.Get(ctx, l.layout.ManifestName(dayDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing committed for the day: nothing to link to
	}
	if err != nil {
		return err
	}
	days, err := l.store.Days(ctx, l.layout.Meta)
	if err != nil {
		return err
	}
	for _, d := range days[sort.SearchStrings(days, dayDir+"\x00"):] {
		next, done, err := l.relink(ctx, d, prev)
		if err != nil || done {
			return err
		}
		if next != nil {
			prev = next
		}
	}
	return nil
}

// relink links the manifest of day directory d to prev. It returns the
// manifest as it now is (nil when d has none) and done when it already
// linked to prev.
func (l *Ledger) relink(ctx context.Context, d string, prev []byte) (next []byte, done bool, err error) {
	for try := range manifestTries {
		if err := backoff(ctx, try); err != nil {
			return nil, false, err
		}
		m, version, ok, err := l.read(ctx, d)
		if err != nil || !ok {
			return nil, false, err
		}
		if m.Previous == Sum(prev) {
			return nil, true, nil
		}
		key, err := l.resigner(m, l.layout.ManifestName(d))
		if err != nil {
			return nil, false, err
		}
		m.Previous = Sum(prev)
		m.Sign(key)
		body := m.Encode()
		err = l.store.Put(ctx, l.layout.ManifestName(d), body, version)
		if errors.Is(err, ErrChanged) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		return body, false, nil
	}
	return nil, false, fmt.Errorf("manifest %s: %w %d times in a row", l.store.Location(l.layout.ManifestName(d)), ErrChanged, manifestTries)
}

// resigner returns the key to sign m with once this run has changed it
// without rewriting all of what it lists (a new link, files added beside
// its entries): nil for a manifest that was not signed, which stays so (a
// signature vouches for content only its signer wrote), else the run's
// key, provided m's signature checks with it or with a key it replaced
// (signing.previous_public_key_files: a rotated key's manifests pass to
// the new one as they are relinked). A signature that does not check (m
// edited after signing) or is another key's is an error naming the
// manifest (name, from the root), and so is a run without a key: it would
// strip the signature.
func (l *Ledger) resigner(m Manifest, name string) (ed25519.PrivateKey, error) {
	if m.Signature == "" {
		return nil, nil
	}
	where := l.store.Location(name)
	if l.signer == nil {
		return nil, failure.Usagef("%s is signed (key %s) and this run has no signing key: give it the same signing.private_key_file, so that it does not strip the signature", where, m.KeyID)
	}
	keys := append([]ed25519.PublicKey{l.signer.Public().(ed25519.PublicKey)}, l.retired...)
	if _, err := m.CheckSignatureAny(keys...); err != nil {
		return nil, failure.Permanentf("%s is not signed again: its signature does not check with this run's key or a previous one (%v); check it with `pachca-export verify`, and restore the day or export it whole again (verify --repair); after replacing the signing key, list the old key's public key in signing.previous_public_key_files", where, err)
	}
	return l.signer, nil
}
