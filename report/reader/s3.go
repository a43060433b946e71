package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/pachca-export/pachca-export/sinks/s3sink"
)

// S3 is a Store over the bucket and prefix of an s3 sink. Parquet objects
// are downloaded to temporary files (random access); NDJSON is streamed.
type S3 struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	temp   string
}

// NewS3 builds a read-only client for the sink configured by cfg, with the
// same endpoint, addressing, credentials and checksum settings the sink
// writes with. It does no network I/O.
func NewS3(ctx context.Context, cfg s3sink.Config) (*S3, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.Region)}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
		o.HTTPClient = &http.Client{Timeout: cfg.Timeout}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = cfg.MaxAttempts
			so.RateLimiter = ratelimit.None
		})
	})
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: prefix, temp: cfg.TempDir}, nil
}

// String is s3://bucket/prefix.
func (s *S3) String() string { return "s3://" + s.bucket + "/" + s.prefix }

// Days lists the dt=YYYY-MM-DD/ folders under the prefix.
func (s *S3) Days(ctx context.Context) ([]string, error) {
	var days []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + "dt="), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, notExist(err)
		}
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), s.prefix), "/")
			if m := dayDir.FindStringSubmatch(name); m != nil {
				days = append(days, m[1])
			}
		}
	}
	slices.Sort(days)
	return days, nil
}

// Open streams the object.
func (s *S3) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + name)})
	if err != nil {
		return nil, notExist(err)
	}
	return out.Body, nil
}

// Local downloads the object to a temporary file, through hash.
func (s *S3) Local(ctx context.Context, name string, hash io.Writer) (string, func(), error) {
	rc, err := s.Open(ctx, name)
	if err != nil {
		return "", nil, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(s.temp, ".pachca-report-*")
	if err != nil {
		return "", nil, err
	}
	done := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(io.MultiWriter(f, hash), rc); err != nil {
		done()
		return "", nil, err
	}
	return f.Name(), done, nil
}

// notExist makes a missing bucket or key wrap fs.ErrNotExist.
func notExist(err error) error {
	var nsk *types.NoSuchKey
	var nsb *types.NoSuchBucket
	var api smithy.APIError
	if errors.As(err, &nsk) || errors.As(err, &nsb) || (errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey")) {
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	return err
}
