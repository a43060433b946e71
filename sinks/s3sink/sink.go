// Package s3sink delivers partitions as objects in an S3 bucket (AWS or an
// S3-compatible server such as MinIO), one object per partition under
// `<prefix>dt=YYYY-MM-DD/`, next to the day's `_manifest.json`.
//
// A partition is encoded into a local temporary file (unlinked from the
// start, so a killed process leaves none), then uploaded in one
// PutObject or, above the part size, as a multipart upload; an object exists
// under its final key only once it is complete. Keys are deterministic, so a
// rerun overwrites the same object. The SDK retries; the sink returns errors.
package s3sink

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/netproxy"
	"github.com/pachca-export/pachca-export/sinks"
)

// Sink writes partitions to one bucket and prefix. It is safe for concurrent
// use: each Open returns an independent Writer.
type Sink struct {
	cfg       Config
	prefix    string
	format    sinks.Format
	layout    sinks.Layout
	client    *s3.Client
	transport *http.Transport
	store     *store
	ledger    *sinks.Ledger
	// staleUploadAge: Claim aborts the multipart uploads older than this.
	staleUploadAge time.Duration
}

var (
	_ sinks.Sink    = (*Sink)(nil)
	_ sinks.Checker = (*Sink)(nil)
	_ sinks.Claimer = (*Sink)(nil)
	_ sinks.Holder  = (*Sink)(nil)
	_ sinks.Rooted  = (*Sink)(nil)
	_ sinks.Linker  = (*Sink)(nil)
)

// Option adjusts a Sink built by New.
type Option func(*Sink)

// WithLayout places the objects by l instead of the daily layout.
func WithLayout(l sinks.Layout) Option {
	return func(s *Sink) { s.layout = l }
}

// New validates cfg (after SetDefaults on a copy) and builds the S3 client for
// objects in format f. It does no network I/O: use Check to test the bucket.
func New(ctx context.Context, cfg Config, f sinks.Format, opts ...Option) (*Sink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if f.Name != cfg.Format || f.New == nil {
		return nil, fmt.Errorf("s3: format %q given for a sink configured with format %q", f.Name, cfg.Format)
	}
	load := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		// The SDK's own log lines (an IMDS that refuses tokens: "falling
		// back to IMDSv1") would go to stderr in its own format, among the
		// exporter's JSON lines; what matters comes back as the call's error.
		config.WithLogger(logging.Nop{}),
	}
	if cfg.AccessKeyID != "" {
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	awsCfg.Credentials = markedCredentials{awsCfg.Credentials}
	// Our own transport (with the CA bundle the shared config may add), so
	// that Close can release its connections.
	bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		bc = awshttp.NewBuildableClient()
	}
	transport := bc.GetTransport()
	transport.OnProxyConnectResponse = netproxy.Refused
	httpClient := &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		// The SDK reports redirects (a bucket in another region) as errors;
		// following them would only fail the signature.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
		o.HTTPClient = httpClient
		// Since s3 v1.73 the SDK adds CRC32 checksums that many S3-compatible
		// servers reject; the SigV4 payload hash already covers plain http.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// The standard retryer's client-side quota fails concurrent uploads
		// all at once after a burst of errors; bound attempts instead.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = cfg.MaxAttempts
			so.RateLimiter = ratelimit.None
		})
	})
	s := &Sink{cfg: cfg, prefix: cfg.KeyPrefix(), format: f, client: client, transport: transport, staleUploadAge: staleUploadAge}
	for _, o := range opts {
		o(s)
	}
	s.store = &store{s: s}
	s.ledger = sinks.NewLedger(s.store, f, s.layout)
	return s, nil
}

// Root is the bucket and prefix, as a sinks.Store.
func (s *Sink) Root() sinks.Store { return s.store }

// Layout is where the objects go under the prefix.
func (s *Sink) Layout() sinks.Layout { return s.layout }

// Claim implements sinks.Claimer; the marker is written with a conditional
// put, so two runs claiming a new prefix at once agree. Claiming to write
// (c.Create) then aborts the multipart uploads a killed process left under
// the prefix more than an hour ago (see abortStaleUploads), quietly: they
// hold no data anyone can read, and a role without
// s3:ListBucketMultipartUploads, which runs needed no more, must not fail
// them; a lifecycle rule for incomplete uploads stays the backstop.
func (s *Sink) Claim(ctx context.Context, c sinks.Claim) (sinks.ClaimResult, error) {
	ctx = withBudget(ctx)
	res, err := s.ledger.Claim(ctx, c)
	if err != nil || !c.Create {
		return res, err
	}
	_ = s.abortStaleUploads(ctx)
	_ = s.removeLeftProbes(ctx)
	return res, nil
}

// probePrefix starts the key of Check's probe object.
func (s *Sink) probePrefix() string { return s.prefix + s.layout.Meta + atomicfile.ProbePrefix }

// removeLeftProbes deletes the probe objects that checks killed between
// their put and their delete left beside the marker. A check at work
// meanwhile loses its probe early, which its delete does not mind (S3
// deletes a missing key without an error).
func (s *Sink) removeLeftProbes(ctx context.Context) error {
	var keys []string
	// Also under the name versions before 2026-12 gave them, which verify
	// takes for a stranger's object.
	for _, prefix := range []string{s.probePrefix(), s.prefix + s.layout.Meta + "_pachca-export-check-"} {
		if err := s.store.list(ctx, prefix, "", func(o types.Object, _ types.CommonPrefix) {
			if o.Key != nil {
				keys = append(keys, *o.Key)
			}
		}); err != nil {
			return err
		}
	}
	for _, key := range keys {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}); err != nil {
			return fmt.Errorf("s3: delete probe %s: %w", s.url(key), s.explain(ctx, err))
		}
	}
	return nil
}

// Relink implements sinks.Linker with conditional writes.
func (s *Sink) Relink(ctx context.Context, p sinks.Partition) error {
	if err := s.ledger.Relink(ctx, p); err != nil {
		return fmt.Errorf("s3: relink the manifests after %s: %w", s.url(s.prefix+p.Dir()), err)
	}
	return nil
}

// Existing implements sinks.Holder.
func (s *Sink) Existing(ctx context.Context, p sinks.Partition) (int64, bool, error) {
	return s.ledger.Existing(ctx, p)
}

// Name is "s3 s3://bucket/prefix", for logs and the run summary.
func (s *Sink) Name() string { return "s3 " + s.url(s.prefix) }

// Close releases idle connections. It is safe to call twice; Writers must be
// committed or aborted before.
func (s *Sink) Close(context.Context) error {
	s.transport.CloseIdleConnections()
	return nil
}

// Open starts partition p: its records are encoded into a temporary file
// until Commit uploads it. Nothing is sent to S3 before Commit.
func (s *Sink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	return s.open(ctx, p)
}

// Check tells whether the temporary directory takes a file and the bucket
// exists and is writable under the prefix (by putting and deleting a small
// probe object where the marker goes). It is meant for `check`, and runs
// before every run: credentials that may put but not delete must not leave
// a probe under the prefix at each try, which readers and verify would see
// as another's data; so the probe's key is deleted first, before it exists
// (S3 answers a permitted delete of a missing key with success; some
// S3-compatible servers, Google Cloud Storage's, with 404 NoSuchKey).
func (s *Sink) Check(ctx context.Context) error {
	ctx = withBudget(ctx)
	if err := s.checkTempDir(); err != nil {
		return err
	}
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)}); err != nil {
		if isStatus(err, http.StatusForbidden) {
			// A HEAD answer has no body to tell bad credentials from a
			// policy without the bucket-level permission (often forgotten
			// where only arn:aws:s3:::bucket/* was granted).
			return fmt.Errorf("s3: %w (or the credentials lack s3:ListBucket on the bucket, which the sink needs)", s.explain(ctx, err))
		}
		return fmt.Errorf("s3: %w", s.explain(ctx, err))
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	// Beside the marker: where a role limited to the sink's places (ext/
	// sources and the manifests of a Security Lake bucket) may write. Named
	// as a temporary file: a check killed before its delete leaves it,
	// which verify and a claim's listing pass over and Claim removes.
	key := s.probePrefix() + hex.EncodeToString(b[:])
	const probe = "pachca-export check\n"
	in := &s3.PutObjectInput{
		Bucket:      aws.String(s.cfg.Bucket),
		Key:         aws.String(key),
		Body:        strings.NewReader(probe),
		ContentType: aws.String("text/plain"),
		// As every put of the sink: a bucket with a default Object Lock
		// retention refuses a put without a checksum.
		ChecksumSHA256: aws.String(sha256Base64([]byte(probe))),
	}
	s.setEncryption(in)
	// The data objects' class, so that a class the server refuses fails
	// here and not at the first upload, after the fetch; the probe is
	// deleted at once, and its minimum duration costs next to nothing.
	in.StorageClass = types.StorageClass(s.cfg.StorageClass)
	del := &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}
	if _, err := s.client.DeleteObject(ctx, del); err != nil && !isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("s3: bucket %q is not writable: delete %s: %w (the sink puts and deletes objects under its prefix: s3:PutObject, s3:DeleteObject)",
			s.cfg.Bucket, s.url(key), s.explain(ctx, err))
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("s3: bucket %q is not writable: put %s: %w", s.cfg.Bucket, s.url(key), s.explain(ctx, err))
	}
	if _, err := s.client.DeleteObject(ctx, del); err != nil {
		return fmt.Errorf("s3: delete probe %s: %w", s.url(key), s.explain(ctx, err))
	}
	return nil
}

// checkTempDir creates and removes a file where Open encodes partitions
// (temp_dir, else $TMPDIR or /tmp), so that `check` fails where `run`
// would: a read-only root file system without a writable /tmp, say.
func (s *Sink) checkTempDir() error {
	dir := cmp.Or(s.cfg.TempDir, os.TempDir())
	if err := atomicfile.Probe(s.cfg.TempDir); err != nil {
		return fmt.Errorf("s3: temporary directory %s is not writable: %w (set the sink's temp_dir, or TMPDIR, to a writable directory)", dir, err)
	}
	return nil
}

// setEncryption applies the configured server-side encryption to a put. The
// storage class is for data objects (and check's probe) only: manifests
// stay STANDARD, small objects in archive classes cost a minimum duration.
func (s *Sink) setEncryption(in *s3.PutObjectInput) {
	in.ServerSideEncryption, in.SSEKMSKeyId = s.sse()
}

func (s *Sink) sse() (types.ServerSideEncryption, *string) {
	var key *string
	if s.cfg.KMSKeyID != "" {
		key = aws.String(s.cfg.KMSKeyID)
	}
	return types.ServerSideEncryption(s.cfg.SSE), key
}

func (s *Sink) url(key string) string { return "s3://" + s.cfg.Bucket + "/" + key }

func (s *Sink) endpoint() string {
	if s.cfg.Endpoint != "" {
		return s.cfg.Endpoint
	}
	return "https://s3." + s.cfg.Region + ".amazonaws.com"
}

// contentType is the media type of an object with key (or extension) ext.
func contentType(ext string) string {
	switch {
	case strings.HasSuffix(ext, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(ext, ".zst"):
		return "application/zstd"
	case strings.HasSuffix(ext, ".ndjson"):
		return "application/x-ndjson"
	case strings.HasSuffix(ext, ".parquet"):
		return "application/vnd.apache.parquet"
	}
	return "application/octet-stream"
}

// metadata is stored with every data object (x-amz-meta-*).
func (s *Sink) metadata(p sinks.Partition, sha string, records int64) map[string]string {
	return map[string]string{
		"schema-version": s.format.SchemaVersion(),
		"run-id":         p.RunID,
		"sha256":         sha,
		"records":        fmt.Sprint(records),
	}
}
