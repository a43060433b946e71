package kafkasink_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/sinks/kafkasink"
)

// decode reads a sink entry strictly, as the configuration loader does.
func decode(t *testing.T, src string) (kafkasink.Config, error) {
	t.Helper()
	var cfg kafkasink.Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	return cfg, err
}

func TestConfigDecodeAndDefaults(t *testing.T) {
	cfg, err := decode(t, `
brokers: [127.0.0.1:9092, "kafka-2.internal:9093"]
topic: pachca.audit
compression: lz4
required_acks: one
balancer: hash
batch_size: 500
batch_bytes: 2097152
batch_timeout: 20ms
write_timeout: 30s
dial_timeout: 3s
max_attempts: 4
delivery_timeout: 90s
allow_auto_topic_creation: true
client_id: pachca-export
tls:
  enabled: true
  ca_file: /etc/ssl/kafka-ca.pem
  cert_file: /etc/ssl/client.pem
  key_file: /etc/ssl/client.key
  server_name: kafka.internal
sasl:
  mechanism: scram-sha-512
  username: exporter
  password: s3cret
`)
	require.NoError(t, err)
	want := kafkasink.Config{
		Brokers:                []string{"127.0.0.1:9092", "kafka-2.internal:9093"},
		Topic:                  "pachca.audit",
		Compression:            "lz4",
		RequiredAcks:           "one",
		Balancer:               "hash",
		BatchSize:              500,
		BatchBytes:             2 << 20,
		BatchTimeout:           20 * time.Millisecond,
		WriteTimeout:           30 * time.Second,
		DialTimeout:            3 * time.Second,
		MaxAttempts:            4,
		DeliveryTimeout:        90 * time.Second,
		AllowAutoTopicCreation: true,
		ClientID:               "pachca-export",
		TLS: kafkasink.TLSConfig{
			Enabled: true, CAFile: "/etc/ssl/kafka-ca.pem", CertFile: "/etc/ssl/client.pem",
			KeyFile: "/etc/ssl/client.key", ServerName: "kafka.internal",
		},
		SASL: kafkasink.SASLConfig{Mechanism: "scram-sha-512", Username: "exporter", Password: "s3cret"},
	}
	require.Equal(t, want, cfg)
	cfg.SetDefaults()
	require.Equal(t, want, cfg, "SetDefaults keeps explicit values")
	require.NoError(t, cfg.Validate())

	minimal, err := decode(t, "brokers: [127.0.0.1:9092]\ntopic: t\n")
	require.NoError(t, err)
	require.NoError(t, minimal.Validate(), "zero values mean defaults")
	minimal.SetDefaults()
	require.Equal(t, kafkasink.Config{
		Brokers:      []string{"127.0.0.1:9092"},
		Topic:        "t",
		Compression:  kafkasink.DefaultCompression,
		RequiredAcks: "all",
		Balancer:     "murmur2",
		BatchSize:    1000,
		BatchBytes:   1 << 20,
		BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: 10 * time.Second,
		DialTimeout:  5 * time.Second,
		MaxAttempts:  10,

		DeliveryTimeout: 2 * time.Minute,
	}, minimal)
	require.NoError(t, minimal.Validate())
}

func TestConfigDecodeErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unknown key", "brokers: [a:1]\ntopic: t\nacks: all\n", "yaml: unmarshal errors:\n  line 3: field acks not found in type kafkasink.Config"},
		{"bare number duration", "batch_timeout: 5\n", "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!int `5` into time.Duration"},
		{"bad duration", "write_timeout: soon\n", "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `soon` into time.Duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(t, tt.src)
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() kafkasink.Config {
		return kafkasink.Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "pachca.audit"}
	}
	tests := []struct {
		name string
		edit func(c *kafkasink.Config)
		want string // "" = valid
	}{
		{"minimal", func(c *kafkasink.Config) {}, ""},
		{"every codec", func(c *kafkasink.Config) { c.Compression = "snappy" }, ""},
		{"plain sasl over tls", func(c *kafkasink.Config) {
			c.TLS.Enabled = true
			c.SASL = kafkasink.SASLConfig{Mechanism: "plain", Username: "u", Password: "p"}
		}, ""},
		{"plain sasl in clear to a loopback broker", func(c *kafkasink.Config) {
			c.SASL = kafkasink.SASLConfig{Mechanism: "plain", Username: "u", Password: "hunter2"}
		}, ""},
		{"plain sasl in clear over the network", func(c *kafkasink.Config) {
			c.Brokers = []string{"127.0.0.1:9092", "kafka-1.internal:9092"}
			c.SASL = kafkasink.SASLConfig{Mechanism: "plain", Username: "u", Password: "hunter2"}
		}, "sasl.mechanism: plain without tls.enabled would send the password unencrypted to kafka-1.internal; enable tls, use scram-sha-256 or scram-sha-512, or set allow_insecure: true"},
		{"plain sasl in clear, allowed", func(c *kafkasink.Config) {
			c.Brokers = []string{"kafka-1.internal:9092"}
			c.SASL = kafkasink.SASLConfig{Mechanism: "plain", Username: "u", Password: "hunter2"}
			c.AllowInsecure = true
		}, ""},
		{"scram in clear over the network", func(c *kafkasink.Config) {
			c.Brokers = []string{"kafka-1.internal:9092"}
			c.SASL = kafkasink.SASLConfig{Mechanism: "scram-sha-512", Username: "u", Password: "hunter2"}
		}, ""},
		{"no brokers", func(c *kafkasink.Config) { c.Brokers = nil }, "brokers: required"},
		{"broker without port", func(c *kafkasink.Config) { c.Brokers = []string{"127.0.0.1:9092", "kafka"} },
			`brokers[1]: "kafka" is not host:port: address kafka: missing port in address`},
		{"broker bad port", func(c *kafkasink.Config) { c.Brokers = []string{"kafka:http"} },
			`brokers[0]: "kafka:http" is not host:port: bad port "http"`},
		{"broker with credentials", func(c *kafkasink.Config) { c.Brokers = []string{"exporter:hunter2@kafka-1.internal:9092"} },
			`brokers[0]: "xxxxx@kafka-1.internal:9092" is not host:port: credentials go in sasl.username and sasl.password`},
		{"broker URL with credentials", func(c *kafkasink.Config) { c.Brokers = []string{"kafka://exporter:hunter2@kafka-1.internal:9092"} },
			`brokers[0]: "xxxxx@kafka-1.internal:9092" is not host:port: credentials go in sasl.username and sasl.password`},
		{"broker URL", func(c *kafkasink.Config) { c.Brokers = []string{"SASL_SSL://kafka-1.internal:9093"} },
			`brokers[0]: "SASL_SSL://kafka-1.internal:9093" is not host:port: no scheme (tls.enabled and sasl.mechanism set the protocol)`},
		{"no topic", func(c *kafkasink.Config) { c.Topic = "" }, "topic: required"},
		{"bad topic", func(c *kafkasink.Config) { c.Topic = "pachca audit" },
			`topic: invalid "pachca audit" (letters, digits, '.', '_', '-'; at most 249 characters; not . or ..)`},
		{"unknown compression", func(c *kafkasink.Config) { c.Compression = "foo" },
			`compression: unknown "foo" (none, gzip, snappy, lz4, zstd)`},
		{"acks none", func(c *kafkasink.Config) { c.RequiredAcks = "none" },
			`required_acks: "none" cannot confirm delivery of audit data (all, one)`},
		{"acks unknown", func(c *kafkasink.Config) { c.RequiredAcks = "-1" }, `required_acks: unknown "-1" (all, one)`},
		{"balancer unknown", func(c *kafkasink.Config) { c.Balancer = "sticky" },
			`balancer: unknown "sticky" (murmur2, hash, crc32, round_robin)`},
		{"negative numbers", func(c *kafkasink.Config) {
			c.BatchSize, c.BatchBytes, c.MaxAttempts = -1, -2, -3
			c.BatchTimeout, c.WriteTimeout, c.DialTimeout = -time.Millisecond, -time.Second, -time.Minute
		}, "batch_size: must be positive, got -1\nbatch_bytes: must be positive, got -2\n" +
			"batch_timeout: must be positive, got -1ms\nwrite_timeout: must be positive, got -1s\n" +
			"dial_timeout: must be positive, got -1m0s\nmax_attempts: must be positive, got -3"},
		{"tls files without enabled", func(c *kafkasink.Config) { c.TLS.CAFile = "ca.pem" },
			"tls.ca_file: set but tls.enabled is false"},
		{"tls cert without key", func(c *kafkasink.Config) { c.TLS = kafkasink.TLSConfig{Enabled: true, CertFile: "c.pem"} },
			"tls.key_file: required with tls.cert_file"},
		{"sasl unknown mechanism", func(c *kafkasink.Config) {
			c.SASL = kafkasink.SASLConfig{Mechanism: "gssapi", Username: "u", Password: "p"}
		}, `sasl.mechanism: unknown "gssapi" (plain, scram-sha-256, scram-sha-512)`},
		{"sasl without credentials", func(c *kafkasink.Config) { c.SASL.Mechanism = "scram-sha-256" },
			"sasl.username: required\nsasl.password: required"},
		{"sasl credentials without mechanism", func(c *kafkasink.Config) { c.SASL.Username, c.SASL.Password = "u", "hunter2" },
			"sasl.mechanism: required with sasl.username and sasl.password (plain, scram-sha-256, scram-sha-512)"},
		{"several errors joined", func(c *kafkasink.Config) { *c = kafkasink.Config{Compression: "brotli"} },
			"brokers: required\ntopic: required\ncompression: unknown \"brotli\" (none, gzip, snappy, lz4, zstd)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.edit(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			require.NotContains(t, err.Error(), "hunter2", "never print the password")
		})
	}
}
