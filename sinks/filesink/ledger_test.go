package filesink_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
	"github.com/pachca-export/pachca-export/transform"
)

var nightly = sinks.Identity{BaseURL: "https://api.pachca.com/api/shared/v1/", Workspace: "acme",
	DropEventKeys: []string{"audit_events_accessed"}}

func newNDJSON(t *testing.T, dir string) *filesink.Sink {
	f, err := ndjson.Format("gzip")
	require.NoError(t, err)
	return filesink.New(dir, f)
}

// commitDay delivers n records as the whole day d, a block of its own: the
// days after it are relinked, as a run does.
func commitDay(t *testing.T, s *filesink.Sink, d time.Time, n int) {
	t.Helper()
	p := sinks.NewPartition(d, d, d.AddDate(0, 0, 1), "run")
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), sinktest.Records(d, n)))
	_, err = w.Commit(t.Context())
	require.NoError(t, err)
	require.NoError(t, s.Relink(t.Context(), p))
}

func readManifest(t *testing.T, dir string, d time.Time) (sinks.Manifest, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "dt="+d.Format(time.DateOnly), sinks.ManifestName))
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(b)
	require.NoError(t, err)
	return m, b
}

// TestClaim: the first claim writes the marker (nothing without Create);
// the same identity, spelt differently, is accepted; another is refused
// with a usage error naming every differing key, and nothing is written.
func TestClaim(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	s := newNDJSON(t, dir)
	res, err := s.Claim(t.Context(), sinks.Claim{Identity: nightly})
	require.NoError(t, err)
	require.False(t, res.Marked)
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "a read-only claim writes nothing")

	res, err = s.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	require.True(t, res.Marked)
	require.False(t, res.Adopted)
	require.Equal(t, filepath.Join(dir, sinks.MarkerName), res.Location)
	marker, err := os.ReadFile(res.Location)
	require.NoError(t, err)

	same := nightly
	same.BaseURL = "https://api.pachca.com/api/shared/v1"
	same.DropEventKeys = []string{"audit_events_accessed", "audit_events_accessed"}
	_, err = newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: same, Create: true})
	require.NoError(t, err, "the same data, spelt differently")

	other := nightly
	other.EventKeys = []string{"user_2fa_fail"}
	other.Workspace = "acme-eu"
	_, err = newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: other, Create: true})
	require.True(t, failure.IsUsage(err), "%v", err)
	require.ErrorContains(t, err, `source.filters.event_keys: ["user_2fa_fail"] here, [] there; source.workspace: "acme-eu" here, "acme" there`)
	require.ErrorContains(t, err, res.Location)

	f, err := ndjson.Format("zstd")
	require.NoError(t, err)
	_, err = filesink.New(dir, f).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.ErrorContains(t, err, `format: "ndjson.zst" here, "ndjson.gz" there`, "two formats in one location are two copies of each event")
	after, err := os.ReadFile(res.Location)
	require.NoError(t, err)
	require.Equal(t, marker, after, "a refused claim changes nothing")
}

// TestClaimOfAnUnwrittenLocation: a location another configuration marked
// but wrote no day to (its run failed on an event key the API refused) is
// refused saying so, and that its marker is what to remove; once it holds a
// day, the usual refusal (was: "move the existing data away" for a
// directory holding nothing but the marker, after the typo was fixed).
func TestClaimOfAnUnwrittenLocation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	typo := nightly
	typo.EventKeys = []string{"User_2fa_fail"}
	_, err := newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: typo, Create: true})
	require.NoError(t, err)

	fixed := nightly
	fixed.EventKeys = []string{"user_2fa_fail"}
	_, err = newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: fixed, Create: true})
	require.True(t, failure.IsUsage(err), "%v", err)
	marker := filepath.Join(dir, sinks.MarkerName)
	require.ErrorContains(t, err, `this location holds no events yet, but is marked as another configuration's (source.filters.event_keys: ["user_2fa_fail"] here, ["User_2fa_fail"] there; see `+marker)
	require.ErrorContains(t, err, "none of its runs is running, remove "+marker)

	s := newNDJSON(t, dir)
	_, err = s.Claim(t.Context(), sinks.Claim{Identity: typo, Create: true})
	require.NoError(t, err)
	commitDay(t, s, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 3)
	_, err = newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: fixed, Create: true})
	require.True(t, failure.IsUsage(err), "%v", err)
	require.ErrorContains(t, err, "this location holds the events of another configuration")
	require.NotContains(t, err.Error(), "remove "+marker)
}

// TestClaimEditedMarker: a marker whose identity was edited, its hash left
// as it was, is damaged: a claim fails naming it (was: accepted, verify
// OK, the marker telling readers of another workspace than the data's).
func TestClaimEditedMarker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	res, err := newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	b, err := os.ReadFile(res.Location)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(res.Location, bytes.Replace(b, []byte(`"acme"`), []byte(`"acme-eu"`), 1), 0o600))
	_, err = newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: nightly})
	require.ErrorContains(t, err, res.Location+" is damaged: its identity is not the one of its identity_hash (edited?)")
}

// TestClaimAdopts: data without a marker is adopted when its manifests
// record no identity or this one, refused when they record another.
// TestClaimInsideAnotherLocation: a directory inside another sink's (an
// investigation under the nightly export's directory) is refused, by the
// claim a run makes before it writes anything, whose readers and verify would take its files
// for the nightly's (was: written, and the nightly's verify failed on
// every day after); one marked before is claimed with the enclosing
// marker named, for a warning.
func TestClaimInsideAnotherLocation(t *testing.T) {
	root := filepath.Join(t.TempDir(), "out")
	outer := newNDJSON(t, root)
	_, err := outer.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)

	inner := filepath.Join(root, "investigation", "42")
	for _, create := range []bool{false, true} {
		_, err = newNDJSON(t, inner).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: create})
		require.EqualError(t, err, "this location lies inside another sink's ("+filepath.Join(root, sinks.MarkerName)+
			"), whose readers and verify would read this configuration's files as its own: give this configuration a location outside it (dir, or S3 prefix)")
		require.Equal(t, failure.Usage, failure.KindOf(err))
		if !create { // a run claims without Create first
			require.NoDirExists(t, inner)
		}
	}

	// Marked before the outer one was.
	require.NoError(t, os.Rename(filepath.Join(root, sinks.MarkerName), filepath.Join(root, "moved")))
	_, err = newNDJSON(t, inner).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	require.NoError(t, os.Rename(filepath.Join(root, "moved"), filepath.Join(root, sinks.MarkerName)))
	res, err := newNDJSON(t, inner).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, sinks.MarkerName), res.Within)

	res, err = newNDJSON(t, filepath.Join(t.TempDir(), "elsewhere")).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	require.Empty(t, res.Within)
}

func TestClaimAdopts(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s := newNDJSON(t, dir)
	_, err := s.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	commitDay(t, s, d, 10)
	require.NoError(t, os.Remove(filepath.Join(dir, sinks.MarkerName)))

	other := nightly
	other.EventKeys = []string{"user_login"}
	_, err = newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: other, Create: true})
	require.True(t, failure.IsUsage(err), "%v", err)
	require.ErrorContains(t, err, "has no marker")
	_, err = os.Stat(filepath.Join(dir, sinks.MarkerName))
	require.True(t, os.IsNotExist(err))

	res, err := newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	require.True(t, res.Adopted)
	require.True(t, res.Marked)
}

// TestExisting: the records of the file a partition would replace, and a
// day written for another identity.
func TestExisting(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s := newNDJSON(t, dir)
	_, err := s.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	full := sinks.NewPartition(d, d, d.AddDate(0, 0, 1), "")
	_, ok, err := s.Existing(t.Context(), full)
	require.NoError(t, err)
	require.False(t, ok)
	commitDay(t, s, d, 37)
	n, ok, err := s.Existing(t.Context(), full)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 37, n)
	_, _, err = s.Existing(t.Context(), sinks.NewPartition(d, d.Add(time.Hour), d.Add(2*time.Hour), ""))
	var whole *sinks.WholeDayError
	require.ErrorAs(t, err, &whole, "part of a day held whole would repeat its events")
	require.EqualError(t, err, "the day is held whole here ("+filepath.Join(dir, full.Dir(), sinks.ManifestName)+
		" lists pachca-audit-2026-11-01.ndjson.gz): a range of part of it would repeat its events; export the whole day instead")
	cycle := sinks.NewPartition(d, d.Add(time.Hour), d.Add(2*time.Hour), "")
	cycle.Part = true
	_, ok, err = s.Existing(t.Context(), cycle)
	require.NoError(t, err)
	require.False(t, ok, "a follow cycle's part is another file, which the seal replaces")

	// A day copied in from another identity's location.
	otherDir := t.TempDir()
	o := newNDJSON(t, otherDir)
	otherID := nightly
	otherID.Workspace = "other"
	_, err = o.Claim(t.Context(), sinks.Claim{Identity: otherID, Create: true})
	require.NoError(t, err)
	require.NoError(t, os.Rename(filepath.Join(dir, full.Dir()), filepath.Join(otherDir, full.Dir())))
	_, _, err = o.Existing(t.Context(), full)
	var foreign *sinks.ForeignDayError
	require.ErrorAs(t, err, &foreign)
	require.Equal(t, filepath.Join(otherDir, full.Dir(), sinks.ManifestName), foreign.Manifest)
}

// TestChain: each manifest links to the previous day's; a day written
// between two exported ones relinks the days after it, and signing covers
// every manifest.
func TestChain(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pub := key.Public().(ed25519.PublicKey)
	s := newNDJSON(t, dir)
	_, err = s.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true, Signer: key})
	require.NoError(t, err)
	commitDay(t, s, d, 5)
	commitDay(t, s, d.AddDate(0, 0, 3), 5)
	commitDay(t, s, d.AddDate(0, 0, 4), 5)
	m0, b0 := readManifest(t, dir, d)
	require.Empty(t, m0.Previous, "the first day links to nothing")
	want := nightly
	want.Format, want.Schema = "ndjson.gz", transform.SchemaVersion
	require.Equal(t, want.Hash(), m0.Identity, "the identity with the sink's format and the record shape")
	m3, b3 := readManifest(t, dir, d.AddDate(0, 0, 3))
	require.Equal(t, sinks.Sum(b0), m3.Previous, "a gap is skipped")
	m4, _ := readManifest(t, dir, d.AddDate(0, 0, 4))
	require.Equal(t, sinks.Sum(b3), m4.Previous)

	// The gap is filled later: the days after it are linked again, signed.
	commitDay(t, s, d.AddDate(0, 0, 1), 5)
	_, b1 := readManifest(t, dir, d.AddDate(0, 0, 1))
	m3, b3 = readManifest(t, dir, d.AddDate(0, 0, 3))
	require.Equal(t, sinks.Sum(b1), m3.Previous)
	m4, _ = readManifest(t, dir, d.AddDate(0, 0, 4))
	require.Equal(t, sinks.Sum(b3), m4.Previous)
	for _, day := range []int{0, 1, 3, 4} {
		m, _ := readManifest(t, dir, d.AddDate(0, 0, day))
		require.NoError(t, m.CheckSignature(pub), "day %d", day)
	}

	// An edit breaks the signature; another key is named as such.
	m3.Records++
	require.ErrorContains(t, m3.CheckSignature(pub), "edited after signing")
	other, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	require.ErrorContains(t, m4.CheckSignature(other), "not by the given key")
	require.Equal(t, sinks.KeyID(pub), m4.KeyID)
}

// TestKeysPEM: a key pair as openssl writes it (genpkey -algorithm ed25519,
// pkey -pubout): the public key printed is openssl's, byte for byte.
func TestKeysPEM(t *testing.T) {
	priv := []byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBObxfyXbWoNP4qpxmqs0H2+5QLZ8tPoftJ6OaSCyLUK\n-----END PRIVATE KEY-----\n")
	pubPEM := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAyzeTssI/7L6Ex0Bg4Fb5fCYBTpRND8VuEJBYg1Sb/DQ=\n-----END PUBLIC KEY-----\n"
	key, err := sinks.ParsePrivateKey(priv)
	require.NoError(t, err)
	require.Equal(t, pubPEM, string(sinks.PublicKeyPEM(key.Public().(ed25519.PublicKey))))
	pub, err := sinks.ParsePublicKey([]byte(pubPEM))
	require.NoError(t, err)
	require.True(t, pub.Equal(key.Public()))
	_, err = sinks.ParsePrivateKey([]byte("not a key"))
	require.ErrorContains(t, err, "openssl genpkey -algorithm ed25519")
	_, err = sinks.ParsePrivateKey([]byte(pubPEM))
	require.Error(t, err)
}

// TestRemovedFileLeavesTheManifest: a file removed by hand (a partial range
// that doubled its day) is dropped from the manifest when the day is
// written again, so that the day verifies again.
func TestRemovedFileLeavesTheManifest(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s := newNDJSON(t, dir)
	first := sinks.NewPartition(d, d, d.Add(12*time.Hour), "run")
	second := sinks.NewPartition(d, d.Add(6*time.Hour), d.Add(18*time.Hour), "run")
	require.NoError(t, commitRelink(t, s, first, 3))
	require.NoError(t, commitRelink(t, s, second, 4))
	m, _ := readManifest(t, dir, d)
	require.Len(t, m.Files, 2)

	require.NoError(t, os.Remove(filepath.Join(dir, first.Dir(), first.BaseName()+".ndjson.gz")))
	require.NoError(t, commitRelink(t, s, second, 4))
	m, _ = readManifest(t, dir, d)
	require.Len(t, m.Files, 1)
	require.Equal(t, second.BaseName()+".ndjson.gz", m.Files[0].Name)
	require.EqualValues(t, 4, m.Records)
}

// TestPartOfAWholeDayIsRefused: part of a day whose manifest lists the
// whole day's file (a run of another state, which does not know the day is
// exported) is refused at the commit too, and changes nothing.
func TestPartOfAWholeDayIsRefused(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s := claimed(t, dir, nil)
	commitDay(t, s, d, 10)
	_, before := readManifest(t, dir, d)
	err := commitRelink(t, s, sinks.NewPartition(d, d.Add(6*time.Hour), d.Add(12*time.Hour), "run"), 3)
	var whole *sinks.WholeDayError
	require.ErrorAs(t, err, &whole)
	require.ErrorContains(t, err, "the day is held whole here")
	_, after := readManifest(t, dir, d)
	require.Equal(t, before, after)
	names, err := filepath.Glob(filepath.Join(dir, "dt=2026-11-01", "*.ndjson.gz"))
	require.NoError(t, err)
	require.Len(t, names, 1, "nothing new under a final name")
}

// commitRelink commits n records as partition p and relinks the days after it,
// as a run does, and returns the first error.
func commitRelink(t *testing.T, s *filesink.Sink, p sinks.Partition, n int) error {
	t.Helper()
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), sinktest.Records(p.From, n)))
	if _, err := w.Commit(t.Context()); err != nil {
		return err
	}
	return s.Relink(t.Context(), p)
}

// claimed returns a sink of dir claimed for nightly, signing with key (nil:
// unsigned).
func claimed(t *testing.T, dir string, key ed25519.PrivateKey) *filesink.Sink {
	t.Helper()
	s := newNDJSON(t, dir)
	_, err := s.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true, Signer: key})
	require.NoError(t, err)
	return s
}

// TestSignsOnlyWhatChecks: a manifest a run changes without rewriting all
// it lists (relinked, or a file added beside its entries) is signed again
// only when its signature checks with the run's key; one edited after
// signing, or another key's, fails the run, naming it, and stays as it
// was. A run without a key does not strip a signature; an unsigned
// manifest is not signed by a later run.
func TestSignsOnlyWhatChecks(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	whole := func(n int) sinks.Partition {
		return sinks.NewPartition(d.AddDate(0, 0, n), d, d.AddDate(0, 0, 10), "run")
	}
	edit := func(t *testing.T, dir string, n int) {
		path := filepath.Join(dir, "dt="+d.AddDate(0, 0, n).Format(time.DateOnly), sinks.ManifestName)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, bytes.Replace(b, []byte(`"run_id": "`), []byte(`"run_id": "x`), 1), 0o600))
	}
	for _, tc := range []struct {
		name      string
		first     ed25519.PrivateKey // the key of days 0 and 2
		damage    func(t *testing.T, dir string)
		then      ed25519.PrivateKey // the key of the run that writes day 1
		part      bool               // that run writes part of day 2 instead
		want      string             // in its error; "" for none
		usage     bool
		signedDay bool // day 2 is signed by key in the end
	}{
		{name: "edited after signing", first: key, damage: func(t *testing.T, dir string) { edit(t, dir, 2) }, then: key,
			want: "its signature does not check with this run's key or a previous one (the signature does not match its content: edited after signing)"},
		{name: "edited, a part added", first: key, damage: func(t *testing.T, dir string) { edit(t, dir, 2) }, then: key, part: true,
			want: "edited after signing"},
		{name: "another key", first: key, then: otherKey, want: "not by the given key"},
		{name: "no key", first: key, then: nil, usage: true,
			want: "is signed (key " + sinks.KeyID(key.Public().(ed25519.PublicKey)) + ") and this run has no signing key: give it the same signing.private_key_file"},
		{name: "good signature", first: key, then: key, signedDay: true},
		{name: "good signature, a part added", first: key, then: key, part: true, signedDay: true},
		{name: "unsigned stays unsigned", first: nil, then: key},
		{name: "unsigned, a part added", first: nil, then: key, part: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := claimed(t, dir, tc.first)
			require.NoError(t, commitRelink(t, s, whole(0), 5))
			// Day 2 of parts only: a part added keeps its entries.
			require.NoError(t, commitRelink(t, s, sinks.NewPartition(d.AddDate(0, 0, 2), d, d.AddDate(0, 0, 2).Add(time.Hour), "run"), 5))
			if tc.damage != nil {
				tc.damage(t, dir)
			}
			_, before := readManifest(t, dir, d.AddDate(0, 0, 2))
			p := whole(1)
			if tc.part {
				p = sinks.NewPartition(d.AddDate(0, 0, 2), d.AddDate(0, 0, 2).Add(time.Hour), d.AddDate(0, 0, 2).Add(2*time.Hour), "run")
			}
			err := commitRelink(t, claimed(t, dir, tc.then), p, 5)
			m, after := readManifest(t, dir, d.AddDate(0, 0, 2))
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				require.ErrorContains(t, err, filepath.Join(dir, "dt="+d.AddDate(0, 0, 2).Format(time.DateOnly), sinks.ManifestName))
				require.Equal(t, tc.usage, failure.IsUsage(err), "%v", err)
				require.Equal(t, before, after, "a manifest that does not check is not signed again")
				return
			}
			require.NoError(t, err)
			if tc.signedDay {
				require.NoError(t, m.CheckSignature(key.Public().(ed25519.PublicKey)))
			} else {
				require.Empty(t, m.Signature, "never signed for content the run did not write")
			}
		})
	}
}

// TestWholeDayRemovesUnlistedFiles: a file of part of the day that no
// manifest lists (a run killed between renaming the day's manifest into
// place and removing the files it replaced) goes at the next whole day;
// files that are not the exporter's stay.
func TestWholeDayRemovesUnlistedFiles(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s := claimed(t, dir, nil)
	part := sinks.NewPartition(d, d.Add(6*time.Hour), d.Add(12*time.Hour), "run")
	require.NoError(t, commitRelink(t, s, part, 3))
	partFile := filepath.Join(dir, part.Dir(), part.BaseName()+".ndjson.gz")
	b, err := os.ReadFile(partFile)
	require.NoError(t, err)
	commitDay(t, s, d, 10)
	// The state the kill leaves: the new manifest, and the old file.
	require.NoError(t, os.WriteFile(partFile, b, 0o600))
	other := filepath.Join(dir, part.Dir(), "notes.txt")
	require.NoError(t, os.WriteFile(other, []byte("not the exporter's"), 0o600))

	commitDay(t, s, d, 10)
	names, err := filepath.Glob(filepath.Join(dir, part.Dir(), "pachca-audit-*"))
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, part.Dir(), "pachca-audit-2026-11-01.ndjson.gz")}, names)
	require.FileExists(t, other)
	m, _ := readManifest(t, dir, d)
	require.Len(t, m.Files, 1)
}

// TestStaleManifestsGo: the temporary manifests a killed run left go at
// the next write of the manifest: a commit of its day, or a relink.
func TestStaleManifestsGo(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s := claimed(t, dir, nil)
	commitDay(t, s, d, 5)
	commitDay(t, s, d.AddDate(0, 0, 2), 5)
	stale := func(n int) string {
		p := filepath.Join(dir, "dt="+d.AddDate(0, 0, n).Format(time.DateOnly), "."+sinks.ManifestName+".tmp-123")
		require.NoError(t, os.WriteFile(p, []byte("{"), 0o600))
		return p
	}
	committed, relinked := stale(0), stale(2)
	commitDay(t, s, d, 6) // day 2 is linked to it again
	require.NoFileExists(t, committed)
	require.NoFileExists(t, relinked)
}

// TestRotatedKeySignsAgain: a run whose key replaced another, listed as
// previous, signs again with its own key the manifests of the old one it
// relinks or adds a part beside; an old manifest edited after signing is
// still refused.
func TestRotatedKeySignsAgain(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	oldPub, oldKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	newPub, newKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rotated := func(t *testing.T, dir string) *filesink.Sink {
		s := newNDJSON(t, dir)
		_, err := s.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true, Signer: newKey, Previous: []ed25519.PublicKey{oldPub}})
		require.NoError(t, err)
		return s
	}
	for _, part := range []bool{false, true} {
		dir := t.TempDir()
		s := claimed(t, dir, oldKey)
		require.NoError(t, commitRelink(t, s, sinks.NewPartition(d, d, d.AddDate(0, 0, 10), "run"), 5))
		require.NoError(t, commitRelink(t, s, sinks.NewPartition(d.AddDate(0, 0, 2), d, d.AddDate(0, 0, 2).Add(time.Hour), "run"), 5))
		p := sinks.NewPartition(d.AddDate(0, 0, 1), d, d.AddDate(0, 0, 10), "run")
		if part {
			p = sinks.NewPartition(d.AddDate(0, 0, 2), d.AddDate(0, 0, 2).Add(time.Hour), d.AddDate(0, 0, 2).Add(2*time.Hour), "run")
		}
		require.NoError(t, commitRelink(t, rotated(t, dir), p, 5))
		m, _ := readManifest(t, dir, d.AddDate(0, 0, 2))
		require.NoError(t, m.CheckSignature(newPub), "part %v", part)
		m, _ = readManifest(t, dir, d)
		require.NoError(t, m.CheckSignature(oldPub), "a day not changed keeps its signature")
	}
	// Edited after the old key signed it: refused with the new key too.
	dir := t.TempDir()
	s := claimed(t, dir, oldKey)
	require.NoError(t, commitRelink(t, s, sinks.NewPartition(d, d, d.AddDate(0, 0, 10), "run"), 5))
	require.NoError(t, commitRelink(t, s, sinks.NewPartition(d.AddDate(0, 0, 2), d, d.AddDate(0, 0, 10), "run"), 5))
	path := filepath.Join(dir, "dt=2026-11-03", sinks.ManifestName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, bytes.Replace(b, []byte(`"run_id": "`), []byte(`"run_id": "x`), 1), 0o600))
	err = commitRelink(t, rotated(t, dir), sinks.NewPartition(d.AddDate(0, 0, 1), d, d.AddDate(0, 0, 10), "run"), 5)
	require.ErrorContains(t, err, "edited after signing")
	require.ErrorContains(t, err, path)
}

// TestNoKeyKeepsASignedDay: a run without a key does not write a whole day
// over a signed manifest (the day would lose its signature, the next day
// its link): it fails before anything is written.
func TestNoKeyKeepsASignedDay(t *testing.T) {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	dir := t.TempDir()
	p := sinks.NewPartition(d, d, d.AddDate(0, 0, 10), "run")
	require.NoError(t, commitRelink(t, claimed(t, dir, key), p, 5))
	_, before := readManifest(t, dir, d)
	err = commitRelink(t, claimed(t, dir, nil), p, 7)
	require.ErrorContains(t, err, "this run has no signing key")
	require.True(t, failure.IsUsage(err), "%v", err)
	m, after := readManifest(t, dir, d)
	require.Equal(t, before, after)
	require.EqualValues(t, 5, m.Records)
}

// TestClaimRefusesTheOtherLayout: a Security Lake sink over a daily sink's
// directory, and a daily sink over a lake's, are refused, naming the
// other's marker; a sink of one layout inside a folder of the other's root
// is not the case (was: both ran, and readers of the location read the two
// data sets).
func TestClaimRefusesTheOtherLayout(t *testing.T) {
	daily := filepath.Join(t.TempDir(), "v1")
	_, err := newNDJSON(t, daily).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	_, err = lakeSink(t, daily).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.True(t, failure.IsUsage(err), "%v", err)
	require.ErrorContains(t, err, `layout: "security_lake" here, null there; `)
	require.ErrorContains(t, err, "see "+filepath.Join(daily, sinks.MarkerName))
	_, err = os.Stat(filepath.Join(daily, "pachca-export"))
	require.True(t, os.IsNotExist(err), "nothing written")

	lake := filepath.Join(t.TempDir(), "lake")
	_, err = lakeSink(t, lake).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	_, err = newNDJSON(t, lake).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.True(t, failure.IsUsage(err), "%v", err)
	require.ErrorContains(t, err, "holds the events of another configuration")
	require.ErrorContains(t, err, "see "+filepath.Join(lake, "pachca-export", sinks.MarkerName))
	_, err = os.Stat(filepath.Join(lake, sinks.MarkerName))
	require.True(t, os.IsNotExist(err), "nothing written")

	nested := filepath.Join(t.TempDir(), "out")
	_, err = newNDJSON(t, filepath.Join(nested, "ndjson")).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err)
	res, err := newNDJSON(t, nested).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
	require.NoError(t, err, "a daily sink around another is warned of, as before")
	require.Equal(t, []string{"ndjson"}, res.Others)
}
