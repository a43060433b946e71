package netproxy

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string // want "" for an error
	}{
		{"http", "http://proxy.corp.example:3128", "http://proxy.corp.example:3128"},
		{"user info not shown", "http://corpuser:Pr0xy%25S3cret@proxy.corp.example:3128", "http://proxy.corp.example:3128"},
		{"no scheme", "proxy.corp.example:3128", "http://proxy.corp.example:3128"},
		{"socks5", "socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080"},
		{"unencoded %", "http://corpuser:Pr0xy%zzS3cret@proxy:3128", ""},
		{"unencoded space", "http://corpuser:Pr0xy S3cret@proxy:3128", ""},
		{"unencoded #", "http://corpuser:Pr0xy#S3cret@proxy:3128", ""},
		{"unencoded /", "http://corpuser:Pr0xy/S3cret@proxy:3128", ""},
		{"another scheme", "ftp://proxy:3128", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.value)
			if tc.want == "" {
				require.ErrorContains(t, err, "not a proxy URL as Go reads it")
				require.NotContains(t, err.Error(), "S3cret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestNameHidesAMisreadPassword: net/http reads a value with an unencoded
// space as http://http://USER:PASSWORD@HOST, the password in the path; the
// proxy's name holds only its scheme and host (was: the whole URL but its
// user info, password included).
func TestNameHidesAMisreadPassword(t *testing.T) {
	u, err := url.Parse("http://" + "http://corpuser:Pr0xy S3cret@127.0.0.1:3128")
	require.NoError(t, err)
	require.Equal(t, "http://http:", Name(u))
}
