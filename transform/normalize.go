package transform

import (
	"bytes"
	"math/bits"
	"strconv"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/internal/timestamp"
)

// ParseError reports an event that cannot be normalized at all: not a JSON
// object, no usable id, no readable created_at. The run loop sends the raw
// line to the dead-letter file; every other oddity is kept in the record.
type ParseError struct {
	Reason string // what is wrong, e.g. `created_at "yesterday": not an ISO-8601 date-time`
}

// Error implements error.
func (e *ParseError) Error() string { return "transform: unparseable event: " + e.Reason }

// Normalizer turns raw API events into records, reusing its scanner and
// buffers between calls. It is not safe for concurrent use: give each
// goroutine its own. The zero value is ready to use.
type Normalizer struct {
	s     scanner
	text  []byte // every string of the record being built, joined
	items []span // elements of the record's string lists, spans of text
	dets  [NumDetails]span
	// textual has bit i set when Details[i] is a valid string or list whose
	// value is still the span dets[i].
	textual uint64
	ts      []byte // scratch for an escaped created_at
	obj     []byte // scratch for a details object with repeated names
	fix     []byte // scratch for a details object with invalid UTF-8 or lone surrogates
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
// details_json). Its strings are valid UTF-8 (see ValidUTF8). The record
// shares no memory with raw or any Normalizer.
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

// JSON value types, named as in the error messages.
const (
	tNull = iota
	tObject
	tArray
	tString
	tNumber
	tTrue
	tFalse
)

var typeNames = [...]string{tNull: "null", tObject: "object", tArray: "array", tString: "string", tNumber: "number", tTrue: "true", tFalse: "false"}

// typeOf is the type of the valid JSON value that starts with c.
func typeOf(c byte) int {
	switch c {
	case '{':
		return tObject
	case '[':
		return tArray
	case '"':
		return tString
	case 't':
		return tTrue
	case 'f':
		return tFalse
	case 'n':
		return tNull
	}
	return tNumber
}

// NormalizeInto is Normalize writing into *rec, which it overwrites
// entirely: a Record is over 2 KB, and filling one in place saves copying it.
// After an error *rec holds no usable record.
func (n *Normalizer) NormalizeInto(raw []byte, workspace string, rec *Record) error {
	*rec = Record{}
	sc := &n.s
	if serr := sc.scan(raw); serr != nil {
		sc.b = nil
		if serr.msg == msgNotObject {
			return &ParseError{Reason: "not a JSON object"}
		}
		return &ParseError{Reason: "invalid JSON: " + serr.Error()}
	}
	sc.b = nil // keep no reference to raw
	has := func(f int) bool { return sc.topSet&(1<<f) != 0 }
	val := func(f int) []byte { return raw[sc.top[f].off:sc.top[f].end] }

	n.text = n.text[:0]
	n.items = n.items[:0]
	n.textual = 0
	var top [numFields]span

	if !has(fID) {
		return &ParseError{Reason: "id: missing"}
	}
	if t := typeOf(raw[sc.top[fID].off]); t != tString && t != tNumber {
		return &ParseError{Reason: "id: a " + typeNames[t] + ", want a string"}
	}
	top[fID] = n.appendText(val(fID))
	if top[fID].off == top[fID].end {
		return &ParseError{Reason: "id: empty"}
	}

	if !has(fCreatedAt) {
		return &ParseError{Reason: "created_at: missing"}
	}
	v := val(fCreatedAt)
	if t := typeOf(v[0]); t != tString {
		return &ParseError{Reason: "created_at: a " + typeNames[t] + ", want an ISO-8601 string"}
	}
	ts := v[1 : len(v)-1]
	if bytes.IndexByte(ts, '\\') >= 0 {
		n.ts = appendUnescaped(n.ts[:0], ts)
		ts = n.ts
	}
	ms, ok := timestamp.Parse(ts)
	if !ok {
		return &ParseError{Reason: "created_at " + quoteShort(ts) + ": not an ISO-8601 date-time"}
	}
	rec.CreatedAt = ms

	for _, i := range [...]int{fEventKey, fActorID, fActorType, fEntityID, fEntityType} {
		if has(i) {
			top[i] = n.appendText(val(i))
		} else {
			top[i] = span{len(n.text), len(n.text)}
		}
	}
	for _, i := range [...]int{fIPAddress, fUserAgent} {
		if has(i) && raw[sc.top[i].off] != 'n' { // not null
			top[i] = n.appendText(val(i))
		} else {
			top[i] = span{-1, -1}
		}
	}

	detJSON := span{-1, -1}
	if has(fDetails) && raw[sc.top[fDetails].off] != 'n' { // not null
		d := val(fDetails)
		start := len(n.text)
		switch {
		case sc.detailsDup:
			n.obj = appendCompact(n.obj[:0], d)
			n.text = appendUniqueMembers(n.text, n.obj)
		case sc.detailsWS > 0:
			n.text = appendCompact(n.text, d)
		default:
			n.text = append(n.text, d...)
		}
		n.fixJSON(start)
		detJSON = span{start, len(n.text)}
		if d[0] == '{' {
			for set := sc.detSet; set != 0; set &= set - 1 {
				i := bits.TrailingZeros64(set)
				n.detail(i, raw[sc.det[i].off:sc.det[i].end], detJSON, &rec.Details[i])
			}
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

// detail converts v, the raw value of details field i, into dst by the
// field's kind; a value of another type leaves dst null. The compact text of
// the details object is n.text[js.off:js.end]. Int and Bool values go
// straight into dst; strings and lists are only spans in n.dets until the
// record's text becomes one string.
func (n *Normalizer) detail(i int, v []byte, js span, dst *Value) {
	f := &detailFields[i]
	t := typeOf(v[0])
	switch {
	case f.Object:
		if t == tNull {
			return
		}
		// The member's text is taken from the compact details_json.
		obj := n.text[js.off:js.end]
		if sp, ok := member(obj, f.JSON); ok {
			n.setText(i, span{js.off + sp.off, js.off + sp.end}, dst)
		}
	case f.ID:
		switch t {
		case tString:
			n.setText(i, n.appendString(v), dst)
		case tNumber:
			if isIntLiteral(v) { // the literal as sent
				n.setText(i, n.appendBytes(v), dst)
			}
		}
	case f.Kind == KindString:
		if t == tString {
			n.setText(i, n.appendString(v), dst)
		}
	case f.Kind == KindInt64:
		if t == tNumber {
			if x, ok := parseInt64(v); ok {
				dst.Int, dst.Valid = x, true
			}
		}
	case f.Kind == KindBool:
		if t == tTrue || t == tFalse {
			dst.Bool, dst.Valid = t == tTrue, true
		}
	case f.Kind == KindStringList:
		if t == tArray {
			n.list(i, v, dst)
		}
	}
}

// list sets dst to the strings of the valid JSON array v, or leaves it null
// when an element is not a string.
func (n *Normalizer) list(i int, v []byte, dst *Value) {
	first, text := len(n.items), len(n.text)
	for j := skipWS(v, 1); v[j] != ']'; {
		if v[j] != '"' {
			n.items, n.text = n.items[:first], n.text[:text]
			return
		}
		k := skipString(v, j)
		n.items = append(n.items, n.appendString(v[j:k]))
		if j = skipWS(v, k); v[j] == ',' {
			j = skipWS(v, j+1)
		}
	}
	n.setText(i, span{first, len(n.items)}, dst)
}

// setText marks dst valid with a value still to be cut from the record's
// text: sp is a span of n.text, or of n.items for a list.
func (n *Normalizer) setText(i int, sp span, dst *Value) {
	n.dets[i] = sp
	n.textual |= 1 << i
	dst.Valid = true
}

// appendText appends the text of a top-level string member from its raw
// value v: a string unescaped, null as "", anything else (a number, true or
// false, an object, an array) as its JSON text, compact, so that nothing the
// API sent is lost.
func (n *Normalizer) appendText(v []byte) span {
	switch typeOf(v[0]) {
	case tString:
		return n.appendString(v)
	case tNull:
		return span{len(n.text), len(n.text)}
	case tObject, tArray:
		start := len(n.text)
		n.text = appendCompact(n.text, v)
		n.fixJSON(start)
		return span{start, len(n.text)}
	}
	return n.appendBytes(v)
}

// fixJSON makes the JSON text n.text[start:] what every column holds:
// invalid bytes (they stand only inside strings) replaced as in every
// other column, and unpaired surrogate escapes written \ufffd, so that it
// stays JSON any reader takes and agrees with the typed columns.
func (n *Normalizer) fixJSON(start int) {
	if js := n.text[start:]; !utf8.Valid(js) {
		n.fix = appendValidUTF8(n.fix[:0], js)
		n.text = append(n.text[:start], n.fix...)
	}
	if fixed, ok := appendPairedEscapes(n.fix[:0], n.text[start:]); ok {
		n.fix = fixed
		n.text = append(n.text[:start], n.fix...)
	}
}

// appendString appends the unescaped contents of the valid JSON string q
// (quotes included).
func (n *Normalizer) appendString(q []byte) span {
	start := len(n.text)
	n.text = appendUnescaped(n.text, q[1:len(q)-1])
	return span{start, len(n.text)}
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
