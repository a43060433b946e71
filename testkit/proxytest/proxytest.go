// Package proxytest runs HTTP proxies on loopback that refuse the CONNECT,
// for tests of how the clients report a proxy in the way.
package proxytest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Refusing starts a proxy that answers every CONNECT with status, or resets
// the connection when status is 0, and never tunnels. It returns its
// host:port; the test's cleanup stops it.
func Refusing(t testing.TB, status int) string {
	return serve(t, func(conn net.Conn, _ *http.Request) {
		if status == 0 {
			conn.(*net.TCPConn).SetLinger(0)
			return
		}
		fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n", status, http.StatusText(status))
	})
}

// Echoing starts a proxy that answers every request, a CONNECT or one to
// forward, with 403 and a page that quotes the request's headers, as some
// proxies' error pages do. It returns its host:port.
func Echoing(t testing.TB) string { return EchoingStatus(t, http.StatusForbidden) }

// EchoingStatus is Echoing with another status: 502, say, which a client
// takes for a server away and retries, where 403 ends it.
func EchoingStatus(t testing.TB, status int) string {
	return serve(t, func(conn net.Conn, req *http.Request) {
		var b strings.Builder
		b.WriteString("Access denied. Your request:\n")
		// Proxy-Authorization first: error messages quote the
		// start of a page.
		fmt.Fprintf(&b, "Proxy-Authorization: %s\n", req.Header.Get("Proxy-Authorization"))
		req.Header.Del("Proxy-Authorization")
		req.Header.Write(&b)
		fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, http.StatusText(status), b.Len(), b.String())
	})
}

// serve listens on loopback until the test's cleanup, and gives answer
// each connection with the request read from it; the connection is closed
// after. It returns the listener's host:port.
func serve(t testing.TB, answer func(conn net.Conn, req *http.Request)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				answer(conn, req)
			}()
		}
	}()
	return l.Addr().String()
}
