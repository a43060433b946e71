package timestamp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzParseTimestamp holds Parse to time.Parse wherever both read
// the text. Each also takes forms the other rejects: time.Parse one-digit
// hours and zone minutes of 60, Parse ISO-8601 forms (see
// TestNormalizeCreatedAt).
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"2025-05-15T14:30:00.000Z", "2025-05-15T17:30:00.123456+03:00", "1969-12-31T23:59:59.9995Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59", "2024-02-29T00:00:00,5+00:00",
		"2025-05-15t14:30:00z", "2025-05-15T14:30:00+0300",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := Parse([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil {
			return
		}
		require.Equal(t, want.UnixMilli(), got, "%q", s)
	})
}
