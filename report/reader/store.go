// Package reader reads back what the exporter's file and S3 sinks wrote, for
// the report: it finds the data of a period through the per-day manifests
// (dt=YYYY-MM-DD/_manifest.json), says which days are missing, checks every
// file it reads against its manifest entry (size, sha256, record count) and
// streams only the columns the report needs, from Parquet (column by column
// with arrow-go's pqarrow) or NDJSON (line by line, gzip or zstd).
package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Store is the root of one sink's output: a directory or an S3 prefix. Names
// are slash-separated and relative to the root ("dt=2026-11-01/x.parquet").
// Implementations are safe for use by one goroutine at a time.
type Store interface {
	// String names the root in messages: a directory or s3://bucket/prefix.
	String() string
	// Days lists the days that have a dt=YYYY-MM-DD/ folder, sorted.
	Days(ctx context.Context) ([]string, error)
	// Open streams the object name; a missing one gives an error wrapping
	// fs.ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Local gives a local file holding name, for random access (Parquet):
	// the file itself for a directory, a temporary copy for S3 (removed by
	// done). hash sees every byte as it is read or downloaded.
	Local(ctx context.Context, name string, hash io.Writer) (file string, done func(), err error)
}

// dayDir matches a Hive-style day folder.
var dayDir = regexp.MustCompile(`^dt=(\d{4}-\d{2}-\d{2})$`)

// Dir is a Store over a local directory, the dir of a parquet or ndjson sink.
type Dir string

// String is the directory as given.
func (d Dir) String() string { return string(d) }

// Days lists the dt=YYYY-MM-DD subdirectories.
func (d Dir) Days(context.Context) ([]string, error) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return nil, err
	}
	var days []string
	for _, e := range entries {
		if m := dayDir.FindStringSubmatch(e.Name()); m != nil && e.IsDir() {
			days = append(days, m[1])
		}
	}
	slices.Sort(days)
	return days, nil
}

// Open opens the file name under the directory.
func (d Dir) Open(_ context.Context, name string) (io.ReadCloser, error) {
	return os.Open(d.path(name))
}

// Local returns the file itself, after reading it once through hash.
func (d Dir) Local(_ context.Context, name string, hash io.Writer) (string, func(), error) {
	p := d.path(name)
	f, err := os.Open(p)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if _, err := io.Copy(hash, f); err != nil {
		return "", nil, err
	}
	return p, func() {}, nil
}

func (d Dir) path(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

// checkName refuses a manifest entry that would leave its day folder.
func checkName(name string) error {
	if name == "" || name != path.Base(name) || name == "." || name == ".." {
		return fmt.Errorf("file name %q is not a plain name", name)
	}
	return nil
}

// isNotExist tells a missing object from other failures, for any Store.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// where names an object of st in messages.
func where(st Store, name string) string {
	root := st.String()
	if strings.HasSuffix(root, "/") {
		return root + name
	}
	return root + "/" + name
}
