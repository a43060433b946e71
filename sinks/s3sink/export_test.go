package s3sink

import "time"

// SetStaleUploadAge sets the age past which Claim aborts a multipart upload:
// MinIO's Initiated time cannot be set back, so tests shorten the age.
func SetStaleUploadAge(s *Sink, d time.Duration) { s.staleUploadAge = d }
