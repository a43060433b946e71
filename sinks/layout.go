package sinks

import (
	"path"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/transform"
)

// Layout is where a file-like sink puts its files under its root (a
// directory, or a bucket and prefix). The zero Layout is the daily one:
// the files of a day in dt=YYYY-MM-DD/ beside the day's _manifest.json, the
// marker at the root. Names are relative to the root and use "/".
//
// The Security Lake layout (sinkset builds it) splits each partition
// into one file per OCSF class, each in the directory of the class's custom
// source (ext/<source>/region=.../accountId=.../eventDay=YYYYMMDD), and keeps
// the marker and the manifests apart, under Meta, where the crawler of the
// sources does not look.
type Layout struct {
	// Name is recorded in the identity of the location ("" for the daily
	// layout), so that data of one layout is never taken for another's.
	Name string
	// Meta is the directory ("" or ending in "/") of the marker and of the
	// day directories (dt=YYYY-MM-DD) that hold the manifests.
	Meta string
	// Split, when set, writes each partition as one file per key of its
	// records, each in its key's directory, instead of one file in the day
	// directory.
	Split *Split
}

// Split spreads a partition's records over one file per key.
type Split struct {
	// Keys lists every key a record can have, in the order their
	// directories are listed.
	Keys []string
	// Key returns the key of a record.
	Key func(*transform.Record) string
	// Dir returns the directory of key's files of day (midnight UTC),
	// relative to the root, without a trailing "/".
	Dir func(key string, day time.Time) string
	// Formats holds the format of each key's files.
	Formats map[string]Format
}

// ManifestName is the name of the manifest of a day directory
// ("dt=YYYY-MM-DD"), relative to the root.
func (l Layout) ManifestName(dayDir string) string { return l.Meta + dayDir + "/" + ManifestName }

// MarkerName is the name of the marker, relative to the root.
func (l Layout) MarkerName() string { return l.Meta + MarkerName }

// DataDirs lists the directories that hold the data files of day (midnight
// UTC, or any time within it): the day directory, or one per key of Split.
func (l Layout) DataDirs(day time.Time) []string {
	day = day.UTC().Truncate(24 * time.Hour)
	if l.Split == nil {
		return []string{"dt=" + day.Format(time.DateOnly)}
	}
	dirs := make([]string, len(l.Split.Keys))
	for i, k := range l.Split.Keys {
		dirs[i] = l.Split.Dir(k, day)
	}
	return dirs
}

// ListedDirs returns DataDirs(day) followed by the other directories of
// the files that a manifest of the day lists (entries, its file names in
// dayDir) and that the layout with other keys would also use for the day:
// the same first and last segment as one of DataDirs
// (ext/<source>/.../eventDay=YYYYMMDD), as after a change of the Security
// Lake sources, source_version, region or account. A rerun of the day and
// verify list them too, so that a file written before such a change is
// replaced, or checked, instead of being left where no configuration looks.
func (l Layout) ListedDirs(day time.Time, dayDir string, entries []string) []string {
	own := l.DataDirs(day)
	dirs := slices.Clone(own)
	for _, e := range entries {
		dir := path.Dir(EntryPath(dayDir, e))
		if !slices.Contains(dirs, dir) && slices.ContainsFunc(own, func(d string) bool { return sameShape(dir, d) }) {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// sameShape reports whether the data directories a and b have the same
// first and last segment: ext/<source>/.../eventDay=YYYYMMDD of one day.
func sameShape(a, b string) bool {
	firstA, _, _ := strings.Cut(a, "/")
	firstB, _, _ := strings.Cut(b, "/")
	return firstA == firstB && path.Base(a) == path.Base(b)
}

// Replaces reports whether the file at name (from the root) is one that
// committing p in format f replaces: one of Paths(p, f), or in a split
// layout a file of p's name in another data directory of the day that
// ListedDirs would list, written before the keys' directories changed.
func (l Layout) Replaces(p Partition, f Format, name string) bool {
	paths := l.Paths(p, f)
	if slices.Contains(paths, name) {
		return true
	}
	if l.Split == nil {
		return false
	}
	dir, base := path.Split(name)
	return slices.ContainsFunc(paths, func(own string) bool {
		return path.Base(own) == base && sameShape(path.Dir(own), path.Clean(dir))
	})
}

// Paths lists the path from the root of every file partition p can have
// in format f (the day file's; a split layout has its own per key): the day
// file, or the partition's file in each key's directory. A rerun of p
// replaces them.
func (l Layout) Paths(p Partition, f Format) []string {
	name := p.BaseName()
	if l.Split == nil {
		return []string{p.Dir() + "/" + name + f.Ext}
	}
	out := make([]string, len(l.Split.Keys))
	for i, k := range l.Split.Keys {
		out[i] = l.Split.Dir(k, p.Day) + "/" + name + l.Split.Formats[k].Ext
	}
	return out
}

// EntryPath is the path from the root of the file that a manifest entry of
// the day directory dayDir ("dt=YYYY-MM-DD") names: an entry names a file of
// that directory by its name, and a file elsewhere (the Security Lake
// layout) by its path from the root.
func EntryPath(dayDir, name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	return dayDir + "/" + name
}

// EntryName is the name a manifest entry of dayDir gives the file at path
// (from the root): the inverse of EntryPath.
func EntryName(dayDir, path string) string {
	if rest, ok := strings.CutPrefix(path, dayDir+"/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return path
}
