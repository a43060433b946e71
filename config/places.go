package config

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// place is a tree that one part of the configuration writes and owns: a
// sink's directory or bucket and prefix, the sources and manifests of a
// Security Lake layout, the state directory.
type place struct {
	key   string // the key that chose it: sinks[1].dir, state.dir
	store string // "" for the local file system, else the S3 endpoint and bucket
	path  string // cleaned; for S3 a key prefix ending in "/" ("" for the root)
	url   string // the bucket as s3://bucket/, "" for a directory
}

func (p place) String() string { return p.url + p.path }

// places lists what each sink and the state write; the paths must be
// resolved. A Security Lake layout owns only ext/<source>/ of each of its
// sources and its manifest_prefix: sinks with their own sources and
// manifest_prefix share a bucket, as Security Lake wants.
func (c *Config) places() []place {
	var out []place
	for i, s := range c.Sinks {
		key := fmt.Sprintf("sinks[%d]", i)
		var root place
		switch {
		case s.File != nil:
			keys := s.File.Keys
			root = place{key: key + ".dir", path: filepath.Clean(s.File.Dir)}
			if keys.SecurityLakeLayout() && keys.SecurityLake != nil {
				out = append(out, lakePlaces(root, key, keys.SecurityLake.Meta(), keys.SecurityLake.SourceOf(), keys.SecurityLake.SourceVersion, filepath.Join)...)
				continue
			}
		case s.S3 != nil:
			keys := s.S3.Keys
			root = place{key: key + ".prefix", store: s.S3.Endpoint + " " + s.S3.Bucket, path: s.S3.KeyPrefix(), url: "s3://" + s.S3.Bucket + "/"}
			if keys.SecurityLakeLayout() && keys.SecurityLake != nil {
				join := func(elem ...string) string { return path.Join(elem...) + "/" }
				out = append(out, lakePlaces(root, key, keys.SecurityLake.Meta(), keys.SecurityLake.SourceOf(), keys.SecurityLake.SourceVersion, join)...)
				continue
			}
		default:
			continue
		}
		out = append(out, root)
	}
	if c.State.Dir != "" {
		out = append(out, place{key: "state.dir", path: filepath.Clean(c.State.Dir)})
	}
	return out
}

// lakePlaces are the trees of a Security Lake layout under root.
func lakePlaces(root place, key, meta string, sources map[int32]string, version string, join func(...string) string) []place {
	m := root
	m.key, m.path = key+".security_lake.manifest_prefix", join(root.path, meta)
	out := []place{m}
	var names []string
	for _, src := range sources {
		if !slices.Contains(names, src) {
			names = append(names, src)
		}
	}
	slices.Sort(names)
	for _, src := range names {
		p := root
		p.key, p.path = key+".security_lake.sources", join(root.path, "ext", src, version)
		out = append(out, p)
	}
	return out
}

// checkPlaces refuses two places that are one, or one inside the other:
// two sinks writing one tree replace each other's files, or fail at every
// rename. Each pair is reported once, at the later key.
func (c *Config) checkPlaces() error {
	ps := c.places()
	var errs []error
	reported := map[string]bool{}
	for j, b := range ps {
		for _, a := range ps[:j] {
			if a.store != b.store || sinkOf(a.key) == sinkOf(b.key) {
				continue
			}
			pair := sinkOf(a.key) + " " + sinkOf(b.key)
			if reported[pair] {
				continue
			}
			msg := relation(a, b)
			if msg == "" && b.url == "" {
				// Two paths that differ may name one directory through a
				// link (out/b -> a): each sink then removes the other's
				// temporary files, and every commit fails.
				if msg = relation(a.resolved(), b.resolved()); msg != "" {
					msg += ", through a symbolic link"
				}
			}
			if msg == "" {
				continue
			}
			reported[pair] = true
			errs = append(errs, errors.New(msg+"; give each its own"))
		}
	}
	return errors.Join(append(errs, c.checkTopics()...)...)
}

// relation says, at b's key, how b and a are one place or one inside the
// other; "" when they are apart.
func relation(a, b place) string {
	switch {
	case a.path == b.path:
		what := "directory"
		if b.url != "" {
			what = "location"
		}
		return fmt.Sprintf("%s: the same %s as %s (%s)", b.key, what, a.key, a)
	case within(b, a):
		return fmt.Sprintf("%s: %s is inside %s (%s)", b.key, b, a.key, a)
	case within(a, b):
		return fmt.Sprintf("%s: %s contains %s (%s)", b.key, b, a.key, a)
	}
	return ""
}

// resolved is p, a local directory, with the symbolic links of the longest
// part of its path that exists resolved (a directory not made yet resolves
// through its parent); p itself when no part of it resolves.
func (p place) resolved() place {
	rest := ""
	for cur := p.path; ; cur = filepath.Dir(cur) {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			p.path = filepath.Join(r, rest)
			return p
		}
		if filepath.Dir(cur) == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}

// checkTopics refuses two Kafka sinks of one topic on one cluster (a broker
// address in common): every event would be produced twice. One topic on two
// clusters is two copies, as two file sinks in two directories are.
func (c *Config) checkTopics() []error {
	var errs []error
	for j, b := range c.Sinks {
		if b.Kafka == nil {
			continue
		}
		for i, a := range c.Sinks[:j] {
			if a.Kafka == nil || a.Kafka.Topic != b.Kafka.Topic {
				continue
			}
			if k := slices.IndexFunc(b.Kafka.Brokers, func(x string) bool {
				return slices.ContainsFunc(a.Kafka.Brokers, func(y string) bool { return strings.EqualFold(x, y) })
			}); k >= 0 {
				errs = append(errs, fmt.Errorf("sinks[%d].topic: the same topic as sinks[%d].topic (%s on %s): every event would be sent twice; give each its own", j, i, b.Kafka.Topic, b.Kafka.Brokers[k]))
				break
			}
		}
	}
	return errs
}

// sinkOf is the part of key that names a sink (sinks[1]), or key.
func sinkOf(key string) string {
	if i := strings.Index(key, "]"); i >= 0 {
		return key[:i+1]
	}
	return key
}

// within reports whether p lies strictly inside outer.
func within(p, outer place) bool {
	if p.url != "" { // S3 prefixes end in "/"; the root is ""
		return strings.HasPrefix(p.path, outer.path) && p.path != outer.path
	}
	rel, err := filepath.Rel(outer.path, p.path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
