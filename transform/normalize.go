package transform

import (
	"math/bits"
	"strconv"

	"github.com/valyala/fastjson"
)

// ParseError reports an event that cannot be normalized at all: not a JSON
// object, no usable id, no readable created_at. The run loop sends the raw
// line to the dead-letter file; every other oddity is kept in the record.
type ParseError struct {
	Reason string // what is wrong, e.g. `created_at "yesterday": not an ISO-8601 date-time`
}

// Error implements error.
func (e *ParseError) Error() string { return "transform: unparseable event: " + e.Reason }

// Normalizer turns raw API events into records, reusing its parser and
// buffers between calls. It is not safe for concurrent use: give each
// goroutine its own. The zero value is ready to use.
type Normalizer struct {
	p     fastjson.Parser
	text  []byte // every string of the record being built, joined
	items []span // elements of the record's string lists, spans of text
	dets  [NumDetails]span
	// textual has bit i set when Details[i] is a valid string or list whose
	// value is still the span dets[i].
	textual uint64
	num     []byte // scratch for a number literal
}

// Top-level members of an AuditEvent that the record reads.
const (
	fID = iota
	fCreatedAt
	fEventKey
	fActorID
	fActorType
	fEntityID
	fEntityType
	fIPAddress
	fUserAgent
	fDetails
	numFields
)

// Normalize parses one raw API event (a JSON object) into a record of schema
// v1 (SPEC §5), with workspace copied into it. It fails, always with a
// *ParseError, only for invalid JSON, a missing/empty/non-string id or an
// unreadable created_at; unknown keys and fields are kept (category other,
// details_json). The record shares no memory with raw or any Normalizer.
func Normalize(raw []byte, workspace string) (Record, error) {
	var n Normalizer
	return n.Normalize(raw, workspace)
}

// Normalize is the package-level Normalize with n's buffers: after warm-up
// it allocates little more than the record's strings.
func (n *Normalizer) Normalize(raw []byte, workspace string) (Record, error) {
	var rec Record
	err := n.NormalizeInto(raw, workspace, &rec)
	return rec, err
}

// NormalizeInto is Normalize writing into *rec, which it overwrites
// entirely: a Record is over 2 KB, and filling one in place saves copying it.
// After an error *rec holds no usable record.
func (n *Normalizer) NormalizeInto(raw []byte, workspace string, rec *Record) error {
	*rec = Record{}
	detRaw, hasDetails, spaced, serr := scanEvent(raw)
	if serr != nil {
		if serr.msg == msgNotObject {
			return &ParseError{Reason: "not a JSON object"}
		}
		return &ParseError{Reason: "invalid JSON: " + serr.Error()}
	}
	root, err := n.p.ParseBytes(raw)
	if err != nil { // the scanner accepted it, so this is a limit of fastjson
		return &ParseError{Reason: "invalid JSON: " + err.Error()}
	}
	var f [numFields]*fastjson.Value
	// Visit sees unescaped names, in order; the first of duplicates wins, as
	// in fastjson's Get and in scanEvent.
	root.GetObject().Visit(func(k []byte, v *fastjson.Value) {
		i := fieldIndex(k)
		if i >= 0 && f[i] == nil {
			f[i] = v
		}
	})

	n.text = n.text[:0]
	n.items = n.items[:0]
	n.textual = 0
	var top [numFields]span

	switch v := f[fID]; {
	case v == nil:
		return &ParseError{Reason: "id: missing"}
	case v.Type() != fastjson.TypeString && v.Type() != fastjson.TypeNumber:
		return &ParseError{Reason: "id: a " + v.Type().String() + ", want a string"}
	}
	top[fID] = n.appendText(f[fID])
	if top[fID].off == top[fID].end {
		return &ParseError{Reason: "id: empty"}
	}

	switch v := f[fCreatedAt]; {
	case v == nil:
		return &ParseError{Reason: "created_at: missing"}
	case v.Type() != fastjson.TypeString:
		return &ParseError{Reason: "created_at: a " + v.Type().String() + ", want an ISO-8601 string"}
	default:
		ts := v.GetStringBytes()
		ms, ok := parseTimestamp(ts)
		if !ok {
			return &ParseError{Reason: "created_at " + quoteShort(ts) + ": not an ISO-8601 date-time"}
		}
		rec.CreatedAt = ms
	}

	for _, i := range [...]int{fEventKey, fActorID, fActorType, fEntityID, fEntityType} {
		top[i] = n.appendText(f[i])
	}
	for _, i := range [...]int{fIPAddress, fUserAgent} {
		if v := f[i]; v != nil && v.Type() == fastjson.TypeString {
			top[i] = n.appendBytes(v.GetStringBytes())
		} else {
			top[i] = span{-1, -1}
		}
	}

	detJSON := span{-1, -1}
	if hasDetails && raw[detRaw.off] != 'n' { // not null
		start := len(n.text)
		if spaced {
			n.text = appendCompact(n.text, raw[detRaw.off:detRaw.end])
		} else {
			n.text = append(n.text, raw[detRaw.off:detRaw.end]...)
		}
		detJSON = span{start, len(n.text)}
		if d := f[fDetails]; d != nil && d.Type() == fastjson.TypeObject {
			n.details(d.GetObject(), detJSON, rec)
		}
	}

	s := string(n.text) // the one allocation for all strings of the record
	sub := func(sp span) string { return s[sp.off:sp.end] }
	rec.ID = sub(top[fID])
	rec.EventKey = sub(top[fEventKey])
	rec.EventCategory = Category(rec.EventKey)
	rec.ActorID = sub(top[fActorID])
	rec.ActorType = sub(top[fActorType])
	rec.EntityID = sub(top[fEntityID])
	rec.EntityType = sub(top[fEntityType])
	if sp := top[fIPAddress]; sp.off >= 0 {
		rec.IPAddress = NullString{Valid: true, Str: sub(sp)}
	}
	if sp := top[fUserAgent]; sp.off >= 0 {
		rec.UserAgent = NullString{Valid: true, Str: sub(sp)}
	}
	rec.DetailsJSON = "{}"
	if detJSON.off >= 0 {
		rec.DetailsJSON = sub(detJSON)
	}
	rec.Workspace = workspace

	var elems []string // one backing array for every list of the record
	if len(n.items) > 0 {
		elems = make([]string, len(n.items))
		for i, sp := range n.items {
			elems[i] = sub(sp)
		}
	}
	for set := n.textual; set != 0; set &= set - 1 {
		i := bits.TrailingZeros64(set)
		d := &rec.Details[i]
		switch detailFields[i].Kind {
		case KindString:
			d.Str = sub(n.dets[i])
		case KindStringList:
			if a, b := n.dets[i].off, n.dets[i].end; a < b {
				d.List = elems[a:b:b]
			} else {
				d.List = []string{}
			}
		}
	}
	return nil
}

// details sets the typed details columns of rec from the details object d,
// whose compact text is n.text[js.off:js.end]. Int and Bool values go
// straight into rec; strings and lists are only spans in n.dets until the
// record's text becomes one string.
func (n *Normalizer) details(d *fastjson.Object, js span, rec *Record) {
	var seen uint64                 // bit i: field i met already; the first of duplicates wins
	var _ [64 - NumDetails]struct{} // seen must hold NumDetails bits
	d.Visit(func(k []byte, v *fastjson.Value) {
		i := detailIndex(k)
		if i < 0 || seen&(1<<i) != 0 {
			return
		}
		seen |= 1 << i
		n.detail(i, v, js, &rec.Details[i])
	})
}

// detail converts the value v of details field i into dst by the field's
// kind; a value of another type leaves dst null.
func (n *Normalizer) detail(i int, v *fastjson.Value, js span, dst *Value) {
	f := &detailFields[i]
	t := v.Type()
	switch {
	case f.Object:
		if t == fastjson.TypeNull {
			return
		}
		// The member's text is taken from the compact details_json, not
		// from fastjson, which would re-quote strings with Go escapes.
		obj := n.text[js.off:js.end]
		if sp, ok := member(obj, f.JSON); ok {
			n.setText(i, span{js.off + sp.off, js.off + sp.end}, dst)
		}
	case f.ID:
		switch t {
		case fastjson.TypeString:
			n.setText(i, n.appendBytes(v.GetStringBytes()), dst)
		case fastjson.TypeNumber:
			start := len(n.text)
			n.text = v.MarshalTo(n.text) // the literal as sent
			if !isIntLiteral(n.text[start:]) {
				n.text = n.text[:start]
				return
			}
			n.setText(i, span{start, len(n.text)}, dst)
		}
	case f.Kind == KindString:
		if t == fastjson.TypeString {
			n.setText(i, n.appendBytes(v.GetStringBytes()), dst)
		}
	case f.Kind == KindInt64:
		if t == fastjson.TypeNumber {
			n.num = v.MarshalTo(n.num[:0])
			if x, ok := parseInt64(n.num); ok {
				dst.Int, dst.Valid = x, true
			}
		}
	case f.Kind == KindBool:
		if t == fastjson.TypeTrue || t == fastjson.TypeFalse {
			dst.Bool, dst.Valid = t == fastjson.TypeTrue, true
		}
	case f.Kind == KindStringList:
		if t != fastjson.TypeArray {
			return
		}
		arr := v.GetArray()
		for _, e := range arr {
			if e.Type() != fastjson.TypeString {
				return
			}
		}
		first := len(n.items)
		for _, e := range arr {
			n.items = append(n.items, n.appendBytes(e.GetStringBytes()))
		}
		n.setText(i, span{first, len(n.items)}, dst)
	}
}

// setText marks dst valid with a value still to be cut from the record's
// text: sp is a span of n.text, or of n.items for a list.
func (n *Normalizer) setText(i int, sp span, dst *Value) {
	n.dets[i] = sp
	n.textual |= 1 << i
	dst.Valid = true
}

// appendText appends the text of a top-level string member: a string as
// sent, a number as its literal, anything else (or a missing member) as "".
func (n *Normalizer) appendText(v *fastjson.Value) span {
	if v == nil {
		return span{len(n.text), len(n.text)}
	}
	switch v.Type() {
	case fastjson.TypeString:
		return n.appendBytes(v.GetStringBytes())
	case fastjson.TypeNumber:
		start := len(n.text)
		n.text = v.MarshalTo(n.text)
		return span{start, len(n.text)}
	}
	return span{len(n.text), len(n.text)}
}

func (n *Normalizer) appendBytes(b []byte) span {
	start := len(n.text)
	n.text = append(n.text, b...)
	return span{start, len(n.text)}
}

// fieldIndex maps a top-level member name to its f* index, or -1.
func fieldIndex(k []byte) int {
	switch string(k) {
	case "id":
		return fID
	case "created_at":
		return fCreatedAt
	case "event_key":
		return fEventKey
	case "actor_id":
		return fActorID
	case "actor_type":
		return fActorType
	case "entity_id":
		return fEntityID
	case "entity_type":
		return fEntityType
	case "ip_address":
		return fIPAddress
	case "user_agent":
		return fUserAgent
	case "details":
		return fDetails
	}
	return -1
}

// detailIndex maps a details member name to its D* index, or -1. A switch
// (a binary search the compiler builds) beats a scan of detailFields;
// TestDetailIndex holds the two together.
func detailIndex(k []byte) int {
	switch string(k) {
	case "changed_attrs":
		return DChangedAttrs
	case "context":
		return DContext
	case "new_company_role":
		return DNewCompanyRole
	case "previous_company_role":
		return DPreviousCompanyRole
	case "initiator_id":
		return DInitiatorID
	case "name":
		return DName
	case "inviter_id":
		return DInviterID
	case "old_name":
		return DOldName
	case "new_name":
		return DNewName
	case "public_access":
		return DPublicAccess
	case "chat_id":
		return DChatID
	case "tag_name":
		return DTagName
	case "scopes":
		return DScopes
	case "message_id":
		return DMessageID
	case "reason":
		return DReason
	case "dlp_rule_id":
		return DDLPRuleID
	case "dlp_rule_name":
		return DDLPRuleName
	case "user_id":
		return DUserID
	case "action_message":
		return DActionMessage
	case "conditions_matched":
		return DConditionsMatched
	case "search_type":
		return DSearchType
	case "query_present":
		return DQueryPresent
	case "cursor_present":
		return DCursorPresent
	case "limit":
		return DLimit
	case "filters":
		return DFilters
	case "bot_id":
		return DBotID
	case "actor_id":
		return DActorID
	case "added_scopes":
		return DAddedScopes
	case "removed_scopes":
		return DRemovedScopes
	case "changes":
		return DChanges
	case "client_id":
		return DClientID
	case "revoked_tokens_count":
		return DRevokedTokensCount
	case "started_message_id":
		return DStartedMessageID
	case "duration":
		return DDuration
	case "max_members_count":
		return DMaxMembersCount
	case "recording_id":
		return DRecordingID
	case "file_id":
		return DFileID
	case "size":
		return DSize
	}
	return -1
}

// isIntLiteral reports whether a valid JSON number literal is an integer:
// no fraction and no exponent.
func isIntLiteral(b []byte) bool {
	for _, c := range b {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return len(b) > 0
}

// parseInt64 parses a JSON integer literal; false when b has a fraction or an
// exponent or does not fit in int64.
func parseInt64(b []byte) (int64, bool) {
	if !isIntLiteral(b) {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var u uint64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
		if u > 1<<63 {
			return 0, false
		}
	}
	switch {
	case neg:
		return -int64(u), true // -(1<<63) wraps to itself: MinInt64
	case u > 1<<63-1:
		return 0, false
	}
	return int64(u), true
}

// quoteShort quotes b for an error message, cut to 64 bytes.
func quoteShort(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}
