package s3sink

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/printable"
	"github.com/pachca-export/pachca-export/sinks"
)

const (
	maxParts        = 10000 // S3's limit per multipart upload
	partConcurrency = 4     // parts in flight per upload
)

// put uploads the temporary file to o.key: one PutObject up to the part size,
// a multipart upload above it. Bodies are section readers of the file, so the
// SDK can seek them to sign (plain http) and to retry. Every request carries
// the SHA-256 of its body, which S3 checks before it stores anything and
// keeps with the object; put returns that checksum as manifests record it.
func (o *object) put(ctx context.Context, size int64, sha string, records int64) (string, error) {
	s := o.s
	if size <= s.cfg.PartSize {
		sum, err := base64Hex(sha)
		if err != nil {
			return "", err
		}
		in := &s3.PutObjectInput{
			Bucket:         aws.String(s.cfg.Bucket),
			Key:            aws.String(o.key),
			Body:           io.NewSectionReader(o.file, 0, size),
			ContentLength:  aws.Int64(size),
			ContentType:    aws.String(contentType(o.key)),
			Metadata:       s.metadata(o.p, sha, records),
			StorageClass:   types.StorageClass(s.cfg.StorageClass),
			ChecksumSHA256: aws.String(sum),
		}
		s.setEncryption(in)
		if _, err := s.client.PutObject(ctx, in); err != nil {
			return "", s.explain(ctx, err)
		}
		return checksumLabel(sum, types.ChecksumTypeFullObject), nil
	}

	// Creating is not cancelled with ctx: a create whose answer never arrives
	// leaves an upload whose id nobody knows, hence nobody aborts.
	createCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	sse, kmsKey := s.sse()
	created, err := s.client.CreateMultipartUpload(createCtx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.cfg.Bucket),
		Key:                  aws.String(o.key),
		ContentType:          aws.String(contentType(o.key)),
		Metadata:             s.metadata(o.p, sha, records),
		StorageClass:         types.StorageClass(s.cfg.StorageClass),
		ServerSideEncryption: sse,
		SSEKMSKeyId:          kmsKey,
		ChecksumAlgorithm:    types.ChecksumAlgorithmSha256,
		ChecksumType:         types.ChecksumTypeComposite,
	})
	if err != nil {
		return "", s.explain(ctx, err)
	}
	o.upload = aws.ToString(created.UploadId)
	if err := ctx.Err(); err != nil {
		return "", errors.Join(err, o.abortUpload(ctx))
	}
	sum, err := o.putParts(ctx, size)
	if err != nil {
		return "", errors.Join(s.explain(ctx, err), o.abortUpload(ctx))
	}
	return sum, nil
}

// putParts uploads the parts, each with its SHA-256, and completes the
// upload; it returns the composite checksum S3 computed over them, after
// checking it against the one computed here.
func (o *object) putParts(ctx context.Context, size int64) (string, error) {
	s := o.s
	partSize := max(s.cfg.PartSize, (size+maxParts-1)/maxParts)
	n := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(partConcurrency)
	for i := range n {
		off := int64(i) * partSize
		length := min(partSize, size-off)
		num := aws.Int32(int32(i + 1))
		g.Go(func() error {
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(o.file, off, length)); err != nil {
				return fmt.Errorf("part %d: %w", *num, err)
			}
			out, err := s.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket:         aws.String(s.cfg.Bucket),
				Key:            aws.String(o.key),
				UploadId:       aws.String(o.upload),
				PartNumber:     num,
				Body:           io.NewSectionReader(o.file, off, length),
				ContentLength:  aws.Int64(length),
				ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(h.Sum(nil))),
			})
			if err != nil {
				return fmt.Errorf("part %d: %w", *num, err)
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: num, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(h.Sum(nil)))}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.Bucket),
		Key:             aws.String(o.key),
		UploadId:        aws.String(o.upload),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "", err
	}
	o.upload = ""
	want := compositeSHA256(parts)
	if got := aws.ToString(out.ChecksumSHA256); got != "" && got != want {
		return "", fmt.Errorf("S3 reports checksum %s for the completed upload, %s was sent", got, want)
	}
	return checksumLabel(want, types.ChecksumTypeComposite), nil
}

// compositeSHA256 is S3's checksum of a multipart upload: the SHA-256 of the
// concatenated part digests, then "-" and the number of parts.
func compositeSHA256(parts []types.CompletedPart) string {
	h := sha256.New()
	for _, p := range parts {
		d, _ := base64.StdEncoding.DecodeString(aws.ToString(p.ChecksumSHA256))
		h.Write(d)
	}
	return fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(h.Sum(nil)), len(parts))
}

// base64Hex turns a hex digest into the base64 S3 checksum headers want.
func base64Hex(h string) (string, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func sha256Base64(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// abortUpload aborts the pending multipart upload, so its parts stop costing
// storage. It works after ctx ended; on failure the id stays for Abort to
// retry (a bucket lifecycle rule for incomplete uploads is the last resort).
func (o *object) abortUpload(ctx context.Context) error {
	if o.upload == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := o.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(o.s.cfg.Bucket),
		Key:      aws.String(o.key),
		UploadId: aws.String(o.upload),
	})
	var noUpload *types.NoSuchUpload
	if err != nil && !errors.As(err, &noUpload) {
		return fmt.Errorf("s3: abort multipart upload of %s: %w", o.s.url(o.key), o.s.explain(ctx, err))
	}
	o.upload = ""
	return nil
}

// staleUploadAge is how old a multipart upload under the prefix must be for a
// claim to abort it (Sink.staleUploadAge, shorter in tests).
const staleUploadAge = time.Hour

// abortStaleUploads aborts the multipart uploads of data objects under the
// prefix that were initiated more than s.staleUploadAge ago: what a process
// killed in the middle of an upload (SIGKILL, the OOM killer, a lost node)
// left, which S3 keeps, and bills, until a lifecycle rule aborts it. A
// younger upload may be another run's at work (a concurrent run with
// another state, or a follow loop and a backfill on one prefix), so it
// stays; an upload of ours takes minutes, not an hour. Only keys named like
// the sink's data objects (pachca-audit-*) are touched: a prefix may be
// the root of a bucket other writers share.
//
// The listing is of the whole bucket, filtered here: MinIO answers a Prefix
// only with the uploads of the object of exactly that name, so a folder
// prefix would find nothing there. A bucket holds few uploads in progress,
// a thousand a request.
func (s *Sink) abortStaleUploads(ctx context.Context) error {
	before := time.Now().Add(-s.staleUploadAge)
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket)}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return fmt.Errorf("s3: list the multipart uploads of bucket %q: %w", s.cfg.Bucket, s.explain(ctx, err))
		}
		for _, u := range page.Uploads {
			key := aws.ToString(u.Key)
			if !strings.HasPrefix(key, s.prefix) || !strings.HasPrefix(path.Base(key), sinks.FilePrefix) ||
				u.Initiated == nil || !u.Initiated.Before(before) {
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.cfg.Bucket), Key: u.Key, UploadId: u.UploadId,
			})
			var noUpload *types.NoSuchUpload
			if err != nil && !errors.As(err, &noUpload) {
				return fmt.Errorf("s3: abort the multipart upload of %s: %w", s.url(key), s.explain(ctx, err))
			}
		}
		if !aws.ToBool(page.IsTruncated) || (page.NextKeyMarker == nil && page.NextUploadIdMarker == nil) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

// deleteDenied is the error of a refused delete of the objects a day's new
// manifest no longer lists (a policy denying s3:DeleteObject under the
// prefix; Object Lock alone never refuses one: a delete there adds a delete
// marker). It is permanent: a retry would upload the day again, one more
// version the bucket retains, and be refused again, so a follow loop stops
// at once instead of for follow.give_up_after.
func deleteDenied(err error) error {
	return failure.AsPermanent(fmt.Errorf("%w: the objects stay beside the day's, listed by no manifest; "+
		"allow s3:DeleteObject under the prefix, or for follow set follow.keep_cycle_files: true (see README, Object Lock)", err))
}

// canDelete fails, before a Compact partition (a follow's seal) uploads
// anything, when the bucket refuses the deletes its commit would end
// with (see deleteDenied): it deletes a key in dir, where the objects the
// seal replaces are, that does not exist (a probe's name; on a versioned
// bucket AWS adds a delete marker, which no listing shows). Refused, the
// seal would have left the day's object beside the cycle objects, both
// read by every reader.
func (s *Sink) canDelete(ctx context.Context, dir string) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	key := dir + "/" + atomicfile.ProbePrefix + hex.EncodeToString(b[:])
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err == nil || isStatus(err, http.StatusNotFound) {
		return nil
	}
	err = fmt.Errorf("s3: delete %s: %w", s.url(key), s.explain(ctx, err))
	if code, _, status := apiError(err); code == "AccessDenied" || status == http.StatusForbidden {
		return failure.AsPermanent(fmt.Errorf("%w: the seal of a day deletes the cycle objects it replaces, and uploaded nothing; "+
			"allow s3:DeleteObject under the prefix, or set follow.keep_cycle_files: true (see README, Object Lock)", err))
	}
	return err
}

// deleteObjects removes the objects of p's day that its manifest names
// (see sinks.EntryPath), in one request per thousand. A name already gone is no error.
func (s *Sink) deleteObjects(ctx context.Context, p sinks.Partition, names []string) error {
	for len(names) > 0 {
		n := min(len(names), 1000)
		var ids []types.ObjectIdentifier
		for _, name := range names[:n] {
			ids = append(ids, types.ObjectIdentifier{Key: aws.String(s.prefix + sinks.EntryPath(p.Dir(), name))})
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.cfg.Bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			err = fmt.Errorf("s3: delete the replaced objects of %s: %w", p.Dir(), s.explain(ctx, err))
			if code, _, status := apiError(err); code == "AccessDenied" || status == http.StatusForbidden {
				return deleteDenied(err)
			}
			return err
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			err := fmt.Errorf("s3: delete %s: %s", s.url(aws.ToString(e.Key)), printable.Line(short(aws.ToString(e.Code), aws.ToString(e.Message))))
			if aws.ToString(e.Code) == "AccessDenied" {
				return deleteDenied(err)
			}
			return err
		}
		names = names[n:]
	}
	return nil
}
