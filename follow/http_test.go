package follow

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEndpointsCloseIdleConnections: connections a client left open after
// its request are closed once idle, so that a client that never reuses nor
// closes them cannot pile up descriptors and goroutines in a process that
// runs for months (was: held for as long as the client kept them, each
// with a descriptor of the process and a goroutine).
func TestEndpointsCloseIdleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e := serve(ln, 100*time.Millisecond)
	t.Cleanup(func() { e.srv.Close() })
	conns := make([]net.Conn, 20)
	for i := range conns {
		c, err := net.Dial("tcp", e.srv.Addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: pachca-export\r\n\r\n")
		require.NoError(t, err)
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.False(t, resp.Close, "a keep-alive connection")
		conns[i] = c
	}
	for i, c := range conns {
		// Bounded: without an idle timeout the server never closes it.
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := c.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF, "connection %d: the server closes it once idle", i)
	}
}
