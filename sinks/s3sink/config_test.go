package s3sink_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/shape"
)

func TestConfigValidate(t *testing.T) {
	valid := func(edit func(c *s3sink.Config)) s3sink.Config {
		c := s3sink.Config{Bucket: "pachca-audit", Prefix: "audit/", Region: "us-east-1"}
		if edit != nil {
			edit(&c)
		}
		c.SetDefaults()
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  s3sink.Config
		want string // empty: valid
	}{
		{"minimal", valid(nil), ""},
		{"full", valid(func(c *s3sink.Config) {
			c.Format, c.Compression = "ndjson", "zstd"
			c.Endpoint, c.ForcePathStyle = "http://127.0.0.1:9000", true
			c.SSE, c.KMSKeyID, c.StorageClass = "aws:kms", "arn:aws:kms:us-east-1:1:key/x", "STANDARD_IA"
			c.AccessKeyID, c.SecretAccessKey = "AKIA", "secret"
			c.PartSize, c.MaxAttempts, c.Timeout = 64<<20, 3, time.Minute
		}), ""},
		{"sse AES256", valid(func(c *s3sink.Config) { c.SSE = "AES256" }), ""},
		{"bucket required", valid(func(c *s3sink.Config) { c.Bucket = "" }), "bucket: required"},
		{"bucket name", valid(func(c *s3sink.Config) { c.Bucket = "Pachca_Audit" }),
			`bucket: invalid name "Pachca_Audit" (3-63 lowercase letters, digits, dots and hyphens)`},
		{"prefix slash", valid(func(c *s3sink.Config) { c.Prefix = "/audit" }), `prefix: must not start with "/" (got "/audit")`},
		{"prefix dot dot", valid(func(c *s3sink.Config) { c.Prefix = "pfx/../up/" }),
			`prefix: "pfx/../up/" has a ".." segment: name the folder itself, S3 keys have no relative parts`},
		{"prefix dot", valid(func(c *s3sink.Config) { c.Prefix = "./audit" }),
			`prefix: "./audit" has a "." segment: name the folder itself, S3 keys have no relative parts`},
		{"prefix empty segment", valid(func(c *s3sink.Config) { c.Prefix = "a//b/" }),
			`prefix: "a//b/" has an empty segment ("//"): write it as folder/subfolder/`},
		{"prefix only slash", valid(func(c *s3sink.Config) { c.Prefix = "/" }), `prefix: must not start with "/" (got "/")`},
		{"prefix newline", valid(func(c *s3sink.Config) { c.Prefix = "audit\nx/" }),
			`prefix: "audit\nx/" holds a control character (newline, tab, ...)`},
		{"prefix tab", valid(func(c *s3sink.Config) { c.Prefix = "au\tdit" }),
			`prefix: "au\tdit" holds a control character (newline, tab, ...)`},
		{"prefix nested", valid(func(c *s3sink.Config) { c.Prefix = "a/b.c/..d/" }), ""},
		{"prefix space inside", valid(func(c *s3sink.Config) { c.Prefix = "audit logs/" }), ""},
		{"prefix leading space", valid(func(c *s3sink.Config) { c.Prefix = " audit/" }),
			`prefix: " audit/" has a folder name " audit" that starts or ends with a space: remove the space (the quotes around the value keep it)`},
		{"prefix space before slash", valid(func(c *s3sink.Config) { c.Prefix = "audit /x" }),
			`prefix: "audit /x" has a folder name "audit " that starts or ends with a space: remove the space (the quotes around the value keep it)`},
		{"endpoint no host", valid(func(c *s3sink.Config) { c.Endpoint = "http://:9000" }),
			`endpoint: "http://:9000" is not an http:// or https:// URL`},
		{"endpoint port", valid(func(c *s3sink.Config) { c.Endpoint = "http://127.0.0.1:99999" }),
			`endpoint: "http://127.0.0.1:99999": port 99999 out of range (1-65535)`},
		{"endpoint user", valid(func(c *s3sink.Config) { c.Endpoint = "http://minioadmin:pw-42@127.0.0.1:9000" }),
			`endpoint: "http://minioadmin:xxxxx@127.0.0.1:9000": no user or password in the endpoint (the credentials are access_key_id and secret_access_key)`},
		{"endpoint query", valid(func(c *s3sink.Config) { c.Endpoint = "http://127.0.0.1:9000/?x=1" }),
			`endpoint: "http://127.0.0.1:9000/?x=1": only scheme, host, port and path (no query or fragment)`},
		{"format", valid(func(c *s3sink.Config) { c.Format = "csv" }), `format: unknown "csv" (parquet, ndjson)`},
		{"parquet compression", valid(func(c *s3sink.Config) { c.Compression = "lz4" }),
			`compression: unknown "lz4" for parquet (none, snappy, gzip, zstd)`},
		{"ndjson compression", valid(func(c *s3sink.Config) { c.Format, c.Compression = "ndjson", "snappy" }),
			`compression: unknown "snappy" for ndjson (none, gzip, zstd)`},
		{"region", valid(func(c *s3sink.Config) { c.Region = ""; c.Endpoint = "http://127.0.0.1:9000" }),
			"region: required (also with an endpoint)"},
		{"endpoint", valid(func(c *s3sink.Config) { c.Endpoint = "127.0.0.1:9000" }),
			`endpoint: "127.0.0.1:9000" is not an http:// or https:// URL`},
		{"sse", valid(func(c *s3sink.Config) { c.SSE = "x" }), `sse: unknown "x" (AES256, aws:kms)`},
		{"kms key without kms", valid(func(c *s3sink.Config) { c.SSE, c.KMSKeyID = "AES256", "k" }),
			"kms_key_id: only with sse: aws:kms"},
		{"storage class", valid(func(c *s3sink.Config) { c.StorageClass = "COLD" }),
			`storage_class: unknown "COLD" (STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, ...)`},
		{"secret missing", valid(func(c *s3sink.Config) { c.AccessKeyID = "AKIA" }),
			"secret_access_key: required with access_key_id"},
		{"key id missing", valid(func(c *s3sink.Config) { c.SecretAccessKey = "s" }),
			"access_key_id: required with secret_access_key"},
		{"part size small", valid(func(c *s3sink.Config) { c.PartSize = 1 << 20 }),
			"part_size: 1048576 out of range (5 MiB to 5 GiB)"},
		{"max attempts", valid(func(c *s3sink.Config) { c.MaxAttempts = -1 }), "max_attempts: must be at least 1"},
		{"timeout", valid(func(c *s3sink.Config) { c.Timeout = -time.Second }), "timeout: must not be negative"},
		{"several", s3sink.Config{Format: "parquet", SSE: "x", KMSKeyID: "k"},
			"bucket: required\nregion: required (also with an endpoint)\nsse: unknown \"x\" (AES256, aws:kms)\n" +
				"kms_key_id: only with sse: aws:kms\npart_size: 0 out of range (5 MiB to 5 GiB)\nmax_attempts: must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	var c s3sink.Config
	c.SetDefaults()
	require.Equal(t, s3sink.Config{
		Format: "parquet", Compression: "zstd", PartSize: s3sink.DefaultPartSize,
		MaxAttempts: 5, Timeout: 5 * time.Minute,
		Keys: shape.Keys{Schema: shape.SchemaV1, Layout: shape.LayoutDaily},
	}, c)
	// The loader calls SetDefaults before decoding, while Format is still
	// empty: the default must not depend on it, or an ndjson sink got one
	// compression from the loader and another from New. zstd, which the
	// loader always gave: a prefix written by it is marked ndjson.zst.
	c = s3sink.Config{Format: "ndjson"}
	c.SetDefaults()
	require.Equal(t, "zstd", c.Compression)
}
