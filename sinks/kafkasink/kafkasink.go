// Package kafkasink streams schema v1 records to a Kafka topic with
// github.com/segmentio/kafka-go: one message per record, key = record id,
// value = the record's JSON object (ndjson.AppendRecord), timestamp = the
// event's created_at (consumers seek and retain by it), headers event_key,
// schema_version and workspace.
//
// Delivery is at least once. Write returns only after the brokers acknowledged
// every message (acks=all by default); a failed or retried run may send a
// record again, so consumers deduplicate by key. Nothing can be taken back:
// Abort leaves already-acknowledged messages in the topic.
package kafkasink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/pachca-export/pachca-export/internal/printable"
	"github.com/pachca-export/pachca-export/internal/smallfile"
	"github.com/pachca-export/pachca-export/internal/tlsversion"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

// Message header names.
const (
	HeaderEventKey      = "event_key"
	HeaderSchemaVersion = "schema_version"
	HeaderWorkspace     = "workspace"
)

var schemaVersion = []byte(transform.SchemaVersion) // read-only, shared by every message

// Sink produces to one topic through one shared kafka.Writer. Open may be
// called from several goroutines; each Writer it returns is used by one.
type Sink struct {
	cfg       Config
	tls       *tls.Config
	sasl      sasl.Mechanism
	transport *kafka.Transport
	w         *kafka.Writer

	mu     sync.Mutex
	closed bool

	log *slog.Logger // SetLogger; discards by default
}

// SetLogger sets where the sink says that it is waiting for the brokers:
// messages sent again after a refusal that passes (a broker restarting)
// are a wait of up to delivery_timeout that would otherwise be silent.
func (s *Sink) SetLogger(l *slog.Logger) { s.log = l }

// retryNoteEvery spaces the warnings of a delivery that goes on being
// sent again.
const retryNoteEvery = 30 * time.Second

var (
	_ sinks.Sink    = (*Sink)(nil)
	_ sinks.Checker = (*Sink)(nil)
)

// New applies defaults to cfg, validates it, reads the TLS files and builds
// the producer. It does not contact the brokers: Check or the first Write does.
func New(cfg Config) (*Sink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	tc, err := cfg.TLS.load()
	if err != nil {
		return nil, err
	}
	mech, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, tls: tc, sasl: mech, log: slog.New(slog.DiscardHandler)}
	s.transport = s.newTransport()
	s.w = &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  cfg.Topic,
		Balancer:               balancer(cfg.Balancer),
		MaxAttempts:            cfg.MaxAttempts,
		BatchSize:              cfg.BatchSize,
		BatchBytes:             batchLimit(cfg.BatchBytes),
		BatchTimeout:           cfg.BatchTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		WriteTimeout:           cfg.WriteTimeout,
		RequiredAcks:           requiredAcks(cfg.RequiredAcks),
		Async:                  false, // Async loses errors
		Compression:            compression(cfg.Compression),
		Transport:              s.transport,
		AllowAutoTopicCreation: cfg.AllowAutoTopicCreation,
	}
	return s, nil
}

// Streams marks the sink as a stream (sinks.Streamer).
func (s *Sink) Streams() {}

// Name identifies the sink in logs and the summary: "kafka <topic>".
func (s *Sink) Name() string { return "kafka " + s.cfg.Topic }

// Open starts a partition. Kafka has no notion of one, so the partition only
// scopes the counts that Commit reports.
func (s *Sink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("kafka: topic %s: sink is closed", s.cfg.Topic)
	}
	return &writer{s: s}, nil
}

// Close flushes what the producer still holds, waits for in-flight produce
// requests (at most max_attempts times write_timeout, or until ctx ends) and
// closes the connections; a flush that failed, or that ctx ended first, is
// its error (then the connections close once kafka-go gives up retrying).
// It is safe to call twice; Open and Write fail afterwards.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.w.Close() }() // kafka-go's Close takes no context
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("gave up waiting for in-flight messages: %w", context.Cause(ctx))
		// kafka-go goes on retrying them, over connections of its own
		// that would outlive the sink: closed once it is done.
		go func() {
			<-done
			s.transport.CloseIdleConnections()
		}()
	}
	s.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("kafka: topic %s: close: %w", s.cfg.Topic, err)
	}
	return nil
}

// Check asks the brokers for the topic's metadata over fresh connections,
// within ctx and at most DialTimeout+WriteTimeout. It fails when no broker
// answers, or when the topic is missing and allow_auto_topic_creation is off.
func (s *Sink) Check(parent context.Context) error {
	limit := s.cfg.DialTimeout + s.cfg.WriteTimeout
	ctx, cancel := context.WithTimeout(parent, limit)
	defer cancel()
	t := s.newTransport()
	defer t.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(s.cfg.Brokers...), Transport: t}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.cfg.Topic}})
	if err != nil {
		err = brokerText{err}
		var kerr kafka.Error
		if errors.As(err, &kerr) {
			return fmt.Errorf("kafka: brokers %s refused the metadata request: %w", s.brokers(), err)
		}
		msg := err.Error()
		if errors.Is(err, errNotKafka) {
			return fmt.Errorf("kafka: brokers %s: %s: check brokers (the host:port of a Kafka listener, not another service's)", s.brokers(), msg)
		}
		var oe *net.OpError
		if s.tls == nil && errors.As(err, &oe) && oe.Op == "read" && oe.Timeout() {
			// Connected, and the first request (ApiVersions, while
			// connecting) got no answer within dial_timeout: a hung broker.
			return fmt.Errorf("kafka: brokers %s accepted the connection but did not answer as Kafka within %s (dial_timeout): check brokers (the host:port of a Kafka listener, not another service's) and that the brokers are up", s.brokers(), s.cfg.DialTimeout)
		}
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			// Connections were made, or the error would name the dial,
			// and never answered: a hung broker, or a service that
			// waits for more (under TLS, where framedConn does not look).
			return fmt.Errorf("kafka: brokers %s did not answer as Kafka within %s (dial_timeout + write_timeout): check brokers (the host:port of a Kafka listener, not another service's) and that the brokers are up", s.brokers(), limit)
		}
		hint := ""
		var ne net.Error
		var host x509.HostnameError
		var unknown x509.UnknownAuthorityError
		switch {
		case errors.As(err, &host):
			hint = " (the brokers' certificate is for other host names: check brokers, or set tls.server_name to a name it holds)"
		case errors.As(err, &unknown) && s.cfg.TLS.CAFile == "":
			hint = " (set tls.ca_file to the CA that signed the brokers' certificates, or add that CA to the system's trust store)"
		case errors.As(err, &unknown):
			hint = fmt.Sprintf(" (tls.ca_file %s holds no CA that signed the brokers' certificate)", s.cfg.TLS.CAFile)
		case tlsversion.TooOld(err):
			hint = " (the brokers offer only TLS versions before 1.2, which the client refuses)"
		case s.cfg.SASL.Mechanism != "" && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
			hint = " (the broker hung up: check sasl.mechanism, sasl.username and sasl.password)"
		case s.tls == nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
			// A TLS listener hangs up on a Kafka request; so does one that
			// wants SASL first.
			hint = " (the broker hung up: a listener for TLS or SASL? check tls.enabled, sasl.mechanism and the port)"
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			hint = " (the broker hung up: a listener that wants SASL? check sasl.mechanism)"
		case s.tls != nil && errors.As(err, &ne) && ne.Timeout():
			// A plain-text listener waits for a Kafka request and never
			// answers the client's hello.
			hint = " (no answer to the TLS handshake: a plain-text listener? check tls.enabled and the port)"
		}
		return fmt.Errorf("kafka: brokers %s unreachable: %s%s", s.brokers(), msg, hint)
	}
	for _, t := range md.Topics {
		if t.Name != s.cfg.Topic {
			continue
		}
		switch {
		case t.Error == nil:
			return nil
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition) && s.cfg.AllowAutoTopicCreation:
			return nil // created by the first write, if the brokers allow it
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
			return fmt.Errorf("kafka: topic %s does not exist and allow_auto_topic_creation is false", s.cfg.Topic)
		default:
			return fmt.Errorf("kafka: topic %s: %w", s.cfg.Topic, t.Error)
		}
	}
	return fmt.Errorf("kafka: topic %s: missing from the brokers' metadata", s.cfg.Topic)
}

func (s *Sink) brokers() string { return strings.Join(s.cfg.Brokers, ",") }

// brokerText is an error of kafka-go, whose text may hold what a broker
// sent with its error code (a SASL or produce error's message), on one line
// a terminal does not act on, without the library's method name (was: a
// broker's line break started a line of its own on stderr).
type brokerText struct{ err error }

func (e brokerText) Error() string {
	return printable.Line(libraryPrefix.ReplaceAllString(e.err.Error(), ""))
}

func (e brokerText) Unwrap() error { return e.err }

// libraryPrefix is how kafka-go starts some of its errors: the name of its
// own method, not the user's business.
var libraryPrefix = regexp.MustCompile(`^kafka\.\(\*Client\)\.[A-Za-z]+: `)

func (s *Sink) newTransport() *kafka.Transport {
	t := &kafka.Transport{
		DialTimeout:    s.cfg.DialTimeout,
		MetadataTopics: []string{s.cfg.Topic},
		ClientID:       s.cfg.ClientID,
		TLS:            s.tls,
		SASL:           s.sasl,
	}
	if s.tls == nil {
		t.Dial = dialFramed
	}
	return t
}

// writer delivers the records of one partition. Every Write waits for the
// acknowledgements, so Commit has nothing left to flush.
type writer struct {
	s       *Sink
	records int64
	bytes   int64
	err     error // the first delivery error; sticky
	done    bool  // committed or aborted
}

// Write produces one message per record in a single WriteMessages call and
// returns once all were acknowledged. Each call builds fresh buffers: after a
// cancelled context kafka-go may still read them.
func (w *writer) Write(ctx context.Context, recs []transform.Record) error {
	if w.done {
		return fmt.Errorf("kafka: topic %s: write after commit or abort", w.s.cfg.Topic)
	}
	if w.err != nil {
		return w.err
	}
	if len(recs) == 0 {
		return nil
	}
	msgs, n := buildMessages(recs)
	if err := w.s.checkSizes(msgs); err != nil {
		w.err = err
		return w.err
	}
	if err := w.s.produce(ctx, msgs); err != nil {
		w.err = err
		return w.err
	}
	w.records += int64(len(recs))
	w.bytes += n
	return nil
}

// Commit reports what was acknowledged: Records, and Bytes as the sum of the
// message values. It returns the first delivery error of the partition, or
// ctx's error.
func (w *writer) Commit(ctx context.Context) (sinks.Result, error) {
	if w.err != nil {
		return sinks.Result{}, w.err
	}
	if w.done {
		return sinks.Result{}, fmt.Errorf("kafka: topic %s: commit after commit or abort", w.s.cfg.Topic)
	}
	w.done = true
	// Everything was acknowledged by Write; a cancelled run still must not
	// count the partition as delivered.
	if err := ctx.Err(); err != nil {
		return sinks.Result{}, fmt.Errorf("kafka: topic %s: commit: %w", w.s.cfg.Topic, err)
	}
	return sinks.Result{Records: w.records, Bytes: w.bytes}, nil
}

// Abort is a no-op: acknowledged messages cannot be withdrawn from a topic.
// The day stays unexported and is sent again; consumers dedupe by key.
func (w *writer) Abort(context.Context) error {
	w.done = true
	return nil
}

// roundPause is the pause between two rounds of max_attempts.
const roundPause = time.Second

// produce sends msgs and waits for their acknowledgements, for at most
// delivery_timeout. Messages refused for a cause that passes (passing) are
// sent again, alone, in further rounds while that time lasts: a broker
// that restarts (a rolling upgrade, a crash) costs a wait, not the run.
// The bound holds within a round too: kafka-go sends the batches of a
// partition one after another, each up to max_attempts × write_timeout, so
// a broker that stops answering held a write of many batches for as many
// times that (18 minutes for 3,000 events in batches of 100). A message
// acknowledged whose answer was lost is sent twice, which at-least-once
// delivery allows (consumers dedupe by key).
func (s *Sink) produce(ctx context.Context, msgs []kafka.Message) error {
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
	defer cancel()
	pending := msgs
	var last error      // the refusal of the last round that ended
	var noted time.Time // when the wait was last logged
	for {
		err := s.w.WriteMessages(dctx, pending...)
		if err == nil {
			if last != nil {
				s.log.Info("kafka: the brokers acknowledged the messages sent again", "topic", s.cfg.Topic,
					"brokers", s.brokers(), "messages", len(pending), "after", time.Since(start).Round(time.Second).String())
			}
			return nil
		}
		if ctx.Err() != nil {
			return s.deliveryError(err, pending)
		}
		if dctx.Err() != nil {
			// After a cancelled context kafka-go may still send the
			// messages: they are not touched again.
			return s.timedOut(last, len(pending), time.Since(start))
		}
		again, ok := retryable(err, pending)
		if !ok || time.Until(start.Add(s.cfg.DeliveryTimeout)) <= roundPause {
			err = s.deliveryError(err, pending)
			if ok {
				err = fmt.Errorf("%w (sent again for %s, delivery_timeout %s)", err, time.Since(start).Round(time.Second), s.cfg.DeliveryTimeout)
			}
			return err
		}
		last = s.deliveryError(err, pending)
		if time.Since(noted) >= retryNoteEvery {
			noted = time.Now()
			s.log.Warn("kafka: the brokers refused messages for a cause that passes; sending them again until delivery_timeout",
				"topic", s.cfg.Topic, "brokers", s.brokers(), "messages", len(again), "cause", s.cause(last),
				"for", time.Since(start).Round(time.Second).String(), "delivery_timeout", s.cfg.DeliveryTimeout.String())
		}
		t := time.NewTimer(roundPause)
		select {
		case <-dctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return s.deliveryError(err, pending)
			}
			return s.timedOut(last, len(pending), time.Since(start))
		case <-t.C:
		}
		pending = again
	}
}

// timedOut is the error of n messages not acknowledged within
// delivery_timeout; last is the delivery error of the round before, if any.
func (s *Sink) timedOut(last error, n int, took time.Duration) error {
	err := fmt.Errorf("kafka: topic %s (brokers %s): %d messages not acknowledged within delivery_timeout (%s, tried for %s)",
		s.cfg.Topic, s.brokers(), n, s.cfg.DeliveryTimeout, took.Round(time.Second))
	if last == nil {
		return fmt.Errorf("%w: the brokers did not answer", err)
	}
	return fmt.Errorf("%w; the round before: %s%w", err, s.cause(last), unwrapOnly{last})
}

// cause is the text of a delivery error of the sink without the topic and
// brokers it starts with, for a line that names them already.
func (s *Sink) cause(err error) string {
	return strings.TrimPrefix(err.Error(), fmt.Sprintf("kafka: topic %s (brokers %s): ", s.cfg.Topic, s.brokers()))
}

// unwrapOnly adds an error to a chain (errors.Is, errors.As) without
// adding its text.
type unwrapOnly struct{ err error }

func (unwrapOnly) Error() string   { return "" }
func (e unwrapOnly) Unwrap() error { return e.err }

// retryable returns the messages of msgs that err refused, and whether
// every refusal has a cause that passes. kafka-go returns WriteErrors, one
// per message, when the batch reached the partitions, and a single error
// (for all of them) when it did not.
func retryable(err error, msgs []kafka.Message) ([]kafka.Message, bool) {
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		return msgs, passing(err)
	}
	var again []kafka.Message
	for i, we := range werrs {
		if we == nil {
			continue
		}
		if !passing(we) {
			return nil, false
		}
		again = append(again, msgs[i])
	}
	return again, len(again) > 0
}

// passing reports whether err is what a broker restarting, a leader
// moving or a network blip answers, which time mends; not a refusal that
// waiting does not change (a missing topic, a denied ACL, a message too
// large, a name that does not resolve, another service on the port).
func passing(err error) bool {
	if errors.Is(err, kafka.UnknownTopicOrPartition) || errors.Is(err, errNotKafka) {
		return false
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// buildMessages renders recs into one buffer and returns the messages and
// the total size of their values.
func buildMessages(recs []transform.Record) ([]kafka.Message, int64) {
	type span struct{ id, val, key, ws int }
	spans := make([]span, len(recs))
	buf := make([]byte, 0, len(recs)*1024)
	for i := range recs {
		r := &recs[i]
		buf = append(buf, r.ID...)
		spans[i].id = len(buf)
		buf = ndjson.AppendRecord(buf, r)
		spans[i].val = len(buf)
		buf = append(buf, r.EventKey...)
		spans[i].key = len(buf)
		buf = append(buf, r.Workspace...)
		spans[i].ws = len(buf)
	}
	msgs := make([]kafka.Message, len(recs))
	headers := make([]kafka.Header, 3*len(recs))
	var total int64
	start := 0
	for i, sp := range spans {
		h := headers[3*i : 3*i+3 : 3*i+3]
		h[0] = kafka.Header{Key: HeaderEventKey, Value: buf[sp.val:sp.key:sp.key]}
		h[1] = kafka.Header{Key: HeaderSchemaVersion, Value: schemaVersion}
		h[2] = kafka.Header{Key: HeaderWorkspace, Value: buf[sp.key:sp.ws:sp.ws]}
		msgs[i] = kafka.Message{
			Key:     buf[start:sp.id:sp.id],
			Value:   buf[sp.id:sp.val:sp.val],
			Headers: h,
			// The event's time, not the produce time: a topic with
			// message.timestamp.type=LogAppendTime overrides it.
			Time: recs[i].Time(),
		}
		total += int64(sp.val - sp.id)
		start = sp.ws
	}
	return msgs, total
}

// deliveryError condenses kafka-go's per-message errors of msgs into one
// line naming the topic, and keeps them reachable with errors.Is and
// errors.As.
func (s *Sink) deliveryError(err error, msgs []kafka.Message) error {
	// kafka-go's own check of batch_bytes, before anything is sent; its
	// text blames the server.
	var big kafka.MessageTooLargeError
	if errors.As(err, &big) {
		return s.tooLarge(big.Message)
	}
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) {
		return fmt.Errorf("kafka: topic %s (brokers %s): %w%s", s.cfg.Topic, s.brokers(), brokerText{err}, s.hint(err))
	}
	e := &deliveryError{topic: s.cfg.Topic, brokers: s.brokers(), werrs: werrs}
	seen := map[string]bool{}
	largest := -1 // of the messages in a batch the brokers found too large
	for i, we := range werrs {
		if we == nil {
			continue
		}
		e.failed++
		if msg := we.Error(); !seen[msg] && len(e.distinct) < 3 {
			seen[msg] = true
			e.distinct = append(e.distinct, we)
		}
		if errors.Is(we, kafka.MessageSizeTooLarge) && i < len(msgs) && (largest < 0 || messageSize(msgs[i]) > messageSize(msgs[largest])) {
			largest = i
		}
	}
	if largest >= 0 {
		// batch_bytes passed them, so the topic's limit is lower: the
		// brokers refuse the whole batch of a partition, small messages
		// batched with a large one or many small ones past the limit.
		m := msgs[largest]
		e.hint = fmt.Sprintf(" (the brokers refuse a batch larger than the topic's max.message.bytes, which is lower than batch_bytes (%d); the largest message refused is event %s, %d bytes: raise the topic's max.message.bytes to batch_bytes, or lower batch_bytes to it)",
			s.cfg.BatchBytes, m.Key, messageSize(m))
	}
	return e
}

// checkSizes refuses, before anything is sent, a message larger than
// batch_bytes as a broker measures it (messageSize). kafka-go's own check
// counts about 50 bytes less, so that a message it passed was refused by
// brokers of the default message.max.bytes with a hint blaming a topic
// limit lower than batch_bytes, and one it refused was named with a size
// below batch_bytes (`a message of 1048548 bytes, more than batch_bytes
// (1048576)`).
func (s *Sink) checkSizes(msgs []kafka.Message) error {
	for _, m := range msgs {
		if int64(messageSize(m)) > s.cfg.BatchBytes {
			return s.tooLarge(m)
		}
	}
	return nil
}

func (s *Sink) tooLarge(m kafka.Message) error {
	return fmt.Errorf("kafka: topic %s: event %s makes a message of %d bytes, more than batch_bytes (%d): raise batch_bytes, and the topic's max.message.bytes if it is lower",
		s.cfg.Topic, m.Key, messageSize(m), s.cfg.BatchBytes)
}

// batchHeader is the bytes of a record batch (format v2) before its first
// record, baseOffset and length included.
const batchHeader = 61

// batchLimit is the limit kafka-go is given for the messages of one batch,
// which it counts as the old message format does: 26 bytes of framing a
// message where the record format has 6 to 20 (10 to 16 for a message
// near 1 MiB), and no batch header. Below batch_bytes by the header less
// those 20, so that a batch of several messages is at most batch_bytes as
// the brokers count it (was: two events of 524,323 bytes each,
// uncompressed, made a batch 35 bytes over the brokers' default limit,
// refused at every try), while a message alone that checkSizes passes
// passes kafka-go's own check too.
func batchLimit(batchBytes int64) int64 {
	return max(batchBytes-(batchHeader-20), 1)
}

// messageSize is the bytes of a record batch holding m alone, uncompressed:
// what a broker compares with max.message.bytes (compression only makes
// it smaller). Key, value and headers, with the record's varint framing.
func messageSize(m kafka.Message) int {
	body := 1 + 1 + 1 + // attributes, timestamp delta 0, offset delta 0
		varBytes(len(m.Key)) + varBytes(len(m.Value)) + varintLen(int64(len(m.Headers)))
	for _, h := range m.Headers {
		body += varBytes(len(h.Key)) + varBytes(len(h.Value))
	}
	return batchHeader + varintLen(int64(body)) + body
}

// varBytes is the size of n bytes preceded by their length as a varint.
func varBytes(n int) int { return varintLen(int64(n)) + n }

// varintLen is the size of v as a zigzag varint, as the record format
// writes lengths.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func (s *Sink) hint(err error) string {
	switch {
	case !errors.Is(err, kafka.UnknownTopicOrPartition):
		return ""
	case s.cfg.AllowAutoTopicCreation:
		return " (the topic does not exist and the brokers did not create it: create the topic, or set auto.create.topics.enable on the brokers)"
	}
	return " (the topic does not exist and allow_auto_topic_creation is false)"
}

// deliveryError is returned when the brokers refused or never acknowledged
// some messages of a WriteMessages call.
type deliveryError struct {
	topic    string
	brokers  string
	failed   int
	werrs    kafka.WriteErrors
	distinct []error // up to three distinct causes, for the message
	hint     string  // what to do, when the causes tell
}

func (e *deliveryError) Error() string {
	causes := make([]string, len(e.distinct))
	for i, d := range e.distinct {
		causes[i] = brokerText{d}.Error()
	}
	return fmt.Sprintf("kafka: topic %s (brokers %s): %d of %d messages not delivered: %s%s",
		e.topic, e.brokers, e.failed, len(e.werrs), strings.Join(causes, "; "), e.hint)
}

// Unwrap exposes the kafka.WriteErrors and the distinct causes.
func (e *deliveryError) Unwrap() []error {
	return append([]error{e.werrs}, e.distinct...)
}

func (t TLSConfig) load() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // an explicit, documented opt-in
	}
	if t.CAFile != "" {
		pem, err := readPEM(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
	}
	if t.CertFile != "" {
		certPEM, err := readPEM(t.CertFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.cert_file: %w", err)
		}
		keyPEM, err := readPEM(t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.cert_file, tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// maxPEMFile is the largest certificate or key file read: a system's whole
// CA bundle is about 200 KiB.
const maxPEMFile = 8 << 20

// readPEM reads a certificate or key file: at most 8 MiB, and without
// waiting on a named pipe no process writes (internal/smallfile).
func readPEM(path string) ([]byte, error) {
	b, err := smallfile.Read(path, maxPEMFile, nil)
	if errors.Is(err, smallfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s is larger than %d MiB: not a PEM file", path, maxPEMFile>>20)
	}
	return b, err
}

func (s SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	}
	algo := scram.SHA256
	if s.Mechanism == "scram-sha-512" {
		algo = scram.SHA512
	}
	m, err := scram.Mechanism(algo, s.Username, s.Password)
	if err != nil {
		return nil, fmt.Errorf("kafka: sasl: %w", err)
	}
	return m, nil
}

func balancer(name string) kafka.Balancer {
	switch name {
	case "hash":
		return &kafka.Hash{}
	case "crc32":
		return kafka.CRC32Balancer{}
	case "round_robin":
		return &kafka.RoundRobin{}
	default:
		return kafka.Murmur2Balancer{}
	}
}

func requiredAcks(name string) kafka.RequiredAcks {
	if name == "one" {
		return kafka.RequireOne
	}
	return kafka.RequireAll
}

func compression(name string) kafka.Compression {
	switch name {
	case "gzip":
		return kafka.Gzip
	case "snappy":
		return kafka.Snappy
	case "lz4":
		return kafka.Lz4
	case "zstd":
		return kafka.Zstd
	default:
		return 0
	}
}
