// Package shape holds the keys of a file or S3 sink that choose the record
// shape and the layout of its files (schema, layout, security_lake), with
// their defaults and validation, and where the Amazon Security Lake layout
// puts each class. Package sinkset builds the formats and layouts they
// select; the configuration embeds Keys in the file and S3 sinks.
package shape

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// Values of the schema and layout keys.
const (
	SchemaV1           = transform.SchemaVersion // "pachca.audit.v1"
	SchemaOCSF         = "ocsf"
	LayoutDaily        = "daily"
	LayoutSecurityLake = "security_lake"
)

// DefaultManifestPrefix is where the Security Lake layout keeps the marker
// and the day manifests, under the sink's prefix or dir: outside ext/, so
// that the crawlers of the custom sources never read them as data.
const DefaultManifestPrefix = "pachca-export/"

// Keys are the shape keys of one file or S3 sink, inlined in its entry of
// pipeline.yaml. Empty values mean the defaults (pachca.audit.v1, daily).
type Keys struct {
	// Schema is the record shape: pachca.audit.v1 (schema v1) or ocsf
	// (OCSF 1.3.0 events).
	Schema string `yaml:"schema"`
	// Layout is daily (dt=YYYY-MM-DD/ directories) or security_lake (the
	// custom-source layout of Amazon Security Lake; schema ocsf, Parquet).
	Layout string `yaml:"layout"`
	// SecurityLake configures the security_lake layout.
	SecurityLake *SecurityLake `yaml:"security_lake"`
}

// SetDefaults fills the keys a user may omit. Call it before decoding.
func (k *Keys) SetDefaults() {
	if k.Schema == "" {
		k.Schema = SchemaV1
	}
	if k.Layout == "" {
		k.Layout = LayoutDaily
	}
}

// OCSF reports whether the sink writes OCSF events.
func (k Keys) OCSF() bool { return k.Schema == SchemaOCSF }

// SecurityLakeLayout reports whether the sink writes the Security Lake layout.
func (k Keys) SecurityLakeLayout() bool { return k.Layout == LayoutSecurityLake }

// Label is the shape as the state key and messages name it: "" for the
// defaults, else e.g. "ocsf" or "ocsf/security_lake".
func (k Keys) Label() string {
	var parts []string
	if k.OCSF() {
		parts = append(parts, k.Schema)
	}
	if k.SecurityLakeLayout() {
		parts = append(parts, k.Layout)
	}
	return strings.Join(parts, "/")
}

// Validate checks the keys without I/O for a sink writing format (parquet
// or ndjson) whose S3 region is region ("" for a file sink). Each joined
// error names its key, e.g. `security_lake.account_id: required`.
func (k Keys) Validate(format, region string) error {
	var errs []error
	add := func(f string, args ...any) { errs = append(errs, fmt.Errorf(f, args...)) }
	switch k.Schema {
	case "", SchemaV1, SchemaOCSF:
	default:
		add("schema: unknown %q (%s, %s)", k.Schema, SchemaV1, SchemaOCSF)
	}
	switch k.Layout {
	case "", LayoutDaily:
		if k.SecurityLake != nil {
			add("security_lake: only with layout: %s", LayoutSecurityLake)
		}
	case LayoutSecurityLake:
		if !k.OCSF() {
			add("layout: %s needs schema: %s (Security Lake takes OCSF events only)", LayoutSecurityLake, SchemaOCSF)
		}
		if format != "parquet" {
			add("layout: %s writes Parquet only (Security Lake reads nothing else), not %s", LayoutSecurityLake, format)
		}
		if k.SecurityLake == nil {
			add("security_lake: required with layout: %s (account_id at least)", LayoutSecurityLake)
		} else {
			for _, err := range k.SecurityLake.validate(region) {
				errs = append(errs, fmt.Errorf("security_lake.%w", err))
			}
		}
	default:
		add("layout: unknown %q (%s, %s)", k.Layout, LayoutDaily, LayoutSecurityLake)
	}
	return errors.Join(errs...)
}

// SecurityLake is the security_lake block of a sink: the partition values
// of Security Lake's custom-source layout and the source of each class.
type SecurityLake struct {
	// AccountID is the accountId= partition: the 12-digit AWS account the
	// data belongs to.
	AccountID string `yaml:"account_id"`
	// Region is the region= partition; empty means the S3 sink's region.
	Region string `yaml:"region"`
	// Sources maps OCSF class names (authentication, account_change, ...)
	// to the custom source that receives the class; the others keep
	// DefaultSources.
	Sources map[string]string `yaml:"sources"`
	// SourceVersion, when set, is the version the sources were registered
	// with: the objects go under ext/<source>/<version>/.
	SourceVersion string `yaml:"source_version"`
	// ManifestPrefix is where the marker and the day manifests go, under
	// the sink's prefix or dir; empty means DefaultManifestPrefix.
	ManifestPrefix string `yaml:"manifest_prefix"`
}

// DefaultSources returns the custom source of each class Map produces, by
// OCSF class name: names of at most 20 characters, as Security Lake wants.
func DefaultSources() map[string]string {
	return map[string]string{
		"authentication":         "pachca-auth",
		"account_change":         "pachca-account",
		"user_access":            "pachca-user-access",
		"group_management":       "pachca-group-mgmt",
		"entity_management":      "pachca-entity-mgmt",
		"web_resources_activity": "pachca-web-resource",
		"api_activity":           "pachca-api",
		"data_security_finding":  "pachca-dlp-finding",
		"base_event":             "pachca-other",
	}
}

var (
	accountID = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// Security Lake's custom source names: word characters, - . and :,
	// at most 20 (the provider role's name must stay within 64).
	sourceName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,20}$`)
	versionRe  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)
)

// validate returns one error per problem, each naming its key.
func (s SecurityLake) validate(region string) []error {
	var errs []error
	add := func(f string, args ...any) { errs = append(errs, fmt.Errorf(f, args...)) }
	switch {
	case s.AccountID == "":
		add("account_id: required (the 12-digit AWS account of the accountId= partition)")
	case !accountID.MatchString(s.AccountID):
		add("account_id: %q is not a 12-digit AWS account id", s.AccountID)
	}
	switch {
	case s.Region == "" && region == "":
		add("region: required (a file sink has no S3 region to default to)")
	case s.Region != "" && !regionRe.MatchString(s.Region):
		add("region: %q is not an AWS region such as eu-central-1", s.Region)
	}
	known := DefaultSources()
	for _, class := range slices.Sorted(maps.Keys(s.Sources)) {
		name := s.Sources[class]
		if _, ok := known[class]; !ok {
			add("sources.%s: unknown OCSF class (%s)", class, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
		} else if !sourceName.MatchString(name) || strings.Trim(name, ".") == "" {
			// All dots is no name: . and .. are this folder and the one above.
			add("sources.%s: %q is not a custom source name (1 to 20 letters, digits, _ - . :, not dots alone)", class, name)
		}
	}
	by := map[string][]string{}
	for class, src := range s.sourceMap() {
		by[src] = append(by[src], class)
	}
	for _, src := range slices.Sorted(maps.Keys(by)) {
		if classes := by[src]; len(classes) > 1 {
			slices.Sort(classes)
			add("sources: %s receives %s: Security Lake wants one class per source", src, strings.Join(classes, " and "))
		}
	}
	// All dots is no version: ext/<source>/../ leaves the source's folder.
	if v := s.SourceVersion; v != "" && (!versionRe.MatchString(v) || strings.Trim(v, ".") == "") {
		add("source_version: %q is not a version such as 1.0", v)
	}
	p := s.ManifestPrefix
	if err := CheckPrefix(p); err != nil {
		add("manifest_prefix: %v", err)
	} else if p == "ext" || strings.HasPrefix(p, "ext/") {
		add("manifest_prefix: %q is under ext/, where Security Lake's crawlers read every object as data", p)
	}
	return errs
}

// CheckPrefix refuses a key prefix (an s3 sink's prefix, a Security Lake
// manifest_prefix) that S3 servers reject or that would not name one
// folder under the sink's root: MinIO refuses keys with "." or ".."
// segments and empty ones (XMinioInvalidResourceName) only at the first
// write, AWS keeps "a//b" as a folder no console shows, a ".." segment
// leads a file sink out of its dir, and a control character splits the
// lines of logs and the run summary that name the location.
func CheckPrefix(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("must not start with \"/\" (got %q)", p)
	}
	if strings.ContainsFunc(p, unicode.IsControl) {
		return fmt.Errorf("%q holds a control character (newline, tab, ...)", p)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		switch seg {
		case "":
			return fmt.Errorf("%q has an empty segment (\"//\"): write it as folder/subfolder/", p)
		case ".", "..":
			return fmt.Errorf("%q has a %q segment: name the folder itself, S3 keys have no relative parts", p, seg)
		}
		// A space is part of a key: " audit" is another folder than
		// "audit", though the console and a listing show them alike.
		if strings.TrimSpace(seg) != seg {
			return fmt.Errorf("%q has a folder name %q that starts or ends with a space: remove the space (the quotes around the value keep it)", p, seg)
		}
	}
	return nil
}

// sourceMap is the source of every class name, DefaultSources overridden
// by Sources.
func (s SecurityLake) sourceMap() map[string]string {
	out := DefaultSources()
	for class, src := range s.Sources {
		if _, ok := out[class]; ok {
			out[class] = src
		}
	}
	return out
}

// SourceOf returns the source of each class Map produces, by class_uid.
func (s SecurityLake) SourceOf() map[int32]string {
	names := s.sourceMap()
	out := map[int32]string{}
	for _, c := range ocsf.Classes() {
		out[c.UID] = names[c.Name]
	}
	return out
}

// Meta is the directory of the marker and the manifests: ManifestPrefix
// (or its default) ending in "/".
func (s SecurityLake) Meta() string {
	p := s.ManifestPrefix
	if p == "" {
		p = DefaultManifestPrefix
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// Dir is the directory of source's objects of day (midnight UTC) under the
// sink's prefix or dir, for the region= partition region (the block's
// region, else the one given):
// ext/<source>[/<version>]/region=<region>/accountId=<account>/eventDay=YYYYMMDD.
func (s SecurityLake) Dir(source string, day time.Time, region string) string {
	if s.Region != "" {
		region = s.Region
	}
	dir := "ext/" + source
	if s.SourceVersion != "" {
		dir += "/" + s.SourceVersion
	}
	return dir + "/region=" + region + "/accountId=" + s.AccountID + "/eventDay=" + day.UTC().Format("20060102")
}
