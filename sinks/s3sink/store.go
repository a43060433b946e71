package s3sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/sinks"
)

// store is the sinks.Store of the sink's bucket and prefix. Versions are
// ETags; Put is a conditional write (If-Match, If-None-Match), or a plain
// one on a server that has no conditional writes.
type store struct {
	s             *Sink
	unconditional atomic.Bool // the server answered 501 to a conditional write
}

var _ sinks.Store = (*store)(nil)

func (st *store) key(name string) string { return st.s.prefix + name }

func (st *store) Location(name string) string { return st.s.url(st.key(name)) }

// Enclosing implements sinks.Enclosed: a HEAD of the marker's name in each
// folder above the prefix, nearest first. An error (a role granted the
// prefix only is refused the others) counts as no marker.
func (st *store) Enclosing(ctx context.Context) string {
	for p := st.s.prefix; p != ""; {
		p = p[:strings.LastIndex(strings.TrimSuffix(p, "/"), "/")+1]
		key := p + sinks.MarkerName
		if _, err := st.s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.s.cfg.Bucket), Key: aws.String(key)}); err == nil {
			return st.s.url(key)
		}
	}
	return ""
}

func (st *store) Get(ctx context.Context, name string) ([]byte, string, error) {
	out, err := st.s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.s.cfg.Bucket), Key: aws.String(st.key(name))})
	var noKey *types.NoSuchKey
	if errors.As(err, &noKey) {
		return nil, "", fmt.Errorf("%s: %w", st.Location(name), fs.ErrNotExist)
	}
	if err != nil {
		return nil, "", fmt.Errorf("s3: get %s: %w", st.Location(name), st.s.explain(ctx, err))
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, sinks.MaxSmallObject+1))
	if err != nil {
		return nil, "", fmt.Errorf("s3: get %s: %w", st.Location(name), err)
	}
	if len(b) > sinks.MaxSmallObject {
		return nil, "", fmt.Errorf("s3: %s is larger than %d bytes: not pachca-export's", st.Location(name), sinks.MaxSmallObject)
	}
	return b, aws.ToString(out.ETag), nil
}

func (st *store) Put(ctx context.Context, name string, body []byte, version string) error {
	s := st.s
	in := &s3.PutObjectInput{
		Bucket:         aws.String(s.cfg.Bucket),
		Key:            aws.String(st.key(name)),
		Body:           bytes.NewReader(body),
		ContentLength:  aws.Int64(int64(len(body))),
		ContentType:    aws.String("application/json"),
		ChecksumSHA256: aws.String(sha256Base64(body)),
		Metadata:       map[string]string{"schema-version": s.format.SchemaVersion()},
	}
	s.setEncryption(in)
	for {
		conditional := !st.unconditional.Load()
		in.IfMatch, in.IfNoneMatch = nil, nil
		if conditional && version == sinks.NoVersion {
			in.IfNoneMatch = aws.String("*")
		} else if conditional {
			in.IfMatch = aws.String(version)
		}
		_, err := s.client.PutObject(ctx, in)
		switch {
		case err == nil:
			return nil
		case isStatus(err, 412) || isStatus(err, 409):
			// Another writer got in between (or our own write, whose answer
			// was lost and retried): the caller reads again.
			return fmt.Errorf("s3: put %s: %w", st.Location(name), sinks.ErrChanged)
		case isStatus(err, 501) && conditional:
			st.unconditional.Store(true) // a server without conditional writes
			continue
		}
		return fmt.Errorf("s3: put %s: %w", st.Location(name), s.explain(ctx, err))
	}
}

func (st *store) Days(ctx context.Context, dir string) ([]string, error) {
	var days []string
	err := st.list(ctx, st.key(dir+"dt="), "/", func(o types.Object, p types.CommonPrefix) {
		if p.Prefix == nil {
			return
		}
		if day := strings.TrimSuffix(strings.TrimPrefix(*p.Prefix, st.key(dir)), "/"); sinks.IsDayDir(day) {
			days = append(days, day)
		}
	})
	return days, err
}

func (st *store) List(ctx context.Context, dir string) ([]sinks.Object, error) {
	var out []sinks.Object
	err := st.list(ctx, st.key(dir+"/"), "/", func(o types.Object, _ types.CommonPrefix) {
		if o.Key == nil || atomicfile.IsTemp(path.Base(*o.Key)) {
			return
		}
		out = append(out, sinks.Object{Name: strings.TrimPrefix(*o.Key, st.s.prefix), Size: aws.ToInt64(o.Size)})
	})
	return out, err
}

func (st *store) Entries(ctx context.Context, dir string) ([]sinks.Object, error) {
	prefix := st.key("")
	if dir != "" {
		prefix = st.key(dir + "/")
	}
	var out []sinks.Object
	err := st.list(ctx, prefix, "/", func(o types.Object, p types.CommonPrefix) {
		switch {
		case p.Prefix != nil:
			out = append(out, sinks.Object{Name: strings.TrimSuffix(strings.TrimPrefix(*p.Prefix, st.s.prefix), "/"), Dir: true})
		case o.Key != nil && *o.Key == prefix && strings.HasSuffix(prefix, "/"):
			// The folder's own placeholder, as the S3 console's "Create
			// folder" makes: no file in it.
		case o.Key != nil:
			out = append(out, sinks.Object{Name: strings.TrimPrefix(*o.Key, st.s.prefix), Size: aws.ToInt64(o.Size)})
		}
	})
	slices.SortFunc(out, func(a, b sinks.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// list calls fn with every object and common prefix under prefix, in key order.
func (st *store) list(ctx context.Context, prefix, delimiter string, fn func(types.Object, types.CommonPrefix)) error {
	p := s3.NewListObjectsV2Paginator(st.s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(st.s.cfg.Bucket), Prefix: aws.String(prefix), Delimiter: aws.String(delimiter),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3: list %s: %w", st.s.url(prefix), st.s.explain(ctx, err))
		}
		for _, o := range page.Contents {
			fn(o, types.CommonPrefix{})
		}
		for _, cp := range page.CommonPrefixes {
			fn(types.Object{}, cp)
		}
	}
	return nil
}

func (st *store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	out, err := st.s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.s.cfg.Bucket), Key: aws.String(st.key(name))})
	var noKey *types.NoSuchKey
	if errors.As(err, &noKey) {
		return nil, fmt.Errorf("%s: %w", st.Location(name), fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", st.Location(name), st.s.explain(ctx, err))
	}
	return out.Body, nil
}

// Checksum returns the checksum S3 stores with the object, in the form
// manifests record it (ManifestFile.S3Checksum): "SHA256:<base64>" or
// "SHA256-COMPOSITE:<base64>-<parts>" for the sink's own objects; for an
// object another client put there, its own algorithm in the same form
// (CRC32:..., CRC64NVME:...); "" when it has none.
func (st *store) Checksum(ctx context.Context, name string) (string, error) {
	out, err := st.s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(st.s.cfg.Bucket), Key: aws.String(st.key(name)), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return "", fmt.Errorf("s3: head %s: %w", st.Location(name), st.s.explain(ctx, err))
	}
	for _, c := range []struct{ algo, value string }{
		{"SHA256", aws.ToString(out.ChecksumSHA256)},
		{"CRC64NVME", aws.ToString(out.ChecksumCRC64NVME)},
		{"CRC32C", aws.ToString(out.ChecksumCRC32C)},
		{"CRC32", aws.ToString(out.ChecksumCRC32)},
		{"SHA1", aws.ToString(out.ChecksumSHA1)},
	} {
		if c.value != "" {
			return label(c.algo, c.value, out.ChecksumType), nil
		}
	}
	return "", nil
}

// checksumLabel is an S3 SHA-256 checksum as manifests record it.
func checksumLabel(value string, typ types.ChecksumType) string {
	return label("SHA256", value, typ)
}

// label is an S3 checksum of algo as manifests record it: "ALGO:value", or
// "ALGO-COMPOSITE:value-parts" for a checksum of a multipart upload's parts.
func label(algo, value string, typ types.ChecksumType) string {
	switch {
	case value == "":
		return ""
	case typ == types.ChecksumTypeComposite || strings.Contains(value, "-"):
		return algo + "-COMPOSITE:" + value
	}
	return algo + ":" + value
}
