package kafkasink

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/internal/loopback"
)

// Defaults applied by SetDefaults to zero-valued fields.
const (
	DefaultCompression  = "zstd"
	DefaultRequiredAcks = "all"
	DefaultBalancer     = "murmur2"
	DefaultBatchSize    = 1000
	DefaultBatchBytes   = 1 << 20 // the broker's default message.max.bytes is about 1 MiB
	DefaultBatchTimeout = 5 * time.Millisecond
	DefaultWriteTimeout = 10 * time.Second
	DefaultDialTimeout  = 5 * time.Second
	DefaultMaxAttempts  = 10
	// DefaultDeliveryTimeout is the Java producer's delivery.timeout.ms:
	// long enough for a broker to restart.
	DefaultDeliveryTimeout = 2 * time.Minute
)

// Config is the `type: kafka` entry of pipeline.yaml. Durations are YAML
// strings such as "5ms" or "10s" (go.yaml.in/yaml/v3 parses them into
// time.Duration and refuses bare numbers). Decode onto a zero Config, call
// SetDefaults, then Validate.
type Config struct {
	// Brokers are the bootstrap brokers, host:port each.
	Brokers []string `yaml:"brokers"`
	// Topic receives one message per record.
	Topic string `yaml:"topic"`
	// Compression is none, gzip, snappy, lz4 or zstd (default zstd: audit
	// JSON shrinks several times; every maintained client and Kafka >= 2.1
	// read it. Choose gzip or none for older consumers).
	Compression string `yaml:"compression"`
	// RequiredAcks is all (default) or one. none is refused: a
	// fire-and-forget producer could not report audit records as delivered.
	RequiredAcks string `yaml:"required_acks"`
	// Balancer picks the partition from the key (the record id): murmur2
	// (default, the Java client's and librdkafka's murmur2 partitioner),
	// hash (FNV-1a, sarama's default), crc32 (librdkafka's default
	// consistent_random) or round_robin (ignores the key).
	Balancer string `yaml:"balancer"`
	// BatchSize caps the messages of one produce request per partition.
	BatchSize int `yaml:"batch_size"`
	// BatchBytes caps the bytes of one record batch, counted as the brokers
	// count them against max.message.bytes (uncompressed); a single
	// message larger than this is an error.
	BatchBytes int64 `yaml:"batch_bytes"`
	// BatchTimeout is how long a partial batch waits for more messages.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// WriteTimeout bounds one produce or metadata request.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// DialTimeout bounds one connection attempt, TLS and SASL included.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxAttempts is how many times a batch is sent before its error is
	// returned (retriable broker errors and connection failures only).
	MaxAttempts int `yaml:"max_attempts"`
	// DeliveryTimeout bounds the delivery of a write's messages: those
	// refused for a cause that passes (a broker restarting or not
	// reachable, a leader moving, a request timed out) are sent again, in
	// further rounds of max_attempts a second apart, and a write that
	// has not had every acknowledgement within it fails. At least
	// WriteTimeout.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// AllowAutoTopicCreation lets the first write create a missing topic
	// (the broker must allow it too). Default false: a typo fails the run.
	AllowAutoTopicCreation bool `yaml:"allow_auto_topic_creation"`
	// ClientID is sent to the brokers, for their logs and quotas.
	ClientID string `yaml:"client_id"`
	// TLS encrypts the connections.
	TLS TLSConfig `yaml:"tls"`
	// SASL authenticates the connections.
	SASL SASLConfig `yaml:"sasl"`
	// AllowInsecure permits SASL PLAIN without TLS to brokers that are not
	// loopback, which sends the password unencrypted.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// TLSConfig is Config.TLS. Files are read by New, not by Validate.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`   // PEM roots; empty = the system pool
	CertFile           string `yaml:"cert_file"` // PEM client certificate, with key_file
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	ServerName         string `yaml:"server_name"` // overrides the broker host name for verification
}

// SASLConfig is Config.SASL. An empty Mechanism means no SASL.
type SASLConfig struct {
	Mechanism string `yaml:"mechanism"` // plain, scram-sha-256 or scram-sha-512
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

var (
	compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	acks         = []string{"all", "one"}
	balancers    = []string{"murmur2", "hash", "crc32", "round_robin"}
	mechanisms   = []string{"plain", "scram-sha-256", "scram-sha-512"}
)

// SetDefaults fills every zero-valued optional field with its default.
func (c *Config) SetDefaults() {
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.RequiredAcks == "" {
		c.RequiredAcks = DefaultRequiredAcks
	}
	if c.Balancer == "" {
		c.Balancer = DefaultBalancer
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = max(DefaultDeliveryTimeout, c.WriteTimeout)
	}
}

// Validate reports every problem of c, joined, each prefixed with its key
// (`brokers: required`); the caller adds the path of the sink. It does no I/O
// and accepts zero values where SetDefaults would fill them.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if len(c.Brokers) == 0 {
		add("brokers: required")
	}
	for i, b := range c.Brokers {
		err := checkHostPort(b)
		switch {
		case err == nil:
		case strings.Contains(b, "@"):
			// user:password@host:port, as some clients take it: the
			// password is not echoed (nor known yet to the scrubber).
			add("brokers[%d]: %q is not host:port: credentials go in sasl.username and sasl.password", i, "xxxxx"+b[strings.LastIndex(b, "@"):])
		case strings.Contains(b, "://"):
			add("brokers[%d]: %q is not host:port: no scheme (tls.enabled and sasl.mechanism set the protocol)", i, b)
		default:
			add("brokers[%d]: %q is not host:port: %v", i, b, err)
		}
	}
	switch {
	case c.Topic == "":
		add("topic: required")
	case !validTopic(c.Topic):
		add("topic: invalid %q (letters, digits, '.', '_', '-'; at most 249 characters; not . or ..)", c.Topic)
	}
	if c.Compression != "" && !slices.Contains(compressions, c.Compression) {
		add("compression: unknown %q (%s)", c.Compression, strings.Join(compressions, ", "))
	}
	switch {
	case c.RequiredAcks == "none":
		add("required_acks: \"none\" cannot confirm delivery of audit data (%s)", strings.Join(acks, ", "))
	case c.RequiredAcks != "" && !slices.Contains(acks, c.RequiredAcks):
		add("required_acks: unknown %q (%s)", c.RequiredAcks, strings.Join(acks, ", "))
	}
	if c.Balancer != "" && !slices.Contains(balancers, c.Balancer) {
		add("balancer: unknown %q (%s)", c.Balancer, strings.Join(balancers, ", "))
	}
	if c.BatchSize < 0 {
		add("batch_size: must be positive, got %d", c.BatchSize)
	}
	if c.BatchBytes < 0 {
		add("batch_bytes: must be positive, got %d", c.BatchBytes)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"batch_timeout", c.BatchTimeout}, {"write_timeout", c.WriteTimeout}, {"dial_timeout", c.DialTimeout}, {"delivery_timeout", c.DeliveryTimeout}} {
		if d.v < 0 {
			add("%s: must be positive, got %s", d.key, d.v)
		}
	}
	if c.DeliveryTimeout > 0 && c.WriteTimeout > 0 && c.DeliveryTimeout < c.WriteTimeout {
		add("delivery_timeout: must be at least write_timeout (%s), got %s", c.WriteTimeout, c.DeliveryTimeout)
	}
	if c.MaxAttempts < 0 {
		add("max_attempts: must be positive, got %d", c.MaxAttempts)
	}
	errs = append(errs, c.TLS.validate()...)
	errs = append(errs, c.SASL.validate()...)
	if c.SASL.Mechanism == "plain" && !c.TLS.Enabled && !c.AllowInsecure {
		for _, b := range c.Brokers {
			if host, _, err := net.SplitHostPort(b); err == nil && !loopback.Host(host) {
				add("sasl.mechanism: plain without tls.enabled would send the password unencrypted to %s; enable tls, use scram-sha-256 or scram-sha-512, or set allow_insecure: true", host)
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (t TLSConfig) validate() []error {
	var errs []error
	if t.CertFile != "" && t.KeyFile == "" {
		errs = append(errs, errors.New("tls.key_file: required with tls.cert_file"))
	}
	if t.KeyFile != "" && t.CertFile == "" {
		errs = append(errs, errors.New("tls.cert_file: required with tls.key_file"))
	}
	if !t.Enabled {
		for _, f := range []struct {
			key string
			set bool
		}{
			{"ca_file", t.CAFile != ""}, {"cert_file", t.CertFile != ""}, {"key_file", t.KeyFile != ""},
			{"insecure_skip_verify", t.InsecureSkipVerify}, {"server_name", t.ServerName != ""},
		} {
			if f.set {
				errs = append(errs, fmt.Errorf("tls.%s: set but tls.enabled is false", f.key))
			}
		}
	}
	return errs
}

func (s SASLConfig) validate() []error {
	var errs []error
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" {
			errs = append(errs, fmt.Errorf("sasl.mechanism: required with sasl.username and sasl.password (%s)", strings.Join(mechanisms, ", ")))
		}
		return errs
	}
	if !slices.Contains(mechanisms, s.Mechanism) {
		errs = append(errs, fmt.Errorf("sasl.mechanism: unknown %q (%s)", s.Mechanism, strings.Join(mechanisms, ", ")))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("sasl.username: required"))
	}
	if s.Password == "" {
		errs = append(errs, errors.New("sasl.password: required"))
	}
	return errs
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// validTopic follows Kafka's rules (Topic.validate in the broker).
func validTopic(t string) bool {
	if len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}
