package loopback_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/loopback"
)

func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.8.9.1": true, "::1": true,
		"10.0.0.1": false, "kafka.internal": false, "": false, "localhost.example.com": false,
	} {
		require.Equal(t, want, loopback.Host(host), host)
	}
}
