package s3sink

import (
	"net/http"
	"net/url"
	"time"
)

// SetStaleUploadAge sets the age past which Claim aborts a multipart upload:
// MinIO's Initiated time cannot be set back, so tests shorten the age.
func SetStaleUploadAge(s *Sink, d time.Duration) { s.staleUploadAge = d }

// SetProxy sends the sink's requests through the proxy at u: net/http reads
// HTTPS_PROXY once per process, so a test cannot set it.
func SetProxy(s *Sink, u *url.URL) { s.transport.Proxy = http.ProxyURL(u) }
