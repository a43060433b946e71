package miniotest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

func TestRestartKeepsData(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("keep")
	c := srv.Client()
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String("keep"), Key: aws.String("a/b.txt"), Body: strings.NewReader("hello"),
	})
	require.NoError(t, err)

	endpoint := srv.Endpoint
	srv.Stop()
	_, err = http.Get(endpoint + "/minio/health/live")
	require.Error(t, err, "a stopped server refuses connections")
	srv.Stop() // safe when stopped

	srv.Restart()
	require.Equal(t, endpoint, srv.Endpoint)
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("keep"), Key: aws.String("a/b.txt")})
	require.NoError(t, err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))
}

func TestBinaryFromEnv(t *testing.T) {
	t.Setenv("PACHCA_MINIO", "/nonexistent/minio")
	_, err := miniotest.Binary()
	require.ErrorContains(t, err, "PACHCA_MINIO=/nonexistent/minio")
}
