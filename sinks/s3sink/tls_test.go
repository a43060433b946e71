package s3sink_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/testkit/proxytest"
)

// TestCheckTLSAndProxyTold: an endpoint whose certificate is not trusted,
// or names another host, one of TLS 1.0 or 1.1 only, and a proxy that refuses the CONNECT, are each
// told with what to do: which bundle to add the CA to (AWS_CA_BUNDLE, when
// set, replaces the system's CAs and SSL_CERT_FILE for S3 only), the host
// to check, the proxy (without its password) and what to set in
// HTTPS_PROXY (was: "unreachable: Head ...: tls: failed to verify
// certificate: ..." and "unreachable: Head ...: Proxy Authentication
// Required").
func TestCheckTLSAndProxyTold(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	old := httptest.NewUnstartedServer(http.NotFoundHandler())
	old.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	old.StartTLS()
	t.Cleanup(old.Close)
	bundle := writeCert(t, srv.Certificate().Raw)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	require.NoError(t, err)
	otherCA := writeCert(t, der)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name, endpoint, caBundle, want string
		proxy                          *url.URL
	}{
		{name: "untrusted", endpoint: srv.URL,
			want: "s3: endpoint " + srv.URL + ": its TLS certificate is not trusted (x509: certificate signed by unknown authority): add the CA that signed it (a TLS-inspecting proxy's, behind one) to the system's trust store, or to a bundle SSL_CERT_FILE names (after 2 attempts)"},
		{name: "untrusted with AWS_CA_BUNDLE", endpoint: srv.URL, caBundle: otherCA,
			want: "to the bundle AWS_CA_BUNDLE (or the AWS profile's ca_bundle) names, which S3 requests trust instead of the system's CAs and SSL_CERT_FILE"},
		// httptest's certificate names 127.0.0.1, example.com and *.example.com.
		{name: "another host name", endpoint: "https://localhost:" + port, caBundle: bundle,
			want: "s3: endpoint https://localhost:" + port + ": its TLS certificate is for another host name (x509: certificate is valid for example.com, *.example.com, not localhost): check the host in the sink's endpoint"},
		{name: "TLS 1.1 only", endpoint: old.URL,
			want: "s3: endpoint " + old.URL + " offers only TLS versions before 1.2, which the client refuses: the server, or a TLS-inspecting proxy on the way, must offer TLS 1.2 or 1.3"},
		{name: "proxy refusing the password", endpoint: "https://s3.example.com", proxy: &url.URL{Scheme: "http", User: url.UserPassword("corpuser", "Pr0xyS3cret")},
			want: `s3: endpoint https://s3.example.com: the proxy http://127.0.0.1:`},
		{name: "proxy refusing the password for http", endpoint: "http://s3.example.com", proxy: &url.URL{Scheme: "http", User: url.UserPassword("corpuser", "Pr0xyS3cret")},
			want: `s3: endpoint http://s3.example.com: the proxy http://127.0.0.1:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_CA_BUNDLE", tc.caBundle)
			s := sinkAt(t, tc.endpoint, 2)
			if tc.proxy != nil {
				tc.proxy.Host = proxytest.Refusing(t, http.StatusProxyAuthRequired)
				s3sink.SetProxy(s, tc.proxy)
			}
			err := s.Check(t.Context())
			require.ErrorContains(t, err, tc.want)
			switch {
			case tc.proxy != nil && strings.HasPrefix(tc.endpoint, "https:"):
				require.ErrorContains(t, err, `(HTTPS_PROXY) answered 407 Proxy Authentication Required to the CONNECT to s3.example.com:443: it refused the user "corpuser" and the password in HTTPS_PROXY`)
			case tc.proxy != nil:
				require.ErrorContains(t, err, `(HTTP_PROXY) answered 407 Proxy Authentication Required to the request for s3.example.com: it refused the user "corpuser" and the password in HTTP_PROXY`)
			}
			require.NotContains(t, err.Error(), "Pr0xyS3cret")
		})
	}
}

// writeCert writes a PEM file of the certificate der and returns its path.
func writeCert(t *testing.T, der []byte) string {
	path := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return path
}
