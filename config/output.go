package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pachca-export/pachca-export/sinks/filesink"
)

// Output is how the file sinks create what they write, and where dead
// letters go. The state directory is not affected: it stays 0600/0700.
type Output struct {
	// FileMode is the octal mode of data files and manifests ("0640" lets
	// a log forwarder in the file's group read them). Default "0600".
	FileMode string `yaml:"file_mode"`
	// DirMode is the octal mode of the directories the sinks create.
	// Default "0750".
	DirMode string `yaml:"dir_mode"`
	// DeadLetterDir receives the events that cannot be parsed; empty means
	// dead_letter/ in the state's directory. It must not lie inside a file
	// sink's directory, where a reader's glob would take it for data.
	DeadLetterDir string `yaml:"dead_letter_dir"`
}

// Validate checks the modes: octal, at most 0777, owner read-write (and
// search for directories) included, never writable by others. Empty means
// the default.
func (o Output) Validate() error {
	var errs []error
	check := func(key, v string, need fs.FileMode) {
		if v == "" {
			return
		}
		m, err := parseMode(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		case m&need != need:
			errs = append(errs, fmt.Errorf("%s: %s leaves the owner without %s (%04o at least)", key, v, permString(need), need))
		case m&0o002 != 0:
			errs = append(errs, fmt.Errorf("%s: %s lets every user write: give access through the group instead (e.g. 0640 for files, 0750 for directories)", key, v))
		}
	}
	check("file_mode", o.FileMode, 0o600)
	check("dir_mode", o.DirMode, 0o700)
	return errors.Join(errs...)
}

// Modes returns file_mode and dir_mode, or the defaults where they are
// empty; call it on a validated Output.
func (o Output) Modes() (file, dir fs.FileMode) {
	file, dir = filesink.DefaultFileMode, filesink.DefaultDirMode
	if m, err := parseMode(o.FileMode); err == nil {
		file = m
	}
	if m, err := parseMode(o.DirMode); err == nil {
		dir = m
	}
	return file, dir
}

func parseMode(v string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(v, "0o"), 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("want an octal mode such as \"0640\", got %q", v)
	}
	return fs.FileMode(n), nil
}

func permString(m fs.FileMode) string {
	if m&0o100 != 0 {
		return "read, write and search"
	}
	return "read and write"
}

// resolvePaths makes every relative path of the file absolute against base,
// the directory of the configuration file, as Prometheus does: a job
// started from another working directory reads and writes the same places.
// Each is also kept as resolved against spelt, when that is another
// spelling of base (SpeltPath).
func (c *Config) resolvePaths(base, spelt string) {
	for _, p := range c.paths() {
		if *p.path != "" && !filepath.IsAbs(*p.path) {
			rel := *p.path
			*p.path = filepath.Join(base, rel)
			if spelt != "" && spelt != base {
				if c.spelt == nil {
					c.spelt = map[string]string{}
				}
				c.spelt[*p.path] = filepath.Join(spelt, rel)
			}
		}
	}
}

// pathKey is a key of the file that holds a path, and where it is.
type pathKey struct {
	key  string
	path *string
}

// SpeltPath is p, a path of the configuration, as versions before 2026-12
// resolved it when it was relative: against the configuration's directory
// as the command line and $PWD spelt it, through symbolic links, rather
// than against its real path. Other paths are returned as they are. For
// the former keys of a state (pipeline.FormerIdentities).
func (c *Config) SpeltPath(p string) string {
	if s, ok := c.spelt[p]; ok {
		return s
	}
	return p
}

// paths lists every key of the file that holds a path.
func (c *Config) paths() []pathKey {
	out := []pathKey{{"state.dir", &c.State.Dir}, {"source.token_file", &c.Source.TokenFile},
		{"output.dead_letter_dir", &c.Output.DeadLetterDir}, {"signing.private_key_file", &c.Signing.PrivateKeyFile}}
	for i := range c.Signing.PreviousPublicKeyFiles {
		out = append(out, pathKey{fmt.Sprintf("signing.previous_public_key_files[%d]", i), &c.Signing.PreviousPublicKeyFiles[i]})
	}
	for i, s := range c.Sinks {
		sink := fmt.Sprintf("sinks[%d].", i)
		switch {
		case s.File != nil:
			out = append(out, pathKey{sink + "dir", &s.File.Dir})
		case s.S3 != nil:
			out = append(out, pathKey{sink + "temp_dir", &s.S3.TempDir})
		case s.Kafka != nil:
			out = append(out, pathKey{sink + "tls.ca_file", &s.Kafka.TLS.CAFile},
				pathKey{sink + "tls.cert_file", &s.Kafka.TLS.CertFile}, pathKey{sink + "tls.key_file", &s.Kafka.TLS.KeyFile})
		}
	}
	return out
}

// checkTilde refuses a path that starts with ~: only a shell expands it, so
// it would name a directory "~" beside the configuration file.
func (c *Config) checkTilde() []error {
	var errs []error
	for _, p := range c.paths() {
		if strings.HasPrefix(*p.path, "~") {
			errs = append(errs, fmt.Errorf("%s: a path starting with ~ is not expanded (a shell does that, not this file): write it in full, or with ${HOME}/", p.key))
		}
	}
	return errs
}

// checkPaths refuses a dead_letter_dir inside a file sink's directory, and
// sinks or the state that write one place (see checkPlaces); the paths
// must be resolved.
func (c *Config) checkPaths() error {
	var errs []error
	if err := c.checkPlaces(); err != nil {
		errs = unjoin(err)
	}
	dl := c.Output.DeadLetterDir
	if dl == "" {
		return errors.Join(errs...)
	}
	in := func(dl, dir place) bool { return dl.path == dir.path || within(dl, dir) }
	for i, s := range c.Sinks {
		if s.File == nil {
			continue
		}
		d, sink, how := place{path: filepath.Clean(dl)}, place{path: filepath.Clean(s.File.Dir)}, ""
		switch {
		case in(d, sink):
		case in(d.resolved(), sink.resolved()):
			// As for two sinks (was: a dead_letter_dir linked into a
			// sink's dir passed, and its readers took dead letters for data).
			how = ", through a symbolic link"
		default:
			continue
		}
		errs = append(errs, fmt.Errorf("output.dead_letter_dir: %s is inside sinks[%d].dir (%s)%s, where readers would take dead letters for data; choose a directory outside it", dl, i, s.File.Dir, how))
	}
	return errors.Join(errs...)
}
