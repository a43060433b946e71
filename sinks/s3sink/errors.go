package s3sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pachca-export/pachca-export/internal/netproxy"
	"github.com/pachca-export/pachca-export/internal/printable"
	"github.com/pachca-export/pachca-export/internal/tlsversion"
)

// explained is an SDK error shortened to one readable line. The SDK's own text
// carries request ids and the whole retry history; the original stays
// reachable through Unwrap for errors.Is/As.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// explain turns an error of an S3 call into one line that says what to fix.
// ctx is the context of the call: its end is reported as a cancellation, any
// other deadline as a timeout of the endpoint.
func (s *Sink) explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var msg string
	code, text, status := apiError(err)
	var sendErr *smithyhttp.RequestSendError
	var noCreds *noCredentialsError
	var refused *netproxy.Error
	var cv *tls.CertificateVerificationError
	switch {
	case ctx.Err() == nil && errors.As(err, &noCreds):
		msg = fmt.Sprintf("no credentials for bucket %q: %v (set the sink's access_key_id and secret_access_key, or what the SDK's "+
			"default chain reads: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web identity token, the host's role)", s.cfg.Bucket, noCreds.err)
	case errors.Is(context.Cause(ctx), context.DeadlineExceeded) && status == 0 && code == "":
		// The caller's deadline (check's, a claim's) ended a call the
		// endpoint never answered: a port that accepts connections but does
		// not speak HTTP (Kafka's, say), or a hung server.
		msg = fmt.Sprintf("endpoint %s did not answer as S3 %s: check the sink's endpoint "+
			"(the S3 API's http(s)://host:port, not another service's) and that the server is up", s.endpoint(), waited(ctx))
	case ctx.Err() != nil:
		msg = "canceled: " + context.Cause(ctx).Error()
	case status == 404 && code == "NotFound" && !fromS3(err):
		// The SDK's name for a 404 without a body, which any web server
		// answers: an endpoint of another service, too.
		msg = fmt.Sprintf("bucket %q does not exist, or endpoint %s is not an S3 API (its 404 carried no x-amz-request-id): check the bucket and the sink's endpoint", s.cfg.Bucket, s.endpoint())
	case code == "NoSuchBucket" || (status == 404 && code == "NotFound"):
		msg = fmt.Sprintf("bucket %q does not exist", s.cfg.Bucket)
	case bucketRegion(err) != "" && bucketRegion(err) != s.cfg.Region:
		// S3 names the bucket's region in its answers to requests signed
		// for another (AWS: 301 or 400; MinIO: 400 AuthorizationHeaderMalformed,
		// a HEAD's without a body, so "Bad Request" alone).
		msg = fmt.Sprintf("bucket %q is in region %q, not %q: set the sink's region: %s", s.cfg.Bucket, bucketRegion(err), s.cfg.Region, bucketRegion(err))
	case status == 301 || code == "PermanentRedirect":
		msg = fmt.Sprintf("bucket %q is not in region %q (set region: to the bucket's region)", s.cfg.Bucket, s.cfg.Region)
	case status == 401 || status == 403 || code == "AccessDenied" ||
		code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch":
		msg = fmt.Sprintf("access denied to bucket %q (check credentials): %s", s.cfg.Bucket, short(code, text))
	case errors.As(err, &refused):
		msg = fmt.Sprintf("endpoint %s: %v", s.endpoint(), refused)
	case status == http.StatusProxyAuthRequired && netproxy.Forwarded(s.transport, s.endpoint(), status) != nil:
		// An http:// endpoint through HTTP_PROXY (was: "s3:
		// ProxyAuthenticationRequired: ... (HTTP 407)", the proxy unnamed).
		msg = fmt.Sprintf("endpoint %s: %v", s.endpoint(), netproxy.Forwarded(s.transport, s.endpoint(), status))
	case errors.As(err, &cv):
		msg = s.untrusted(cv)
	case tlsversion.TooOld(err):
		msg = fmt.Sprintf("endpoint %s offers only TLS versions before 1.2, which the client refuses: the server, or a TLS-inspecting proxy on the way, must offer TLS 1.2 or 1.3", s.endpoint())
	case errors.As(err, &sendErr) && isTimeout(sendErr):
		msg = fmt.Sprintf("endpoint %s did not answer within %s%s", s.endpoint(), s.cfg.Timeout, netproxy.Via(s.transport, s.endpoint()))
	case errors.As(err, &sendErr):
		msg = fmt.Sprintf("endpoint %s unreachable%s: %v", s.endpoint(), netproxy.Via(s.transport, s.endpoint()), netCause(sendErr))
		var dnsErr *net.DNSError
		if errors.As(sendErr, &dnsErr) && s.cfg.Endpoint != "" && !s.cfg.ForcePathStyle &&
			strings.HasPrefix(dnsErr.Name, s.cfg.Bucket+".") {
			msg += " (the bucket was addressed as a host name, virtual-hosted style: " +
				"set force_path_style: true for a server that serves buckets as paths, as MinIO does)"
		}
	case code != "":
		msg = fmt.Sprintf("%s (HTTP %d)", short(code, text), status)
	default:
		return err
	}
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		msg += fmt.Sprintf(" (after %d attempts)", maxErr.Attempt)
	}
	return &explained{msg: msg, err: err}
}

// untrusted says what to do about the endpoint's certificate: a name other
// than the endpoint's host is fixed in the endpoint, an unknown CA in the
// bundle the client trusts. The SDK trusts the bundle of AWS_CA_BUNDLE (or
// the profile's ca_bundle) instead of the system's CAs when one is set,
// which the API client does not read: the same CA may be trusted there and
// not here.
func (s *Sink) untrusted(cv *tls.CertificateVerificationError) string {
	var host x509.HostnameError
	if errors.As(cv.Err, &host) {
		return fmt.Sprintf("endpoint %s: its TLS certificate is for another host name (%v): check the host in the sink's endpoint; adding a CA does not help", s.endpoint(), cv.Err)
	}
	where := "the system's trust store, or to a bundle SSL_CERT_FILE names"
	if tc := s.transport.TLSClientConfig; tc != nil && tc.RootCAs != nil {
		where = "the bundle AWS_CA_BUNDLE (or the AWS profile's ca_bundle) names, which S3 requests trust instead of the system's CAs and SSL_CERT_FILE"
	}
	return fmt.Sprintf("endpoint %s: its TLS certificate is not trusted (%v): add the CA that signed it (a TLS-inspecting proxy's, behind one) to %s", s.endpoint(), cv.Err, where)
}

// noCredentialsError is the failure to obtain credentials, which the SDK
// reports as the error of the call, an instance metadata service's answer
// as if S3 had given it.
type noCredentialsError struct{ err error }

func (e *noCredentialsError) Error() string { return e.err.Error() }
func (e *noCredentialsError) Unwrap() error { return e.err }

// markedCredentials marks the errors of a credentials provider as
// *noCredentialsError.
type markedCredentials struct{ p aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.p.Retrieve(ctx)
	if err != nil {
		return c, &noCredentialsError{err}
	}
	return c, nil
}

// budgetKey is the context key of the time a call was given (withBudget).
type budgetKey struct{}

// withBudget records in ctx how long its deadline leaves, so that an error
// of a call the deadline ends can say how long the endpoint was waited for.
// The sink's entry points with a caller's deadline (Check, Claim) call it.
func withBudget(ctx context.Context) context.Context {
	d, ok := ctx.Deadline()
	if !ok {
		return ctx
	}
	left := time.Until(d)
	// The deadline was set a moment before: 999ms left of a second is
	// "within 1s".
	if left >= 900*time.Millisecond {
		left = left.Round(time.Second)
	} else {
		left = left.Round(time.Millisecond)
	}
	return context.WithValue(ctx, budgetKey{}, left)
}

// waited is "within 30s", from withBudget, or "before the deadline".
func waited(ctx context.Context) string {
	if d, ok := ctx.Value(budgetKey{}).(time.Duration); ok && d > 0 {
		return "within " + d.String()
	}
	return "before the deadline"
}

// apiError returns the S3 error code, its message and the HTTP status, when
// the server answered (not the credentials' source: an instance metadata
// service's 403 or 404 is no answer of S3's).
func apiError(err error) (code, text string, status int) {
	var noCreds *noCredentialsError
	if errors.As(err, &noCreds) {
		return "", "", 0
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		// The server's text goes into a message printed to a terminal
		// (was: a line break in it started a line of its own there).
		code, text = printable.Line(ae.ErrorCode()), printable.Line(ae.ErrorMessage())
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status = re.HTTPStatusCode()
	}
	return code, text, status
}

// bucketRegion is the region S3 says the bucket is in (the
// x-amz-bucket-region header of its answer), "" when it says none.
func bucketRegion(err error) string {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return ""
	}
	return re.Response.Header.Get("X-Amz-Bucket-Region")
}

// fromS3 reports whether the answer in err carries a header S3 servers
// (AWS, MinIO, Ceph) put on every response.
func fromS3(err error) bool {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return false
	}
	h := re.Response.Header
	return h.Get("X-Amz-Request-Id") != "" || h.Get("X-Amz-Id-2") != ""
}

func short(code, text string) string {
	if text == "" || text == code {
		return code
	}
	return code + ": " + text
}

// netCause is the innermost network error of a failed send ("dial tcp
// 127.0.0.1:9000: connect: connection refused").
func netCause(e *smithyhttp.RequestSendError) error {
	var op *net.OpError
	if errors.As(e, &op) {
		return op
	}
	return e.Err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isStatus reports whether err is an answer of the server with that status.
func isStatus(err error, status int) bool {
	_, _, s := apiError(err)
	return s == status
}
