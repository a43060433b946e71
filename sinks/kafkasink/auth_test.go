package kafkasink_test

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
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pachca-export/pachca-export/sinks/kafkasink"
)

func TestSASL(t *testing.T) {
	const topic = "pachca.audit"
	c := newCluster(t, kfake.SeedTopics(1, topic), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", "plain-pass"),
		kfake.Superuser("SCRAM-SHA-256", "bob", "scram256-pass"),
		kfake.Superuser("SCRAM-SHA-512", "carol", "scram512-pass"))
	tests := []struct {
		name    string
		sasl    kafkasink.SASLConfig
		wantErr string
	}{
		{"plain", kafkasink.SASLConfig{Mechanism: "plain", Username: "alice", Password: "plain-pass"}, ""},
		{"scram-sha-256", kafkasink.SASLConfig{Mechanism: "scram-sha-256", Username: "bob", Password: "scram256-pass"}, ""},
		{"scram-sha-512", kafkasink.SASLConfig{Mechanism: "scram-sha-512", Username: "carol", Password: "scram512-pass"}, ""},
		{"wrong password", kafkasink.SASLConfig{Mechanism: "scram-sha-256", Username: "bob", Password: "nope"}, "(the broker hung up: check sasl.mechanism, sasl.username and sasl.password)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(c.ListenAddrs(), topic)
			cfg.SASL = tt.sasl
			s := newSink(t, cfg)
			err := s.Check(t.Context())
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), tt.sasl.Password)
				return
			}
			require.NoError(t, err)
			w, err := s.Open(t.Context(), partition())
			require.NoError(t, err)
			require.NoError(t, w.Write(t.Context(), makeRecords(0, 20)))
			_, err = w.Commit(t.Context())
			require.NoError(t, err)
		})
	}
}

// TestSASLBrokerMessageOnOneLine: the message a broker sends with a SASL
// failure reaches check's error and a write's on one line, without what a
// terminal acts on and without kafka-go's method name.
func TestSASLBrokerMessageOnOneLine(t *testing.T) {
	const topic = "pachca.audit"
	c := newCluster(t, kfake.SeedTopics(1, topic), kfake.EnableSASL(), kfake.Superuser("PLAIN", "alice", "plain-pass"))
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := kreq.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
		msg := "bad\npachca-export: check OK\x1b[2J"
		resp.ErrorCode, resp.ErrorMessage = kerr.SaslAuthenticationFailed.Code, &msg
		return resp, nil, true
	})
	cfg := testConfig(c.ListenAddrs(), topic)
	cfg.SASL = kafkasink.SASLConfig{Mechanism: "plain", Username: "alice", Password: "plain-pass"}
	cfg.AllowInsecure = true
	s := newSink(t, cfg)
	const said = `[58] SASL Authentication Failed: SASL Authentication failed: bad pachca-export: check OK\x1b[2J`
	require.EqualError(t, s.Check(t.Context()), "kafka: brokers "+c.ListenAddrs()[0]+" refused the metadata request: "+said)
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	err = w.Write(t.Context(), makeRecords(0, 2))
	require.ErrorIs(t, err, kafka.SASLAuthenticationFailed)
	require.ErrorContains(t, err, "): "+said)
	require.NotContains(t, err.Error(), "\n")
}

func TestTLS(t *testing.T) {
	const topic = "pachca.audit"
	dir := t.TempDir()
	caFile, serverCert := selfSigned(t, dir)
	c := newCluster(t, kfake.SeedTopics(1, topic), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		MinVersion:   tls.VersionTLS12,
	}))

	cfg := testConfig(c.ListenAddrs(), topic)
	cfg.TLS = kafkasink.TLSConfig{Enabled: true, CAFile: caFile}
	s := newSink(t, cfg)
	require.NoError(t, s.Check(t.Context()))
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), makeRecords(0, 20)))
	_, err = w.Commit(t.Context())
	require.NoError(t, err)

	// What to do about a certificate the client refuses is told (was:
	// "unreachable: tls: failed to verify certificate: ..." alone).
	otherCA, _ := selfSigned(t, t.TempDir())
	for _, tc := range []struct {
		name string
		tls  kafkasink.TLSConfig
		want string
	}{
		// The system's roots do not know the test CA.
		{"no ca_file", kafkasink.TLSConfig{Enabled: true},
			"x509: certificate signed by unknown authority (set tls.ca_file to the CA that signed the brokers' certificates, or add that CA to the system's trust store)"},
		{"another CA", kafkasink.TLSConfig{Enabled: true, CAFile: otherCA},
			"(tls.ca_file " + otherCA + " holds no CA that signed the brokers' certificate)"},
		{"another host name", kafkasink.TLSConfig{Enabled: true, CAFile: caFile, ServerName: "kafka.example.com"},
			"x509: certificate is not valid for any names, but wanted to match kafka.example.com (the brokers' certificate is for other host names: check brokers, or set tls.server_name to a name it holds)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused := testConfig(c.ListenAddrs(), topic)
			refused.TLS = tc.tls
			require.ErrorContains(t, newSink(t, refused).Check(t.Context()), tc.want)
		})
	}

	t.Run("TLS 1.1 only", func(t *testing.T) {
		old := newCluster(t, kfake.SeedTopics(1, topic), kfake.TLS(&tls.Config{
			Certificates: []tls.Certificate{serverCert},
			MinVersion:   tls.VersionTLS10,
			MaxVersion:   tls.VersionTLS11,
		}))
		cfg := testConfig(old.ListenAddrs(), topic)
		cfg.TLS = kafkasink.TLSConfig{Enabled: true, CAFile: caFile}
		require.ErrorContains(t, newSink(t, cfg).Check(t.Context()), "(the brokers offer only TLS versions before 1.2, which the client refuses)")
	})
}

// TestTLSToAPlainListener: tls.enabled against a plain-text listener, which
// never answers the client's hello, says so (was: "unreachable: read tcp
// ...: i/o timeout").
func TestTLSToAPlainListener(t *testing.T) {
	const topic = "pachca.audit"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	cfg := testConfig(c.ListenAddrs(), topic)
	cfg.TLS = kafkasink.TLSConfig{Enabled: true}
	s := newSink(t, cfg)
	err := s.Check(t.Context())
	require.ErrorContains(t, err, "i/o timeout (no answer to the TLS handshake: a plain-text listener? check tls.enabled and the port)")
}

// TestHungUpWithoutAuth: a client without TLS or SASL that a TLS or SASL
// listener hangs up on is told what the listener may want (was:
// "unreachable: unexpected EOF" and nothing more).
func TestHungUpWithoutAuth(t *testing.T) {
	const topic = "pachca.audit"
	_, cert := selfSigned(t, t.TempDir())
	tlsListener := newCluster(t, kfake.SeedTopics(1, topic), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}))
	saslListener := newCluster(t, kfake.SeedTopics(1, topic), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", "plain-pass"))
	for name, c := range map[string]*kfake.Cluster{"tls": tlsListener, "sasl": saslListener} {
		t.Run(name, func(t *testing.T) {
			s := newSink(t, testConfig(c.ListenAddrs(), topic))
			require.ErrorContains(t, s.Check(t.Context()), "EOF (the broker hung up: a listener for TLS or SASL? check tls.enabled, sasl.mechanism and the port)")
		})
	}

	caFile, serverCert := selfSigned(t, t.TempDir())
	both := newCluster(t, kfake.SeedTopics(1, topic), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", "plain-pass"), kfake.TLS(&tls.Config{
			Certificates: []tls.Certificate{serverCert},
			MinVersion:   tls.VersionTLS12,
		}))
	cfg := testConfig(both.ListenAddrs(), topic)
	cfg.TLS = kafkasink.TLSConfig{Enabled: true, CAFile: caFile}
	s := newSink(t, cfg)
	require.ErrorContains(t, s.Check(t.Context()), "EOF (the broker hung up: a listener that wants SASL? check sasl.mechanism)")
}

// selfSigned writes a self-signed certificate for 127.0.0.1 to dir and
// returns its path and the server's key pair.
func selfSigned(t *testing.T, dir string) (string, tls.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, certPEM, 0o600))
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return caFile, pair
}
