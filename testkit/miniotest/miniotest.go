// Package miniotest runs a real MinIO server for tests, on loopback ports
// with a data directory under t.TempDir(). The binary is built by
// `make minio`; tests skip without it unless CI=true.
package miniotest

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/pachca-export/pachca-export/testkit/logbuf"
	"github.com/pachca-export/pachca-export/testkit/testbin"
)

// startTimeout bounds the wait for /minio/health/live after a (re)start.
const startTimeout = 60 * time.Second

// Server is one MinIO process. Endpoint, AccessKey, SecretKey and Region are
// what an S3 client needs (path-style addressing). Methods are for the test
// goroutine only.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string

	t       testing.TB
	bin     string
	dir     string
	addr    string
	console string
	cmd     *exec.Cmd
	exited  chan struct{}
	out     *logbuf.Buffer
	client  *s3.Client
}

// Start starts MinIO and stops it at the test's cleanup. Without a binary it
// skips the test (t.Fatalf when CI=true), naming `make minio`.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("miniotest: %v (CI=true: run `make minio` first)", err)
		}
		t.Skipf("miniotest: %v; run `make minio` to build it", err)
	}
	s := &Server{
		AccessKey: "pachca-test",
		SecretKey: "pachca-test-secret",
		Region:    "us-east-1",
		t:         t,
		bin:       bin,
		dir:       t.TempDir(),
		addr:      freeAddr(t),
		console:   freeAddr(t),
		out:       &logbuf.Buffer{},
	}
	s.Endpoint = "http://" + s.addr
	s.client = newClient(s)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("miniotest: MinIO output:\n%s", s.out.String())
		}
	})
	s.start()
	return s
}

// Binary finds the MinIO binary: $PACHCA_MINIO, else bin/minio at the root of
// the module containing the working directory.
func Binary() (string, error) { return testbin.Find("PACHCA_MINIO", "minio") }

// Stop kills the server abruptly (SIGKILL), as a crash or a network cut
// would look to clients. Safe to call when stopped.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a stopped server again on the same address and data
// directory, and waits until it is live.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Client returns an S3 client for the server (one per Server, safe for
// concurrent use), for setting up and inspecting buckets in tests.
func (s *Server) Client() *s3.Client { return s.client }

func newClient(s *Server) *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Restricted returns temporary credentials (STS AssumeRole with the root
// user) that may do only what policy, an IAM policy document, allows: a
// role without some permission, as an operator's may be. They carry a
// session token, so a sink takes them from the environment (the SDK's
// default chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
func (s *Server) Restricted(policy string) aws.Credentials {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := sts.New(sts.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:minio:iam:::role/test"), // MinIO ignores it for a user
		RoleSessionName: aws.String("test"),
		Policy:          aws.String(policy),
		DurationSeconds: aws.Int32(3600),
	}
	out, err := client.AssumeRole(ctx, in)
	// MinIO answers S3 before its IAM subsystem is up: STS says "Server
	// not initialized, please try again" for a moment after the start (a
	// loaded CI machine: one run in several).
	for err != nil && strings.Contains(err.Error(), "Server not initialized") && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		out, err = client.AssumeRole(ctx, in)
	}
	if err != nil {
		s.t.Fatalf("miniotest: assume a role with policy %s: %v", policy, err)
	}
	c := out.Credentials
	return aws.Credentials{
		AccessKeyID:     aws.ToString(c.AccessKeyId),
		SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken:    aws.ToString(c.SessionToken),
	}
}

// CreateBucket creates a bucket, failing the test on error.
func (s *Server) CreateBucket(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		s.t.Fatalf("miniotest: create bucket %q: %v", name, err)
	}
}

// CreateLockedBucket creates a bucket with Object Lock (and so versioning)
// whose objects get a default retention of a day in mode (GOVERNANCE or
// COMPLIANCE), as a bucket of audit evidence has; failing the test on error.
func (s *Server) CreateLockedBucket(name string, mode types.ObjectLockRetentionMode) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		s.t.Fatalf("miniotest: create bucket %q: %v", name, err)
	}
	_, err := s.Client().PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
		Bucket: aws.String(name),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{
			ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule:              &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: mode, Days: aws.Int32(1)}},
		},
	})
	if err != nil {
		s.t.Fatalf("miniotest: lock bucket %q: %v", name, err)
	}
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "server", s.dir, "--address", s.addr, "--console-address", s.console, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+s.Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on",
	)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("miniotest: start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			s.cmd = nil
			s.t.Fatalf("miniotest: MinIO exited at start:\n%s", s.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("miniotest: MinIO not live at %s after %s:\n%s", s.Endpoint, startTimeout, s.out.String())
		}
	}
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: find a free port: %v", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
