package follow

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// TestEndpointsCloseIdleConnections: connections a client left open after
// its request are closed once idle, so that a client that never reuses nor
// closes them cannot pile up descriptors and goroutines in a process that
// runs for months (was: held for as long as the client kept them, each
// with a descriptor of the process and a goroutine).
func TestEndpointsCloseIdleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e := serve(ln, 100*time.Millisecond, slog.New(slog.DiscardHandler), nil)
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

// TestEndpointsLimitConnections: the endpoints hold at most maxConns
// connections; one more waits unaccepted until one of them ends, so that a
// flood of connections cannot take the descriptors the export needs (was:
// every connection accepted, and 400 slow ones under a limit of 200
// descriptors failed every cycle with "too many open files").
func TestEndpointsLimitConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e := serve(ln, time.Minute, slog.New(slog.DiscardHandler), nil)
	t.Cleanup(func() { e.srv.Close() })
	held := make([]net.Conn, maxConns)
	for i := range held {
		c, err := net.Dial("tcp", e.srv.Addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		held[i] = c // sends nothing: a slow client
	}
	extra, err := net.Dial("tcp", e.srv.Addr) // into the kernel's queue
	require.NoError(t, err)
	t.Cleanup(func() { extra.Close() })
	_, err = io.WriteString(extra, "GET /healthz HTTP/1.1\r\nHost: pachca-export\r\n\r\n")
	require.NoError(t, err)
	require.NoError(t, extra.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = extra.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne, "not answered while %d connections are held", maxConns)
	require.True(t, ne.Timeout())

	require.NoError(t, held[0].Close())
	require.NoError(t, extra.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	require.NoError(t, err, "answered once one ended")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()
}

// flakyListener fails its first Accept with a temporary error, as a
// process out of descriptors does.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

type temporaryError struct{}

func (temporaryError) Error() string   { return "accept: too many open files" }
func (temporaryError) Timeout() bool   { return false }
func (temporaryError) Temporary() bool { return true }

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, temporaryError{}
	}
	return l.Listener.Accept()
}

// TestEndpointsLogThroughTheLogger: what net/http says of the endpoints
// (an accept error) is a line of the exporter's log, JSON under
// --log-format json (was: net/http's own plain line on stderr).
func TestEndpointsLogThroughTheLogger(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var buf logbuf.Buffer
	e := serve(&flakyListener{Listener: ln}, time.Minute, slog.New(slog.NewJSONHandler(&buf, nil)), nil)
	t.Cleanup(func() { e.srv.Close() })
	resp, err := http.Get("http://" + e.srv.Addr + "/healthz")
	require.NoError(t, err, "served after the error")
	resp.Body.Close()
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &line), "one JSON line: %q", buf.String())
	require.Equal(t, "WARN", line["level"])
	require.Contains(t, line["msg"], "http: Accept error: accept: too many open files")
}
