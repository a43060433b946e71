package s3sink

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
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
	switch {
	case ctx.Err() != nil:
		msg = "canceled: " + context.Cause(ctx).Error()
	case code == "NoSuchBucket" || (status == 404 && code == "NotFound"):
		msg = fmt.Sprintf("bucket %q does not exist", s.cfg.Bucket)
	case status == 301 || code == "PermanentRedirect":
		msg = fmt.Sprintf("bucket %q is not in region %q (set region: to the bucket's region)", s.cfg.Bucket, s.cfg.Region)
	case status == 401 || status == 403 || code == "AccessDenied" ||
		code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch":
		msg = fmt.Sprintf("access denied to bucket %q (check credentials): %s", s.cfg.Bucket, short(code, text))
	case errors.As(err, &sendErr) && isTimeout(sendErr):
		msg = fmt.Sprintf("endpoint %s did not answer within %s", s.endpoint(), s.cfg.Timeout)
	case errors.As(err, &sendErr):
		msg = fmt.Sprintf("endpoint %s unreachable: %v", s.endpoint(), netCause(sendErr))
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

// apiError returns the S3 error code, its message and the HTTP status, when
// the server answered.
func apiError(err error) (code, text string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, text = ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status = re.HTTPStatusCode()
	}
	return code, text, status
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
