package extract

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/proxytest"
)

// TestProxyRefusalNamed: a proxy's 4xx to the CONNECT (a 407 for a missing
// or wrong password, a 403 of its policy) ends the request at once, naming
// the proxy without its password and what to set (was: retried max_retries
// times, then "request failed: Proxy Authentication Required", which named
// neither the proxy nor HTTPS_PROXY); its 5xx is retried, and a proxy that
// resets the connection is named in the error.
func TestProxyRefusalNamed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		user     *url.Userinfo
		want     string
		retried  bool
		http     bool // the API at an http:// URL: a request for the proxy to forward
		password string
	}{
		{name: "407 without credentials", status: 407, want: "answered 407 Proxy Authentication Required to the CONNECT to api.example.com:443: it wants a user and password: set HTTPS_PROXY to http://USER:PASSWORD@HOST:PORT"},
		{name: "407 refusing them", status: 407, user: url.UserPassword("corpuser", "Pr0xyS3cret"), password: "Pr0xyS3cret",
			want: `answered 407 Proxy Authentication Required to the CONNECT to api.example.com:443: it refused the user "corpuser" and the password in HTTPS_PROXY`},
		{name: "403 of its policy", status: 403, want: "answered 403 Forbidden to the CONNECT to api.example.com:443: it does not let this machine through to api.example.com; ask its administrators to allow the host, or list the host in NO_PROXY"},
		{name: "502", status: 502, retried: true, want: "answered 502 Bad Gateway to the CONNECT to api.example.com:443: it could not reach api.example.com"},
		{name: "reset", status: 0, retried: true, user: url.UserPassword("corpuser", "Pr0xyS3cret"), password: "Pr0xyS3cret", want: "request failed (through the proxy http://"},
		// Only a proxy answers 407 (was: "the API refused the request (407").
		{name: "407 to a request for http", status: 407, http: true, user: url.UserPassword("corpuser", "Pr0xyS3cret"), password: "Pr0xyS3cret",
			want: `(HTTP_PROXY) answered 407 Proxy Authentication Required to the request for api.example.com: it refused the user "corpuser" and the password in HTTP_PROXY`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := &url.URL{Scheme: "http", Host: proxytest.Refusing(t, tc.status), User: tc.user}
			base := "https://api.example.com/api/shared/v1"
			if tc.http {
				base = "http://api.example.com/api/shared/v1"
			}
			c, slept := testClient(base)
			c.http.Transport.(*http.Transport).Proxy = http.ProxyURL(proxy)
			_, err := c.Page(t.Context(), Query{}, "")
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, "http://"+proxy.Host)
			if tc.password != "" {
				require.NotContains(t, err.Error(), tc.password)
			}
			if tc.retried {
				require.Len(t, *slept, 3)
				return
			}
			require.NotContains(t, err.Error(), "giving up")
			require.Empty(t, *slept, "no retry")
		})
	}
}

// TestTLSFailureTold: a certificate for another host name is not called
// untrusted (adding a CA would not help), and a server of TLS 1.0 or 1.1
// only is named as such and not retried (was: "not trusted ... add its
// CA", and "remote error: tls: protocol version not supported" retried
// max_retries times).
func TestTLSFailureTold(t *testing.T) {
	serve := func(t *testing.T, maxVersion uint16) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(okBody)) }))
		srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	for _, tc := range []struct {
		name       string
		maxVersion uint16
		host       string
		want       string
	}{
		// httptest's certificate names 127.0.0.1, example.com and *.example.com.
		{"another host name", 0, "localhost", "TLS: the certificate of the server at source.base_url is for another host name (x509: certificate is valid for example.com, *.example.com, not localhost): check the host name in source.base_url"},
		{"TLS 1.1 only", tls.VersionTLS11, "127.0.0.1", "TLS: the server at source.base_url offers only TLS versions before 1.2, which the client refuses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.maxVersion)
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
			c, slept := testClient("https://" + net.JoinHostPort(tc.host, port))
			roots := x509.NewCertPool()
			roots.AddCert(srv.Certificate())
			c.http.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots}
			_, err := c.Page(t.Context(), Query{}, "")
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "giving up")
			require.Empty(t, *slept, "no retry")
		})
	}
}
