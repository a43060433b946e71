package s3sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

const (
	maxParts        = 10000   // S3's limit per multipart upload
	partConcurrency = 4       // parts in flight per upload
	maxManifestSize = 8 << 20 // a manifest lists a few files; anything larger is not ours
	manifestTries   = 8       // read-modify-write rounds against concurrent writers
)

// put uploads the temporary file to w.key: one PutObject up to the part size,
// a multipart upload above it. Bodies are section readers of the file, so the
// SDK can seek them to sign (plain http) and to retry.
func (w *writer) put(ctx context.Context, size int64, sha string) error {
	s := w.s
	if size <= s.cfg.PartSize {
		in := &s3.PutObjectInput{
			Bucket:        aws.String(s.cfg.Bucket),
			Key:           aws.String(w.key),
			Body:          io.NewSectionReader(w.file, 0, size),
			ContentLength: aws.Int64(size),
			ContentType:   aws.String(contentType(s.format.Ext)),
			Metadata:      metadata(w.p, sha, w.records),
			StorageClass:  types.StorageClass(s.cfg.StorageClass),
		}
		s.setEncryption(in)
		_, err := s.client.PutObject(ctx, in)
		return s.explain(ctx, err)
	}

	// Creating is not cancelled with ctx: a create whose answer never arrives
	// leaves an upload whose id nobody knows, hence nobody aborts.
	createCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	sse, kmsKey := s.sse()
	created, err := s.client.CreateMultipartUpload(createCtx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.cfg.Bucket),
		Key:                  aws.String(w.key),
		ContentType:          aws.String(contentType(s.format.Ext)),
		Metadata:             metadata(w.p, sha, w.records),
		StorageClass:         types.StorageClass(s.cfg.StorageClass),
		ServerSideEncryption: sse,
		SSEKMSKeyId:          kmsKey,
	})
	if err != nil {
		return s.explain(ctx, err)
	}
	w.upload = aws.ToString(created.UploadId)
	if err := ctx.Err(); err != nil {
		return errors.Join(err, w.abortUpload(ctx))
	}
	if err := w.putParts(ctx, size); err != nil {
		return errors.Join(s.explain(ctx, err), w.abortUpload(ctx))
	}
	return nil
}

func (w *writer) putParts(ctx context.Context, size int64) error {
	s := w.s
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
			out, err := s.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket:        aws.String(s.cfg.Bucket),
				Key:           aws.String(w.key),
				UploadId:      aws.String(w.upload),
				PartNumber:    num,
				Body:          io.NewSectionReader(w.file, off, length),
				ContentLength: aws.Int64(length),
			})
			if err != nil {
				return fmt.Errorf("part %d: %w", *num, err)
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: num}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.Bucket),
		Key:             aws.String(w.key),
		UploadId:        aws.String(w.upload),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return err
	}
	w.upload = ""
	return nil
}

// abortUpload aborts the pending multipart upload, so its parts stop costing
// storage. It works after ctx ended; on failure the id stays for Abort to
// retry (a bucket lifecycle rule for incomplete uploads is the last resort).
func (w *writer) abortUpload(ctx context.Context) error {
	if w.upload == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(w.s.cfg.Bucket),
		Key:      aws.String(w.key),
		UploadId: aws.String(w.upload),
	})
	var noUpload *types.NoSuchUpload
	if err != nil && !errors.As(err, &noUpload) {
		return fmt.Errorf("s3: abort multipart upload of %s: %w", w.s.url(w.key), w.s.explain(ctx, err))
	}
	w.upload = ""
	return nil
}

// updateManifest adds f to the day's manifest with a conditional write
// (If-Match on the ETag read, If-None-Match for a new one), so that sinks of
// other formats writing the same day under the same prefix do not lose each
// other's entries. For a Compact partition f replaces every entry, and the
// names of the files the manifest listed before (f's aside) are returned.
func (s *Sink) updateManifest(ctx context.Context, p sinks.Partition, f sinks.ManifestFile) (dropped []string, err error) {
	key := s.prefix + p.Dir() + "/" + sinks.ManifestName
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("s3: update manifest %s: %w", s.url(key), err)
	}
	conditional := true
	for try := range manifestTries {
		if try > 0 {
			// Back off a random while, so that racing writers take turns.
			select {
			case <-ctx.Done():
				return fail(ctx.Err())
			case <-time.After(rand.N(10 * time.Millisecond << try)):
			}
		}
		old, etag, err := s.getManifest(ctx, key)
		if err != nil {
			return fail(err)
		}
		body, err := sinks.UpdateManifest(old, p, f)
		if err != nil {
			return fail(err)
		}
		in := &s3.PutObjectInput{
			Bucket:        aws.String(s.cfg.Bucket),
			Key:           aws.String(key),
			Body:          bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))),
			ContentType:   aws.String("application/json"),
			Metadata:      map[string]string{"schema-version": transform.SchemaVersion, "run-id": f.RunID},
		}
		s.setEncryption(in)
		if conditional {
			if etag == "" {
				in.IfNoneMatch = aws.String("*")
			} else {
				in.IfMatch = aws.String(etag)
			}
		}
		_, err = s.client.PutObject(ctx, in)
		switch {
		case err == nil:
			if !p.Compact || len(old) == 0 {
				return nil, nil
			}
			var m sinks.Manifest
			if err := json.Unmarshal(old, &m); err != nil {
				return fail(err)
			}
			for _, e := range m.Files {
				if e.Name != f.Name {
					dropped = append(dropped, e.Name)
				}
			}
			return dropped, nil
		case isStatus(err, 412) || isStatus(err, 409):
			// Another writer got in between (or our own write whose answer
			// was lost and retried): read again and reapply the entry.
			continue
		case isStatus(err, 501) && conditional:
			// A server without conditional writes: fall back to a plain put.
			conditional = false
			continue
		}
		return fail(s.explain(ctx, err))
	}
	return fail(fmt.Errorf("changed by another writer %d times in a row", manifestTries))
}

// getManifest reads the manifest at key; absent gives nil and no error.
func (s *Sink) getManifest(ctx context.Context, key string) ([]byte, string, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	var noKey *types.NoSuchKey
	if errors.As(err, &noKey) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", s.explain(ctx, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("read: %w", err)
	}
	if len(b) > maxManifestSize {
		return nil, "", fmt.Errorf("%s is larger than %d bytes: not a manifest", path.Base(key), maxManifestSize)
	}
	return b, aws.ToString(out.ETag), nil
}

// deleteObjects removes the named objects of p's day, in one request per
// thousand. A name already gone is no error.
func (s *Sink) deleteObjects(ctx context.Context, p sinks.Partition, names []string) error {
	for len(names) > 0 {
		n := min(len(names), 1000)
		var ids []types.ObjectIdentifier
		for _, name := range names[:n] {
			ids = append(ids, types.ObjectIdentifier{Key: aws.String(s.prefix + p.Dir() + "/" + name)})
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.cfg.Bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("s3: delete the replaced objects of %s: %w", p.Dir(), s.explain(ctx, err))
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("s3: delete %s: %s %s", s.url(aws.ToString(e.Key)), aws.ToString(e.Code), aws.ToString(e.Message))
		}
		names = names[n:]
	}
	return nil
}
