package s3sink

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pachca-export/pachca-export/sinks/shape"
)

// Part sizes S3 accepts for every part but the last.
const (
	MinPartSize     int64 = 5 << 20
	MaxPartSize     int64 = 5 << 30
	DefaultPartSize int64 = 16 << 20
)

// Config is the `type: s3` entry of pipeline.yaml. The loader decodes it
// strictly onto SetDefaults, then calls Validate and prefixes `sinks[i].`.
type Config struct {
	// Bucket receives the objects; it must exist (the sink never creates it).
	Bucket string `yaml:"bucket"`
	// Prefix starts every key; "audit" and "audit/" both mean the folder audit/.
	Prefix string `yaml:"prefix"`
	// Format is parquet (default) or ndjson; it must match the Format given to New.
	Format string `yaml:"format"`
	// Compression: parquet none|snappy|gzip|zstd; ndjson none|gzip|zstd.
	// The default is zstd for both (see SetDefaults).
	Compression string `yaml:"compression"`
	// Region is required, also with an endpoint: requests are signed for it.
	Region string `yaml:"region"`
	// Endpoint is the http(s)://host:port of an S3-compatible server; empty for AWS.
	Endpoint string `yaml:"endpoint"`
	// ForcePathStyle addresses http://host/bucket/key instead of
	// http://bucket.host/key, as MinIO and most S3-compatible servers need.
	ForcePathStyle bool `yaml:"force_path_style"`
	// SSE is the server-side encryption of data objects: "", AES256 or aws:kms.
	SSE string `yaml:"sse"`
	// KMSKeyID is the KMS key for sse: aws:kms; empty means the account's default key.
	KMSKeyID string `yaml:"kms_key_id"`
	// StorageClass of data objects (STANDARD_IA, GLACIER_IR, ...); empty is
	// the bucket's default. Manifests stay STANDARD.
	StorageClass string `yaml:"storage_class"`
	// AccessKeyID and SecretAccessKey are static keys, usually
	// ${AWS_ACCESS_KEY_ID} and ${AWS_SECRET_ACCESS_KEY}; both empty means the
	// SDK's default chain (env, shared config, IMDS).
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	// PartSize is the multipart part size in bytes; files up to this size go
	// up in one PutObject.
	PartSize int64 `yaml:"part_size"`
	// MaxAttempts bounds the SDK's attempts per request (retries included).
	MaxAttempts int `yaml:"max_attempts"`
	// Keys choose the record shape (schema) and the layout of the objects
	// (layout, security_lake); see package shape.
	shape.Keys `yaml:",inline"`
	// Timeout bounds one HTTP attempt, body upload included.
	Timeout time.Duration `yaml:"timeout"`
	// TempDir holds the encoded file of a partition until it is uploaded
	// (up to a day of events, compressed); empty means the system's
	// temporary directory ($TMPDIR, else /tmp). It must be writable: a
	// container with a read-only root file system needs a volume here, and
	// Check proves it.
	TempDir string `yaml:"temp_dir"`
}

// SetDefaults fills the keys a user may omit. Call it before decoding.
func (c *Config) SetDefaults() {
	if c.Format == "" {
		c.Format = "parquet"
	}
	// zstd whatever the format: the loader sets the defaults before it
	// decodes the format, so ndjson sinks have always had zstd from a
	// pipeline.yaml, and their prefixes are marked ndjson.zst; a default
	// that followed the format would refuse them as another configuration.
	if c.Compression == "" {
		c.Compression = "zstd"
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	c.Keys.SetDefaults()
}

var (
	compressions = map[string][]string{
		"parquet": {"none", "snappy", "gzip", "zstd"},
		"ndjson":  {"none", "gzip", "zstd"},
	}
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// Validate checks the configuration without I/O. Each joined error names its
// key, e.g. `bucket: required`.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case c.Bucket == "":
		add("bucket: required")
	case !bucketName.MatchString(c.Bucket) || strings.Contains(c.Bucket, ".."):
		add("bucket: invalid name %q (3-63 lowercase letters, digits, dots and hyphens)", c.Bucket)
	}
	if err := shape.CheckPrefix(c.Prefix); err != nil {
		add("prefix: %v", err)
	}
	if comps, ok := compressions[c.Format]; !ok {
		add("format: unknown %q (parquet, ndjson)", c.Format)
	} else if c.Compression != "" && !slices.Contains(comps, c.Compression) {
		add("compression: unknown %q for %s (%s)", c.Compression, c.Format, strings.Join(comps, ", "))
	}
	if c.Region == "" {
		add("region: required (also with an endpoint)")
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			add("endpoint: %v", err)
		}
	}
	switch c.SSE {
	case "", string(types.ServerSideEncryptionAes256), string(types.ServerSideEncryptionAwsKms):
	default:
		add("sse: unknown %q (AES256, aws:kms)", c.SSE)
	}
	if c.KMSKeyID != "" && c.SSE != string(types.ServerSideEncryptionAwsKms) {
		add("kms_key_id: only with sse: aws:kms")
	}
	if c.StorageClass != "" && !slices.Contains(types.StorageClass("").Values(), types.StorageClass(c.StorageClass)) {
		add("storage_class: unknown %q (STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, ...)", c.StorageClass)
	}
	if c.AccessKeyID != "" && c.SecretAccessKey == "" {
		add("secret_access_key: required with access_key_id")
	}
	if c.SecretAccessKey != "" && c.AccessKeyID == "" {
		add("access_key_id: required with secret_access_key")
	}
	if c.PartSize < MinPartSize || c.PartSize > MaxPartSize {
		add("part_size: %d out of range (5 MiB to 5 GiB)", c.PartSize)
	}
	if c.MaxAttempts < 1 {
		add("max_attempts: must be at least 1")
	}
	if c.Timeout < 0 {
		add("timeout: must not be negative")
	}
	if err := c.Keys.Validate(c.Format, c.Region); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	return errors.Join(errs...)
}

// checkEndpoint accepts http(s)://host[:port][/path], which the SDK takes
// as the base of every request.
func checkEndpoint(e string) error {
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", e)
	}
	if u.User != nil { // never printed: a password there is a secret
		return fmt.Errorf("%q: no user or password in the endpoint (the credentials are access_key_id and secret_access_key)", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: only scheme, host, port and path (no query or fragment)", e)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %s out of range (1-65535)", e, port)
		}
	}
	return nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// KeyPrefix is the prefix as it starts object keys: empty, or ending in "/".
func (c Config) KeyPrefix() string {
	if c.Prefix == "" || strings.HasSuffix(c.Prefix, "/") {
		return c.Prefix
	}
	return c.Prefix + "/"
}
