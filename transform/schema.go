// Package transform turns one raw audit event of the Pachca API into one flat,
// typed record of the normalized schema v1 (SPEC §5). It is pure: no I/O, no
// logging, no panics on any input.
package transform

// SchemaVersion is written into every record and every file's metadata.
const SchemaVersion = "pachca.audit.v1"

// Kind is the logical type of a column's values.
type Kind uint8

// The kinds of schema v1. Encoders switch on these; a new kind is a schema change.
const (
	KindString     Kind = iota // UTF-8 string
	KindTimestamp              // milliseconds since the Unix epoch, UTC
	KindInt64                  // signed 64-bit integer
	KindBool                   // boolean
	KindStringList             // list<string>; an empty list stays empty, never null
)

// String names the kind as the schema command prints it.
func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindTimestamp:
		return "timestamp(ms, UTC)"
	case KindInt64:
		return "int64"
	case KindBool:
		return "bool"
	case KindStringList:
		return "list<string>"
	}
	return "unknown"
}

// Column describes one column of schema v1.
type Column struct {
	Name     string
	Kind     Kind
	Nullable bool
	// LowCardinality marks columns worth dictionary encoding in Parquet.
	LowCardinality bool
	Doc            string
}

// DetailField is one field of a details variant of the API, flattened into the
// column "details_" + Name. JSON names the field as the API sends it.
type DetailField struct {
	JSON string
	Kind Kind
	// ID marks identifiers: numbers in the API, written as strings so they
	// join with the top-level string ids.
	ID bool
	// Object marks nested objects (filters, changes), written as compact JSON strings.
	Object bool
	Doc    string
}

// Column is the column the field is flattened into.
func (f DetailField) Column() Column {
	return Column{Name: "details_" + f.JSON, Kind: f.Kind, Nullable: true, Doc: f.Doc}
}

// Indexes of Record.Details, in the order of DetailFields.
const (
	DChangedAttrs = iota
	DContext
	DNewCompanyRole
	DPreviousCompanyRole
	DInitiatorID
	DName
	DInviterID
	DOldName
	DNewName
	DPublicAccess
	DChatID
	DTagName
	DScopes
	DMessageID
	DReason
	DDLPRuleID
	DDLPRuleName
	DUserID
	DActionMessage
	DConditionsMatched
	DSearchType
	DQueryPresent
	DCursorPresent
	DLimit
	DFilters
	DBotID
	DActorID
	DAddedScopes
	DRemovedScopes
	DChanges
	DClientID
	DRevokedTokensCount
	DStartedMessageID
	DDuration
	DMaxMembersCount
	DRecordingID
	DFileID
	DSize
	NumDetails
)

var detailFields = [NumDetails]DetailField{
	DChangedAttrs:        {JSON: "changed_attrs", Kind: KindStringList, Doc: "user_updated: changed attributes"},
	DContext:             {JSON: "context", Kind: KindString, Doc: "user_updated: how the change was made (sso_login)"},
	DNewCompanyRole:      {JSON: "new_company_role", Kind: KindString, Doc: "user_role_changed: new role"},
	DPreviousCompanyRole: {JSON: "previous_company_role", Kind: KindString, Doc: "user_role_changed: previous role"},
	DInitiatorID:         {JSON: "initiator_id", Kind: KindString, ID: true, Doc: "initiator user id"},
	DName:                {JSON: "name", Kind: KindString, Doc: "tag_created, tag_deleted: tag name"},
	DInviterID:           {JSON: "inviter_id", Kind: KindString, ID: true, Doc: "user_chat_join: inviter user id"},
	DOldName:             {JSON: "old_name", Kind: KindString, Doc: "chat_renamed: previous name"},
	DNewName:             {JSON: "new_name", Kind: KindString, Doc: "chat_renamed: new name"},
	DPublicAccess:        {JSON: "public_access", Kind: KindBool, Doc: "chat_permission_changed: public access"},
	DChatID:              {JSON: "chat_id", Kind: KindString, ID: true, Doc: "chat id"},
	DTagName:             {JSON: "tag_name", Kind: KindString, Doc: "tag_added_to_chat: tag name"},
	DScopes:              {JSON: "scopes", Kind: KindStringList, Doc: "token or OAuth scopes"},
	DMessageID:           {JSON: "message_id", Kind: KindString, ID: true, Doc: "message id"},
	DReason:              {JSON: "reason", Kind: KindString, Doc: "kms_*: operation reason"},
	DDLPRuleID:           {JSON: "dlp_rule_id", Kind: KindString, ID: true, Doc: "dlp_violation_detected: rule id"},
	DDLPRuleName:         {JSON: "dlp_rule_name", Kind: KindString, Doc: "dlp_violation_detected: rule name"},
	DUserID:              {JSON: "user_id", Kind: KindString, ID: true, Doc: "dlp_violation_detected: user id"},
	DActionMessage:       {JSON: "action_message", Kind: KindString, Doc: "dlp_violation_detected: action text"},
	DConditionsMatched:   {JSON: "conditions_matched", Kind: KindBool, Doc: "dlp_violation_detected: conditions matched"},
	DSearchType:          {JSON: "search_type", Kind: KindString, Doc: "search_*_api: search type"},
	DQueryPresent:        {JSON: "query_present", Kind: KindBool, Doc: "search_*_api: a query was given"},
	DCursorPresent:       {JSON: "cursor_present", Kind: KindBool, Doc: "search_*_api: a cursor was used"},
	DLimit:               {JSON: "limit", Kind: KindInt64, Doc: "search_*_api: number of results"},
	DFilters:             {JSON: "filters", Kind: KindString, Object: true, Doc: "search_*_api: applied filters, compact JSON"},
	DBotID:               {JSON: "bot_id", Kind: KindString, ID: true, Doc: "bot_deleted, bot_token_recreated: bot id"},
	DActorID:             {JSON: "actor_id", Kind: KindString, ID: true, Doc: "bot_deleted, bot_token_recreated: acting user id"},
	DAddedScopes:         {JSON: "added_scopes", Kind: KindStringList, Doc: "bot_scopes_updated: scopes added"},
	DRemovedScopes:       {JSON: "removed_scopes", Kind: KindStringList, Doc: "bot_scopes_updated: scopes removed"},
	DChanges:             {JSON: "changes", Kind: KindString, Object: true, Doc: "bot_*_updated: changed settings, compact JSON"},
	DClientID:            {JSON: "client_id", Kind: KindString, Doc: "OAuth client id"},
	DRevokedTokensCount:  {JSON: "revoked_tokens_count", Kind: KindInt64, Doc: "oauth_authorization_revoked: tokens revoked"},
	DStartedMessageID:    {JSON: "started_message_id", Kind: KindString, ID: true, Doc: "video_call_*: call start message id"},
	DDuration:            {JSON: "duration", Kind: KindInt64, Doc: "video_call_finished/recording_ready: seconds"},
	DMaxMembersCount:     {JSON: "max_members_count", Kind: KindInt64, Doc: "video_call_finished: peak participants"},
	DRecordingID:         {JSON: "recording_id", Kind: KindString, ID: true, Doc: "video_call_recording_ready: recording id"},
	DFileID:              {JSON: "file_id", Kind: KindString, ID: true, Doc: "video_call_recording_ready: file id"},
	DSize:                {JSON: "size", Kind: KindInt64, Doc: "video_call_recording_ready: bytes"},
}

// DetailFields returns the flattened details fields in column order.
func DetailFields() []DetailField {
	out := detailFields
	return out[:]
}

// Columns returns schema v1 in column order; callers may modify the copy.
func Columns() []Column {
	cols := []Column{
		{Name: "id", Kind: KindString, Doc: "event id (UUID)"},
		{Name: "created_at", Kind: KindTimestamp, Doc: "event time, UTC, milliseconds"},
		{Name: "event_key", Kind: KindString, LowCardinality: true, Doc: "event type"},
		{Name: "event_category", Kind: KindString, LowCardinality: true, Doc: "group of event_key; other for unknown keys"},
		{Name: "actor_id", Kind: KindString, Doc: "who acted"},
		{Name: "actor_type", Kind: KindString, LowCardinality: true, Doc: "actor type"},
		{Name: "entity_id", Kind: KindString, Doc: "affected entity"},
		{Name: "entity_type", Kind: KindString, LowCardinality: true, Doc: "affected entity type"},
		{Name: "ip_address", Kind: KindString, Nullable: true, Doc: "client IP; null for server-side events"},
		{Name: "user_agent", Kind: KindString, Nullable: true, Doc: "client user agent; null for server-side events"},
		{Name: "details_json", Kind: KindString, Doc: "the details object, compact JSON, {} when empty; lossless"},
	}
	for _, f := range detailFields {
		cols = append(cols, f.Column())
	}
	return append(cols,
		Column{Name: "workspace", Kind: KindString, LowCardinality: true, Doc: "source.workspace label"},
		Column{Name: "schema_version", Kind: KindString, LowCardinality: true, Doc: SchemaVersion},
	)
}
