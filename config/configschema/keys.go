package configschema

import (
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/invopop/jsonschema"
	orderedmap "github.com/pb33f/ordered-map/v2"

	"github.com/pachca-export/pachca-export/sinks/shape"
)

// key is what reflection cannot say about one key of pipeline.yaml: its
// description (from the README's tables) and the static rules of Validate.
// For a list of scalars the value rules (enum, pattern, min, max) are its
// entries'.
type key struct {
	desc string
	// enum lists the values config accepts, "" where it means the default.
	enum []string
	// pattern is what the text of a value must match; a YAML number or
	// flag is taken too when the pattern may match its text (an id
	// written unquoted), which the schema cannot see.
	pattern string
	// orEmpty: "" is taken too, for the default (a pattern's only).
	orEmpty bool
	// min and max bound a number (JSON number text; "" for none).
	min, max string
	// required are the keys of an object without which config refuses it.
	required []string
	// minItems and unique are a list's: at least so many entries, none
	// listed twice.
	minItems uint64
	unique   bool
	// allOf are rules of an object across its keys (if one key, then another).
	allOf []*jsonschema.Schema
	// positive: a duration must be above 0.
	positive bool
	// names are the keys a mapping of free keys (security_lake.sources) takes.
	names []string
}

// sinkDescs describe each sinks[].type, in the order of config.SinkTypes.
var sinkDescs = map[string]key{
	"ndjson":  {desc: "NDJSON files, one a UTC day, under dir", required: []string{"dir"}},
	"parquet": {desc: "Parquet files, one a UTC day (or one a class: layout security_lake), under dir", required: []string{"dir"}},
	"s3":      {desc: "Parquet or NDJSON objects, one a UTC day, in an S3 bucket (or an S3-compatible server)", required: []string{"bucket", "region"}},
	"kafka":   {desc: "one Kafka message a record, keyed by the record id", required: []string{"brokers", "topic"}},
	"stdout":  {desc: "NDJSON lines on standard output, for a log shipper; no other key"},
}

// Patterns of values whose form Validate checks.
const (
	s3Bucket     = `^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`
	kafkaTopic   = `^[A-Za-z0-9._-]{1,249}$`
	hostPort     = `^([^:\[\]]+|\[[^\]]+\]):[0-9]{1,5}$`
	awsRegion    = `^[a-z]{2}(-[a-z]+)+-[0-9]+$`
	accountID    = `^[0-9]{12}$`
	sourceName   = `^[A-Za-z0-9_.:-]{1,20}$`
	version      = `^[A-Za-z0-9._-]{1,32}$`
	userID       = `^[0-9]{1,10}$`
	httpURL      = `^[hH][tT][tT][pP][sS]?://`
	octalMode    = `^(0o)?0*[0-7]{1,3}$`
	listenAddr   = `^(|([^:\[\]]*|\[[^\]]*\]):[0-9]{1,5})$`
	nonEmptyText = `.`
)

// keys describes every key of pipeline.yaml by its path: "source.timeout";
// an entry of a list as "alerts.rules[].name"; a sink's keys as
// "sinks.TYPE.KEY", else "sinks.file.KEY" for ndjson and parquet, else
// "sinks.*.KEY" for the keys the file and S3 sinks share (shape.Keys).
// Generate fails on a key missing here, and on an entry that names no key.
func keys() map[string]key {
	return map[string]key{
		"source":                     {desc: "where the events come from: the Pachca API and its token"},
		"source.base_url":            {desc: "API base; plain http:// only to loopback or with allow_insecure: true; not the endpoint's URL (.../audit_events)", pattern: httpURL},
		"source.token":               {desc: "the API token (scope audit_events:read); write ${PACHCA_TOKEN} rather than the token; --token overrides"},
		"source.token_file":          {desc: "a file holding the token, instead of token (one line; keep it 0600)"},
		"source.workspace":           {desc: "a label copied into every record"},
		"source.filters":             {desc: "the API's optional filters"},
		"source.filters.event_keys":  {desc: "event keys to fetch; empty = every event type; several keys = several API streams; matched exactly", pattern: nonEmptyText, unique: true},
		"source.filters.actor_id":    {desc: "passed to the API"},
		"source.filters.actor_type":  {desc: "passed to the API"},
		"source.filters.entity_id":   {desc: "passed to the API"},
		"source.filters.entity_type": {desc: "passed to the API"},
		"source.requests_per_second": {desc: "one limiter shared by every worker; 0.01 (a request every 100 s) to 10000", min: "0.01", max: "10000"},
		"source.concurrency":         {desc: "time windows fetched in parallel (1..64); must reach the rate × the API's answer time", min: "1", max: "64"},
		"source.timeout":             {desc: "per request, body included; above 0", positive: true},
		"source.max_retries":         {desc: "per request, for 5xx, timeouts, resets, malformed bodies", min: "0"},
		"source.allow_insecure":      {desc: "true lets a plain http:// base_url that is not loopback carry the token unencrypted"},
		"period":                     {desc: "what a run without --from/--to exports"},
		"period.default":             {desc: "yesterday: every complete UTC day not yet exported (catch-up)", enum: []string{"yesterday"}},
		"period.from":                {desc: "start of a fixed range instead, with to (a date such as 2026-11-01 or RFC 3339 with Z or an offset)"},
		"period.to":                  {desc: "end of a fixed range, exclusive, with from (same forms)"},
		"period.lag":                 {desc: "never read closer than this to now"},
		"period.retention":           {desc: "the API's retention (90 days); above 0", positive: true},
		"transform":                  {desc: "what is left out of the export"},
		"transform.drop_event_keys":  {desc: "event keys not exported (counted in the summary); not also in source.filters.event_keys"},
		"transform.drop_own_reads":   {desc: "true: the audit_events_accessed events of the exporter's own requests are not exported"},
		"sinks":                      {desc: "where every record goes: at least one sink; every record goes to every sink", minItems: 1},
		"state":                      {desc: "checkpoints and the record of exported days"},
		"state.dir":                  {desc: "the state's directory, created 0700; relative to this file's directory"},
		"follow":                     {desc: "the follow mode (pachca-export follow), a continuous feed"},
		"follow.interval":            {desc: "a cycle every interval; 100ms or more", positive: true},
		"follow.lookback":            {desc: "re-read so far behind the watermark for events the API publishes late; lag + lookback at most retention minus a day"},
		"follow.keep_cycle_files":    {desc: "true: keep the files of a day's cycles when the day is sealed, instead of compacting them into one"},
		"follow.give_up_after":       {desc: "cycles failing for longer than this: exit 1, so the supervisor restarts it; at least interval"},
		"follow.listen":              {desc: "host:port of /metrics, /healthz and /readyz; empty for none (--listen overrides)", pattern: listenAddr},
		"output":                     {desc: "how the file sinks create what they write, and where dead letters go"},
		"output.file_mode":           {desc: "octal mode of data files and manifests; owner read-write required, never writable by others", pattern: octalMode, orEmpty: true},
		"output.dir_mode":            {desc: "octal mode of the directories the file sinks create", pattern: octalMode, orEmpty: true},
		"output.dead_letter_dir":     {desc: "where events that cannot be parsed go (default: in the state's directory); never inside a file sink's dir"},
		"alerts":                     {desc: "rules over the exported events that message administrators in Pachca"},
		"alerts.rules":               {desc: "the alert rules"},
		"alerts.rules[]": {desc: "one alert rule", required: []string{"name", "kind", "event_keys", "recipients"}, allOf: []*jsonschema.Schema{{
			// A threshold rule needs both, threshold at least 1.
			If:   &jsonschema.Schema{Properties: props("kind", &jsonschema.Schema{Const: "threshold"}), Required: []string{"kind"}},
			Then: &jsonschema.Schema{Properties: props("threshold", &jsonschema.Schema{Minimum: "1"}), Required: []string{"threshold", "window"}},
		}}},
		"alerts.rules[].name":               {desc: "names the rule in messages and in the record of sent alerts; unique"},
		"alerts.rules[].kind":               {desc: "threshold: N events of the keys for one actor within window; watch: any event of the keys", enum: []string{"threshold", "watch"}},
		"alerts.rules[].event_keys":         {desc: "the event keys the rule looks at", pattern: nonEmptyText, minItems: 1, unique: true},
		"alerts.rules[].threshold":          {desc: "threshold rules: events of one actor within window (at least 1); not for watch rules", min: "0"},
		"alerts.rules[].window":             {desc: "threshold rules: the span the threshold events fall within (e.g. 10m); not for watch rules"},
		"alerts.rules[].recipients":         {desc: "Pachca user ids the messages go to", pattern: userID, min: "1", minItems: 1, unique: true},
		"alerts.rules[].template":           {desc: "Go text/template over the finding; empty for the kind's default message"},
		"signing":                           {desc: "an Ed25519 key that signs every day manifest"},
		"signing.private_key_file":          {desc: "PEM PKCS #8 Ed25519 key (openssl genpkey -algorithm ed25519); not readable by others"},
		"signing.previous_public_key_files": {desc: "public keys (PEM) of signing keys private_key_file replaced: their signatures are accepted"},

		"sinks.file.dir":            {desc: "the directory of the day folders (dt=YYYY-MM-DD/); relative to this file's directory"},
		"sinks.ndjson.compression":  {desc: "none (default), gzip or zstd", enum: []string{"", "none", "gzip", "zstd"}},
		"sinks.parquet.compression": {desc: "zstd (default), snappy, gzip or none", enum: []string{"", "none", "snappy", "gzip", "zstd"}},

		"sinks.*.schema":                        {desc: "the record shape: pachca.audit.v1 (schema v1) or ocsf (OCSF 1.3.0 events)", enum: []string{"", shape.SchemaV1, shape.SchemaOCSF}},
		"sinks.*.layout":                        {desc: "daily (dt=YYYY-MM-DD/ folders) or security_lake (Amazon Security Lake's custom-source layout; schema ocsf, Parquet)", enum: []string{"", shape.LayoutDaily, shape.LayoutSecurityLake}},
		"sinks.*.security_lake":                 {desc: "the security_lake layout's partitions and sources", required: []string{"account_id"}},
		"sinks.*.security_lake.account_id":      {desc: "the accountId= partition: the 12-digit AWS account (quote it)", pattern: accountID},
		"sinks.*.security_lake.region":          {desc: "the region= partition; default: the S3 sink's region (required for a file sink)", pattern: awsRegion, orEmpty: true},
		"sinks.*.security_lake.sources":         {desc: "OCSF class -> custom source name (1 to 20 of letters, digits, _ - . :); the others keep their defaults", pattern: sourceName, names: slices.Sorted(maps.Keys(shape.DefaultSources()))},
		"sinks.*.security_lake.source_version":  {desc: "the version the sources were registered with: objects go under ext/<source>/<version>/", pattern: version, orEmpty: true},
		"sinks.*.security_lake.manifest_prefix": {desc: "where the marker and the day manifests go, under the sink's prefix or dir; default pachca-export/"},

		"sinks.s3.bucket":            {desc: "the bucket; it must exist", pattern: s3Bucket},
		"sinks.s3.prefix":            {desc: "folder names joined by / that start every key, e.g. audit/pachca/; no leading /"},
		"sinks.s3.format":            {desc: "parquet (default) or ndjson", enum: []string{"parquet", "ndjson"}},
		"sinks.s3.compression":       {desc: "zstd (default, both formats), gzip, none, and for parquet snappy", enum: []string{"", "none", "snappy", "gzip", "zstd"}},
		"sinks.s3.region":            {desc: "the bucket's region; required, also with an endpoint (requests are signed for it)"},
		"sinks.s3.endpoint":          {desc: "http(s)://host[:port] of an S3-compatible server; empty for AWS", pattern: httpURL, orEmpty: true},
		"sinks.s3.force_path_style":  {desc: "true: http://host/bucket/key, as MinIO and most S3-compatible servers need"},
		"sinks.s3.sse":               {desc: "server-side encryption of data objects: AES256 or aws:kms", enum: []string{"", string(types.ServerSideEncryptionAes256), string(types.ServerSideEncryptionAwsKms)}},
		"sinks.s3.kms_key_id":        {desc: "the KMS key of sse: aws:kms; empty for the account's default key"},
		"sinks.s3.storage_class":     {desc: "storage class of data objects (STANDARD_IA, GLACIER_IR, ...); empty for the bucket's default", enum: storageClasses()},
		"sinks.s3.access_key_id":     {desc: "static key, usually ${AWS_ACCESS_KEY_ID}; both empty: the SDK's default chain (environment, shared config, IMDS)"},
		"sinks.s3.secret_access_key": {desc: "static secret key, usually ${AWS_SECRET_ACCESS_KEY}, with access_key_id"},
		"sinks.s3.part_size":         {desc: "multipart part size in bytes, 5 MiB to 5 GiB; files up to it go up in one PutObject", min: "5242880", max: "5368709120"},
		"sinks.s3.max_attempts":      {desc: "the SDK's attempts per request, retries included", min: "1"},
		"sinks.s3.timeout":           {desc: "one HTTP attempt, body upload included"},
		"sinks.s3.temp_dir":          {desc: "where a partition's file waits for its upload; default $TMPDIR, else /tmp; must be writable"},

		"sinks.kafka.brokers":                   {desc: "bootstrap brokers, host:port each (no scheme, no credentials)", pattern: hostPort, minItems: 1},
		"sinks.kafka.topic":                     {desc: "the topic; letters, digits, . _ -, at most 249 characters", pattern: kafkaTopic},
		"sinks.kafka.compression":               {desc: "zstd (default), none, gzip, snappy or lz4", enum: []string{"", "none", "gzip", "snappy", "lz4", "zstd"}},
		"sinks.kafka.required_acks":             {desc: "all (default) or one; none is refused: it could not confirm delivery", enum: []string{"", "all", "one"}},
		"sinks.kafka.balancer":                  {desc: "partition from the key: murmur2 (default, the Java client's), hash, crc32 or round_robin", enum: []string{"", "murmur2", "hash", "crc32", "round_robin"}},
		"sinks.kafka.batch_size":                {desc: "messages of one produce request per partition", min: "0"},
		"sinks.kafka.batch_bytes":               {desc: "bytes of one record batch, uncompressed", min: "0"},
		"sinks.kafka.batch_timeout":             {desc: "how long a partial batch waits for more messages"},
		"sinks.kafka.write_timeout":             {desc: "one produce or metadata request"},
		"sinks.kafka.dial_timeout":              {desc: "one connection attempt, TLS and SASL included"},
		"sinks.kafka.max_attempts":              {desc: "sends of a batch before its error is returned", min: "0"},
		"sinks.kafka.delivery_timeout":          {desc: "the delivery of a write's messages, rounds of max_attempts included; at least write_timeout"},
		"sinks.kafka.allow_auto_topic_creation": {desc: "true lets the first write create a missing topic (the broker must allow it too)"},
		"sinks.kafka.client_id":                 {desc: "sent to the brokers, for their quotas and request logs"},
		"sinks.kafka.tls":                       {desc: "TLS to the brokers"},
		"sinks.kafka.tls.enabled":               {desc: "true: connect with TLS; the other tls keys need it"},
		"sinks.kafka.tls.ca_file":               {desc: "PEM roots; empty for the system's"},
		"sinks.kafka.tls.cert_file":             {desc: "PEM client certificate, with key_file"},
		"sinks.kafka.tls.key_file":              {desc: "PEM key of cert_file"},
		"sinks.kafka.tls.insecure_skip_verify":  {desc: "true: do not verify the brokers' certificates"},
		"sinks.kafka.tls.server_name":           {desc: "the host name the certificates are verified for, instead of the broker's"},
		"sinks.kafka.sasl":                      {desc: "SASL authentication"},
		"sinks.kafka.sasl.mechanism":            {desc: "plain, scram-sha-256 or scram-sha-512; empty for no SASL", enum: []string{"", "plain", "scram-sha-256", "scram-sha-512"}},
		"sinks.kafka.sasl.username":             {desc: "required with a mechanism"},
		"sinks.kafka.sasl.password":             {desc: "required with a mechanism; usually ${VAR}"},
		"sinks.kafka.allow_insecure":            {desc: "true lets sasl plain without tls reach brokers that are not loopback (the password unencrypted)"},
	}
}

// props is an ordered map of one property.
func props(name string, s *jsonschema.Schema) *orderedmap.OrderedMap[string, *jsonschema.Schema] {
	m := orderedmap.New[string, *jsonschema.Schema]()
	m.Set(name, s)
	return m
}

// storageClasses are the values storage_class takes: those of the SDK, as Validate.
func storageClasses() []string {
	out := []string{""}
	for _, c := range types.StorageClass("").Values() {
		out = append(out, string(c))
	}
	return out
}
