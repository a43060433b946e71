package extract

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeDNS answers every query on a loopback UDP port with rcode (3
// NXDOMAIN, 2 SERVFAIL) and no record, so that Go's own resolver reads a
// real DNS answer without any network. It returns a resolver that asks it.
func fakeDNS(t *testing.T, rcode *atomic.Int32) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			end := 12 // the question: labels, then type and class
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if n < 12 || end > n {
				continue
			}
			resp := make([]byte, end)
			copy(resp, q[:end])
			resp[2] = 0x80 | q[2]&0x01 // QR, RD as asked
			resp[3] = 0x80 | byte(rcode.Load())
			binary.BigEndian.PutUint16(resp[4:], 1) // one question
			binary.BigEndian.PutUint16(resp[6:], 0)
			binary.BigEndian.PutUint16(resp[8:], 0)
			binary.BigEndian.PutUint16(resp[10:], 0)
			pc.WriteTo(resp, from)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", addr)
	}}
}

// TestHostNotFoundNotRetried: a host name in source.base_url that does not
// exist (NXDOMAIN: a typo) ends the request at its first try, naming the
// host and the setting (was: retried max_retries times, about 90 s with
// the defaults, as "request failed: dial tcp: lookup ...: no such host").
// A temporary failure of the resolver (SERVFAIL) is retried, and so is a
// name not found once a server has answered: the name resolved before.
func TestHostNotFoundNotRetried(t *testing.T) {
	var rcode atomic.Int32
	resolver := fakeDNS(t, &rcode)
	srv, _ := scripted(t)
	var up atomic.Bool // the name resolves, to srv
	client := func(t *testing.T) (*Client, *[]time.Duration) {
		c, slept := testClient("http://api.pachca-typo.invalid/api/shared/v1")
		tr := c.http.Transport.(*http.Transport)
		tr.Proxy = nil
		tr.DisableKeepAlives = true // every request dials, and resolves
		d := &net.Dialer{Resolver: resolver}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if up.Load() {
				return d.DialContext(ctx, network, srv.Listener.Addr().String())
			}
			return d.DialContext(ctx, network, addr)
		}
		return c, slept
	}

	rcode.Store(3) // NXDOMAIN
	c, slept := client(t)
	_, err := c.Page(t.Context(), Query{}, "")
	require.Regexp(t, `^DNS: the host name api\.pachca-typo\.invalid of source\.base_url does not exist \(no such host(, answered [^)]+)?\): check the host name in source\.base_url$`, err.Error())
	require.Empty(t, *slept, "no retry")
	require.EqualValues(t, 1, c.Stats().Requests.Load())
	require.ErrorContains(t, c.Post(t.Context(), "/messages", []byte(`{}`)), "does not exist")

	// The proxy's name, not the API's: the proxy variable is named.
	c, slept = client(t)
	c.cfg.BaseURL = "https://api.pachca.com/api/shared/v1"
	c.http.Transport.(*http.Transport).Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: "proxy.corp-typo.invalid:3128", User: url.UserPassword("u", "Pr0xyS3cret")})
	_, err = c.Page(t.Context(), Query{}, "")
	require.Regexp(t, `^DNS: the host name proxy\.corp-typo\.invalid does not exist \(no such host(, answered [^)]+)?\): check the proxy's address \(through the proxy http://proxy\.corp-typo\.invalid:3128, HTTPS_PROXY\)$`, err.Error())
	require.Empty(t, *slept, "no retry")

	rcode.Store(2) // SERVFAIL: the resolver's failure, not the name's
	c, slept = client(t)
	_, err = c.Page(t.Context(), Query{}, "")
	require.ErrorContains(t, err, "giving up after 3 retries")
	require.ErrorContains(t, err, "server misbehaving")
	require.Len(t, *slept, 3, "retried")

	// A name that resolved, then is denied: retried.
	rcode.Store(3)
	c, slept = client(t)
	up.Store(true)
	_, err = c.Page(t.Context(), Query{}, "")
	require.NoError(t, err)
	up.Store(false)
	_, err = c.Page(t.Context(), Query{}, "")
	require.ErrorContains(t, err, "giving up after 3 retries")
	require.ErrorContains(t, err, "no such host")
	require.Len(t, *slept, 3, "retried")
}
