package verify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/sinks"
)

// checksummer is implemented by stores that keep a checksum with each
// object (S3): Checksum returns it as manifests record it.
type checksummer interface {
	Checksum(ctx context.Context, name string) (string, error)
}

// root is one file-like sink being verified.
type root struct {
	label    string // "sinks[0] ndjson out/ndjson"
	store    sinks.Store
	layout   sinks.Layout
	identity string // the hash its manifests must record
	schema   string
	keys     []ed25519.PublicKey // signatures must check with one; none: not checked
	tmpDir   string
	// deadLetters is the directory of the dead letters (Manifest.DeadLetters
	// are checked against its day's files).
	deadLetters string
}

// dayResult is what checking one day of one root found.
type dayResult struct {
	problems []string
	notes    []string
	files    int
	records  int64
	// counted: the manifest decoded; listed is its record count, dayFile
	// that of its entries of the whole day's file (one per key in a split
	// layout), hasDayFile whether it lists one.
	counted    bool
	listed     int64
	dayFile    int64
	hasDayFile bool
	// parts are the manifest's follow cycle files: their ranges' ends and
	// records, so that a day a loop is feeding is compared across sinks
	// up to the last cycle each of them committed (partsThrough).
	parts []cyclePart
	// ids are the ids read in the day's files, while it is checked:
	// settleIDs keeps of them what the comparison with the API needs
	// (nIDs, lost, extra) and drops them, so that a verify of many days
	// holds a few days' ids at a time (one per worker), not every day's.
	ids         *idSet
	nIDs        int
	lost, extra idSample // the API's ids not here; the ids here the API lacks
	manifest    []byte   // the manifest as read, for the next day's link; nil when absent
	signed      string   // the key id of a signature that was not checked
	// previousKey is the key id of a signature good with a previous key.
	previousKey string
	unread      bool // the day has data files that were not read (no readable manifest lists them)
	// chained: the manifest decoded, and previous is the link it records,
	// which checkChain checks once the day before is known; chainAt is
	// where among problems its failure goes.
	chained  bool
	previous string
	chainAt  int
}

// cyclePart is a follow cycle's file of a day: its range's end, its records.
type cyclePart struct {
	to      time.Time
	records int64
}

// lastPart is the end of the latest cycle file listed, zero for none.
func (res *dayResult) lastPart() (last time.Time) {
	for _, p := range res.parts {
		if p.to.After(last) {
			last = p.to
		}
	}
	return last
}

// partsAfter are the records of the cycle files whose ranges end after t.
func (res *dayResult) partsAfter(t time.Time) (n int64) {
	for _, p := range res.parts {
		if p.to.After(t) {
			n += p.records
		}
	}
	return n
}

// idSample is how many ids a comparison found and the first three, sorted.
type idSample struct {
	n      int
	sample string
}

func newIDSample(ids []string) idSample { return idSample{len(ids), sample(ids)} }

// settleIDs compares the ids read with api, the API's ids of the day
// (nil when not compared), and drops them.
func (d *dayResult) settleIDs(api *idSet) {
	d.nIDs = d.ids.len()
	if api != nil {
		d.lost, d.extra = newIDSample(missing(api, d.ids)), newIDSample(missing(d.ids, api))
	}
	d.ids = nil
}

func (d *dayResult) fail(format string, args ...any) {
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
}

// note records something worth saying that is not a failure.
func (d *dayResult) note(format string, args ...any) {
	d.notes = append(d.notes, fmt.Sprintf(format, args...))
}

// checkRoot lists the directory of r's marker and day directories (the
// root in the daily layout) and returns what does not belong there: any
// file but the marker (and temporary files), any directory but a day's.
// Readers globbing the root (*/*.parquet) would read what they hold. Its
// error wraps fs.ErrNotExist when the root does not exist.
func (r *root) checkRoot(ctx context.Context) ([]string, error) {
	dir := strings.TrimSuffix(r.layout.Meta, "/")
	entries, err := r.store.Entries(ctx, dir)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, e := range entries {
		base := path.Base(e.Name)
		switch {
		case e.Dir && sinks.IsDayDir(base):
		case e.Dir && strings.HasPrefix(base, "dt="):
			problems = append(problems, fmt.Sprintf("%s/ is not a day directory (no such date), yet a reader of the root reads it", r.store.Location(e.Name)))
		case e.Dir:
			problems = append(problems, fmt.Sprintf("%s/ is not a day directory, yet a reader of the root reads it", r.store.Location(e.Name)))
		case e.Name == r.layout.MarkerName() || atomicfile.IsTemp(base):
		default:
			problems = append(problems, fmt.Sprintf("%s is not the export's (only the marker and day directories belong at the root)", r.store.Location(e.Name)))
		}
	}
	return problems, nil
}

// checkDay checks one day directory of r against its manifest: the
// manifest itself (day, schema, identity, signature; its link to the day
// before is left to checkChain), then every file it lists (present, size,
// sha256, records, schema of each record, S3 checksum), files it does not
// list, and ids seen twice. It needs no other day: days are checked in
// parallel.
func (r *root) checkDay(ctx context.Context, dayDir string) (*dayResult, error) {
	res := &dayResult{ids: newIDSet()}
	day := strings.TrimPrefix(dayDir, "dt=")
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return nil, fmt.Errorf("%s: not a day directory", dayDir)
	}
	dirs := r.layout.DataDirs(t)
	// The listing and the manifest of one moment: a writer at work (a
	// follow cycle) renames a file in, then rewrites the manifest, so a
	// manifest read after the listing may name a file renamed in since,
	// and a listing may hold a file the manifest read before it lacks.
	// Both are read again, up to five times, until they agree.
	var objects []sinks.Object
	var b []byte
	for try := 1; ; try++ {
		listed := &dayResult{}
		objects, err = r.listDay(ctx, dirs, listed) // what a reader may read: every file but temporary ones
		if err != nil {
			return nil, err
		}
		if onListed != nil {
			onListed(r.label, dayDir)
		}
		b, _, err = r.store.Get(ctx, r.layout.ManifestName(dayDir))
		if err != nil || try == 5 || agree(dayDir, dirs, objects, b) {
			res.problems, res.notes = listed.problems, listed.notes
			break
		}
	}
	res.unread = len(dataFiles(objects)) > 0 // until a manifest lists them
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if res.unread {
			res.fail("no %s: its files are described by nothing (removed?)", sinks.ManifestName)
		}
		return res, nil
	case err != nil: // a directory, unreadable: this day's failure, the others are still checked
		res.fail("%s cannot be read: %v", sinks.ManifestName, err)
		return res, nil
	}
	res.manifest = b
	m, err := sinks.DecodeManifest(b)
	if err != nil {
		res.fail("%s cannot be read: %v", sinks.ManifestName, err)
		return res, nil
	}
	res.unread = false
	names := make([]string, len(m.Files))
	for i, f := range m.Files {
		names[i] = f.Name
	}
	// Files the manifest lists in the data directories of another
	// configuration of the layout (sources renamed, say) are the day's too.
	more, err := r.listDay(ctx, r.layout.ListedDirs(t, dayDir, names)[len(dirs):], res)
	if err != nil {
		return nil, err
	}
	objects = append(objects, more...)
	if m.Day != day {
		res.fail("%s is the manifest of %s, not of %s (moved or swapped)", sinks.ManifestName, m.Day, day)
	}
	if m.SchemaVersion != r.schema {
		res.fail("schema_version %q, want %q", m.SchemaVersion, r.schema)
	}
	switch m.Identity {
	case r.identity:
	case "":
		res.fail("the manifest records no identity and no chain (written by a version before them): export the day again")
	default:
		res.fail("the manifest was written for another identity (%.12s…)", m.Identity)
	}
	res.chained, res.previous, res.chainAt = true, m.Previous, len(res.problems)
	switch {
	case len(r.keys) > 0:
		key, err := m.CheckSignatureAny(r.keys...)
		if err != nil {
			res.fail("signature: %v", err)
		} else if !key.Equal(r.keys[0]) {
			res.previousKey = m.KeyID
		}
	case m.Signature != "":
		res.signed = m.KeyID
	}
	// The signature covers the manifest as decoded: keys it does not know,
	// repeated or respelt, would pass unsigned. The exporter writes the
	// canonical encoding (Manifest.Encode) only.
	if m.Signature != "" && !bytes.Equal(b, m.Encode()) {
		res.fail("%s is not as the exporter writes it (a key added, repeated or respelt, or reformatted): its signature does not cover what was changed", sinks.ManifestName)
	}
	res.counted, res.listed = true, m.Records
	var total int64
	for _, f := range m.Files {
		total += f.Records
		if isDayFile(t, f) {
			res.dayFile += f.Records
			res.hasDayFile = true
		}
		if f.Part {
			res.parts = append(res.parts, cyclePart{to: f.To, records: f.Records})
		}
		r.checkFile(ctx, dayDir, f, objects, res)
	}
	if total != m.Records {
		res.fail("records %d, but its files list %d", m.Records, total)
	}
	r.checkUnexported(day, m, res)
	for _, o := range dataFiles(objects) {
		if _, listed := m.File(sinks.EntryName(dayDir, o.Name)); !listed {
			res.fail("%s is not in the manifest", sinks.EntryName(dayDir, o.Name))
		}
	}
	return res, nil
}

// checkChain checks the link the day's manifest records against prev, the
// manifest of the day before as read (nil: none); a broken link fails the
// day in the place among its problems where checkDay would have put it.
func (d *dayResult) checkChain(prev []byte) {
	if want := link(prev); d.chained && d.previous != want {
		msg := fmt.Sprintf("chain broken: previous is %s, the manifest of the day before has sha256 %s (a day deleted, edited or reordered, or a run rewriting the days before it: verify again once it ends, or, if it was killed, after the next run, which links the days again)",
			orNone(d.previous), orNone(want))
		d.problems = slices.Insert(d.problems, d.chainAt, msg)
	}
}

// listDay lists the files of a day's data directories dirs, noting on res
// the temporary files and failing it for subdirectories.
func (r *root) listDay(ctx context.Context, dirs []string, res *dayResult) ([]sinks.Object, error) {
	var objects []sinks.Object
	for _, dir := range dirs {
		in, err := r.store.Entries(ctx, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, o := range in {
			base := path.Base(o.Name)
			switch {
			case o.Dir && base != sinks.ManifestName: // a manifest that is a directory fails below
				res.fail("%s is a directory among the day's files: readers of **/ read what it holds", r.store.Location(o.Name))
			case o.Dir:
			case atomicfile.IsTemp(base):
				res.note("temporary file %s (a write in progress, or left by a killed run: readers skip it, and it is safe to delete while no run is at work)", base)
			default:
				objects = append(objects, o)
			}
		}
	}
	return objects, nil
}

// checkFile checks one manifest entry against the object it names.
func (r *root) checkFile(ctx context.Context, dayDir string, f sinks.ManifestFile, objects []sinks.Object, res *dayResult) {
	name := sinks.EntryPath(dayDir, f.Name)
	i := slices.IndexFunc(objects, func(o sinks.Object) bool { return o.Name == name })
	if i < 0 {
		res.fail("%s is missing", f.Name)
		return
	}
	res.files++
	if objects[i].Size != f.Bytes {
		res.fail("%s has %d bytes, the manifest says %d", f.Name, objects[i].Size, f.Bytes)
	}
	rc, err := r.store.Open(ctx, name)
	if err != nil {
		res.fail("%s cannot be opened: %v", f.Name, err)
		return
	}
	defer rc.Close()
	var twice []string
	badSchema := 0
	c, err := read(ctx, f.Name, rc, r.tmpDir, func(id, schema string) {
		if res.ids.add(id) && len(twice) < 3 {
			twice = append(twice, id)
		}
		if schema != r.schema {
			badSchema++
		}
	})
	content := err == nil && c.SHA256 == f.SHA256 && objects[i].Size == f.Bytes
	switch {
	case c.SHA256 != "" && c.SHA256 != f.SHA256: // whether it decodes or not: this says why
		res.fail("%s: sha256 %s, the manifest says %s (edited or damaged)", f.Name, c.SHA256, f.SHA256)
	case err != nil:
		res.fail("%s cannot be read: %v", f.Name, err)
	case c.Records != f.Records:
		res.fail("%s holds %d records, the manifest says %d", f.Name, c.Records, f.Records)
	}
	res.records += c.Records
	if badSchema > 0 {
		res.fail("%s: %d records of another schema_version than %q", f.Name, badSchema, r.schema)
	}
	if len(twice) > 0 {
		res.fail("event id %s twice in the day (%s repeats an id of this day)", strings.Join(twice, ", "), f.Name)
	}
	if cs, ok := r.store.(checksummer); ok && f.S3Checksum != "" {
		got, err := cs.Checksum(ctx, name)
		if err != nil {
			res.fail("%s: %v", f.Name, err)
		} else if got != f.S3Checksum {
			// The checksum is S3's attribute, set by whoever put the object
			// last (a restore from backup, a copy by another tool); what the
			// export vouches for is the content, whose sha256 and size,
			// checked above, the (signed) manifest records.
			msg := fmt.Sprintf("%s: S3 keeps %s with it, not the %s the manifest recorded (%s)",
				f.Name, describeChecksum(got), checksumAlgo(f.S3Checksum), checksumText(f.S3Checksum))
			if content {
				res.note("%s; its size and sha256 match the manifest: the content is the export's (put back by another client, as a restore from backup does)", msg)
			} else {
				res.fail("%s", msg)
			}
		}
	}
}

// isDayFile reports whether f is (a key's part of) the file of the whole
// day t that a run writes and records in the state: named for the day
// (sinks.Partition.BaseName), not for a range as a follow cycle's part of a
// whole day is, and covering the day.
func isDayFile(t time.Time, f sinks.ManifestFile) bool {
	p := sinks.Partition{Day: t, From: t, To: t.AddDate(0, 0, 1)}
	base := path.Base(f.Name)
	return f.From.Equal(p.From) && f.To.Equal(p.To) && strings.TrimSuffix(base, dataExt(base)) == p.BaseName()
}

// dataExt is the extension of a file a query engine would read as data
// (SPEC §4: .ndjson, .ndjson.gz, .ndjson.zst, .parquet), "" for another.
func dataExt(name string) string {
	for _, ext := range []string{".ndjson", ".ndjson.gz", ".ndjson.zst", ".parquet"} {
		if strings.HasSuffix(name, ext) {
			return ext
		}
	}
	return ""
}

// agree reports whether the manifest b lists every data file of objects,
// the listing of dirs, and objects hold every file b lists in dirs.
func agree(dayDir string, dirs []string, objects []sinks.Object, b []byte) bool {
	m, err := sinks.DecodeManifest(b)
	if err != nil {
		return true // said so by the check
	}
	names := map[string]bool{}
	for _, o := range dataFiles(objects) {
		names[o.Name] = true
	}
	n := 0
	for _, f := range m.Files {
		name := sinks.EntryPath(dayDir, f.Name)
		switch {
		case names[name]:
			n++
		case slices.Contains(dirs, path.Dir(name)):
			return false // listed, not renamed in when the directory was read
		}
	}
	return n == len(names)
}

// dataFiles are the objects of a day that a manifest must list: every
// file but the manifest itself (temporary files are left out by listDay).
// Query engines read them as data: Hive, Athena and Spark every name that
// does not start with _ or ., whatever its extension; DuckDB's glob any
// name with a data extension (its * matches a leading _ and . too).
func dataFiles(objects []sinks.Object) []sinks.Object {
	var out []sinks.Object
	for _, o := range objects {
		if path.Base(o.Name) != sinks.ManifestName {
			out = append(out, o)
		}
	}
	return out
}

// link is what a manifest's previous must be when prev is the manifest of
// the day before ("" for none).
func link(prev []byte) string {
	if prev == nil {
		return ""
	}
	return sinks.Sum(prev)
}

// checksumAlgo is the algorithm of an S3 checksum as manifests record it
// ("SHA256-COMPOSITE:...": SHA256-COMPOSITE).
func checksumAlgo(label string) string {
	algo, _, _ := strings.Cut(label, ":")
	return algo
}

// checksumText is a manifest's S3 checksum as a line shows it: "SHA256 <base64>".
func checksumText(label string) string { return strings.Replace(label, ":", " ", 1) }

// describeChecksum is what S3 keeps with an object, for a line.
func describeChecksum(label string) string {
	if label == "" {
		return "no checksum"
	}
	return "checksum " + checksumText(label)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
