package ocsf

import (
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/transform"
)

// Unknown fills an identifying attribute that a class requires but the
// event does not carry (README, "OCSF 1.3 output").
const Unknown = "unknown"

// Product and service names written into every event.
const (
	ProductName = "Pachca"
	VendorName  = "Pachca"
	apiService  = "Pachca API"
)

// Entity types the mapping names itself, for objects derived from details.
const (
	typeChat      = "Chat"
	typeTag       = "GroupTag"
	typeMessage   = "Message"
	typeRecording = "VideoCallRecording"
	typeFile      = "File"
	typeOAuth     = "OAuthClient"
)

// maxString is the OCSF string_t limit (max_len 65535). A longer top-level
// value is cut in its attribute and kept whole in unmapped under its API
// name; a longer details value is cut (details_json keeps it whole).
const maxString = 65535

// Map returns the OCSF event of a record. It never fails: an event key it
// does not know becomes a Base Event (class_uid 0, activity 99 Other with
// the key as activity_name) with the actor, entity, address and user agent
// under unmapped. unmapped.details is always r.DetailsJSON.
func Map(r *transform.Record) Event {
	var x Mapper
	return *x.Map(r)
}

// Mapper maps records as Map does into one event it reuses, with the
// memory of its unmapped fields: an encoder maps every record it writes,
// and a new event each time was some 500 bytes of garbage a record (in
// each OCSF sink). The event is valid until the next call. The zero value
// is ready for use; it is not safe for concurrent use.
type Mapper struct{ m mapper }

// Map returns the OCSF event of r, as Map.
func (x *Mapper) Map(r *transform.Record) *Event {
	x.m = mapper{r: r, ev: Event{Unmapped: x.m.ev.Unmapped[:0]}}
	x.m.fill()
	return &x.m.ev
}

// fill sets m.ev from m.r, which it starts from the zero Event but for
// the memory of its unmapped fields.
func (m *mapper) fill() {
	r := m.r
	spec, known := specOf(r.EventKey)
	cls := classRef(spec.class)
	ev := &m.ev
	m.add("details", r.DetailsJSON, true)

	ev.ClassUID, ev.ClassName = cls.UID, cls.Caption
	ev.CategoryUID, ev.CategoryName = cls.CategoryUID, cls.CategoryName
	ev.ActivityID = spec.activity
	ev.ActivityName = cls.activities[spec.activity]
	if spec.activity == 99 {
		ev.ActivityName = clip(spec.name)
		if ev.ActivityName == "" {
			ev.ActivityID, ev.ActivityName = 0, cls.activities[0]
		}
	}
	ev.TypeUID = int64(cls.UID)*100 + int64(ev.ActivityID)
	ev.TypeName = cls.Caption + ": " + cls.activities[ev.ActivityID]
	ev.SeverityID, ev.Severity = spec.severity, severities[spec.severity]
	ev.StatusID, ev.Status = spec.status, cls.statuses[spec.status]
	ev.Message = spec.message
	ev.Time, ev.TimeDT = r.CreatedAt, DateTime(r.CreatedAt)
	ev.Metadata = Metadata{
		Version:      Version,
		Product:      Product{Name: ProductName, VendorName: VendorName},
		UID:          m.fit("id", r.ID),
		EventCode:    m.fit("event_key", r.EventKey),
		OriginalTime: time.UnixMilli(r.CreatedAt).UTC().Format(timeLayout),
		LogName:      "audit_events",
		LogProvider:  ProductName,
		TenantUID:    m.fit("workspace", r.Workspace),
		Profiles:     cls.Profiles,
	}

	if !known {
		m.keepTopLevel()
		return
	}
	ev.Actor = m.actor(spec.class == ClassAPIActivity)
	if ip := r.IPAddress; ip.Valid {
		if validIP(ip.Str) {
			ev.SrcEndpoint = &NetworkEndpoint{IP: ip.Str}
		} else {
			m.add("ip_address", ip.Str, false)
		}
	}
	if ua := r.UserAgent; ua.Valid {
		// No http_request in the class; or an empty one, which would not
		// tell "" from no user agent (null) as the record does.
		if spec.class == ClassDataSecurityFinding || ua.Str == "" {
			m.add("user_agent", ua.Str, false)
		} else {
			ev.HTTPRequest = &HTTPRequest{UserAgent: m.fit("user_agent", ua.Str)}
		}
	}
	spec.build(m)
}

// mapper builds one event.
type mapper struct {
	r  *transform.Record
	ev Event
}

// add appends a field to unmapped.
func (m *mapper) add(name, value string, isJSON bool) {
	m.ev.Unmapped = append(m.ev.Unmapped, Field{Name: name, Value: value, JSON: isJSON})
}

// keepTopLevel puts the members a Base Event has no attribute for under
// unmapped, by their API names.
func (m *mapper) keepTopLevel() {
	r := m.r
	for _, f := range [...][2]string{
		{"actor_id", r.ActorID}, {"actor_type", r.ActorType}, {"entity_id", r.EntityID}, {"entity_type", r.EntityType},
	} {
		if f[1] != "" {
			m.add(f[0], f[1], false)
		}
	}
	if r.IPAddress.Valid {
		m.add("ip_address", r.IPAddress.Str, false)
	}
	if r.UserAgent.Valid {
		m.add("user_agent", r.UserAgent.Str, false)
	}
}

// fit returns s cut to maxString bytes; a cut value is kept whole in
// unmapped under field, once however often the field is mapped (the actor
// is also the user of a membership event).
func (m *mapper) fit(field, s string) string {
	if len(s) <= maxString {
		return s
	}
	if _, kept := m.ev.Unmapped.Get(field); !kept {
		m.add(field, s, false)
	}
	return clip(s)
}

// clip cuts s to maxString bytes at a character boundary.
func clip(s string) string {
	if len(s) <= maxString {
		return s
	}
	n := maxString
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// validIP reports whether s is an address that ip_t accepts.
func validIP(s string) bool {
	if len(s) > 40 || strings.TrimSpace(s) != s {
		return false
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// actor is the acting user; nil when the event names none, unless the class
// requires an actor.
func (m *mapper) actor(required bool) *Actor {
	if m.r.ActorID == "" && m.r.ActorType == "" && !required {
		return nil
	}
	return &Actor{User: m.actorUser()}
}

func (m *mapper) actorUser() *User {
	u := &User{UID: m.fit("actor_id", m.r.ActorID), Type: m.fit("actor_type", m.r.ActorType)}
	if u.UID == "" {
		u.Name = Unknown
	}
	return u
}

// target is the event's entity: uid and type as sent, name Unknown when
// the event has no entity id.
func (m *mapper) target() (uid, name, typ string) {
	uid, typ = m.fit("entity_id", m.r.EntityID), m.fit("entity_type", m.r.EntityType)
	if uid == "" {
		name = Unknown
	}
	return uid, name, typ
}

func (m *mapper) entityUser() *User {
	uid, name, typ := m.target()
	return &User{UID: uid, Name: name, Type: typ}
}

func (m *mapper) entityIsUser() bool { return strings.EqualFold(m.r.EntityType, "user") }

// str returns a string details field, cut to maxString.
func (m *mapper) str(i int) (string, bool) {
	v := m.r.Details[i]
	if !v.Valid || v.Str == "" {
		return "", false
	}
	return clip(v.Str), true
}

// list returns a list details field with its elements cut to maxString;
// nil when absent or empty.
func (m *mapper) list(i int) []string {
	v := m.r.Details[i]
	if !v.Valid || len(v.List) == 0 {
		return nil
	}
	out := make([]string, len(v.List))
	for j, s := range v.List {
		out[j] = clip(s)
	}
	return out
}

// details is the details object for a json_t attribute, or "" when empty.
func (m *mapper) details() JSON {
	if d := m.r.DetailsJSON; d != "" && d != "{}" {
		return JSON(d)
	}
	return ""
}

func authentication(mfa bool) func(*mapper) {
	return func(m *mapper) {
		m.ev.User = m.entityUser()
		m.ev.Service = &Service{Name: ProductName}
		if mfa {
			t := true
			m.ev.IsMFA = &t
		}
	}
}

func accountChange(m *mapper) { m.ev.User = m.entityUser() }

func roleChanged(m *mapper) {
	m.ev.User = m.entityUser()
	m.ev.Privileges = []string{Unknown}
	if role, ok := m.str(transform.DNewCompanyRole); ok {
		m.ev.Privileges = []string{role}
	}
}

func oauthGranted(m *mapper) {
	m.ev.User = m.entityUser()
	m.ev.Privileges = m.list(transform.DScopes)
	if m.ev.Privileges == nil {
		m.ev.Privileges = []string{Unknown}
	}
	m.ev.Resource = m.oauthClient()
}

// oauthRevoked: the API revokes the client's whole authorization.
func oauthRevoked(m *mapper) {
	m.ev.User = m.entityUser()
	m.ev.Privileges = []string{"all"}
	m.ev.Resource = m.oauthClient()
}

func (m *mapper) oauthClient() *ResourceDetails {
	if id, ok := m.str(transform.DClientID); ok {
		return &ResourceDetails{UID: id, Type: typeOAuth}
	}
	return nil
}

// membership maps a user joining or leaving a tag or chat. The entity is
// either the member (a user) or the group; the other side is the actor
// for a group entity, and unknown for a user entity.
func membership(groupType string) func(*mapper) {
	return func(m *mapper) {
		if m.entityIsUser() {
			m.ev.User = m.entityUser()
			m.ev.Group = &Group{Name: Unknown, Type: groupType}
			return
		}
		uid, name, typ := m.target()
		m.ev.Group = &Group{UID: uid, Name: name, Type: typ}
		m.ev.User = m.actorUser()
	}
}

// tagChat maps a tag added to or removed from a chat: the tag (a group)
// gains or loses membership of the chat (the resource).
func tagChat(m *mapper) {
	uid, name, typ := m.target()
	if tag, ok := m.str(transform.DTagName); ok {
		name = tag
	}
	m.ev.Group = &Group{UID: uid, Name: name, Type: typ}
	m.ev.Privileges = []string{"chat_member"}
	if id, ok := m.str(transform.DChatID); ok {
		m.ev.Resource = &ResourceDetails{UID: id, Type: typeChat}
	}
}

// entity maps a managed object's life cycle: the object as entity, and
// for an update the changed object as entity_result, with the details
// object as its data.
func entity(m *mapper) {
	uid, name, typ := m.target()
	e := &ManagedEntity{UID: uid, Name: name, Type: typ}
	if n, ok := m.str(transform.DName); ok {
		e.Name = n
	}
	if n, ok := m.str(transform.DOldName); ok {
		e.Name = n
	}
	m.ev.Entity = e
	if m.ev.ActivityID != 3 {
		e.Data = m.details()
		return
	}
	res := &ManagedEntity{UID: e.UID, Name: e.Name, Type: e.Type, Data: m.details()}
	if n, ok := m.str(transform.DNewName); ok {
		res.Name = n
	}
	m.ev.EntityResult = res
}

// webResources maps activity on chat content: the entity first, then the
// chat, messages, recording and file that the details name.
func webResources(m *mapper) {
	uid, name, typ := m.target()
	res := []WebResource{{UID: uid, Name: name, Type: typ}}
	for _, d := range [...]struct {
		field int
		typ   string
	}{
		{transform.DChatID, typeChat}, {transform.DMessageID, typeMessage}, {transform.DStartedMessageID, typeMessage},
		{transform.DRecordingID, typeRecording}, {transform.DFileID, typeFile},
	} {
		id, ok := m.str(d.field)
		if !ok || id == uid && d.typ == typ {
			continue
		}
		res = append(res, WebResource{UID: id, Type: d.typ})
	}
	m.ev.WebResources = res
}

// videoCallFinished also places the call in time: it ended at the event
// and lasted details.duration seconds.
func videoCallFinished(m *mapper) {
	webResources(m)
	d := m.r.Details[transform.DDuration]
	if !d.Valid || d.Int <= 0 || d.Int > math.MaxInt64/1000 {
		return
	}
	ms := d.Int * 1000
	if m.ev.Time < math.MinInt64+ms {
		return
	}
	m.ev.Duration, m.ev.StartTime, m.ev.EndTime = ms, m.ev.Time-ms, m.ev.Time
}

func apiActivity(m *mapper) {
	op, path := apiOperation(m.r.EventKey)
	m.ev.API = &API{Operation: op, Service: &Service{Name: apiService}}
	if m.ev.HTTPRequest == nil {
		m.ev.HTTPRequest = &HTTPRequest{}
	}
	m.ev.HTTPRequest.HTTPMethod, m.ev.HTTPRequest.URL = "GET", &URL{Path: path}
	if m.ev.SrcEndpoint == nil { // required by the class
		m.ev.SrcEndpoint = &NetworkEndpoint{Name: Unknown}
	}
	if m.r.EntityID != "" || m.r.EntityType != "" {
		uid, name, typ := m.target()
		m.ev.Resources = []ResourceDetails{{UID: uid, Name: name, Type: typ}}
	}
}

// dlpFinding maps a DLP rule violation: the rule as analytic and policy,
// the message and chat as affected resources.
func dlpFinding(m *mapper) {
	ruleID, hasID := m.str(transform.DDLPRuleID)
	ruleName, hasName := m.str(transform.DDLPRuleName)
	info := &FindingInfo{UID: m.ev.Metadata.UID, Title: "DLP rule violation", Types: []string{"DLP"}}
	if info.UID == "" {
		info.UID = Unknown
	}
	if hasName {
		info.Title = clip("DLP rule violation: " + ruleName)
	}
	info.Desc, _ = m.str(transform.DActionMessage)
	ds := &DataSecurity{DetectionSystemID: 10, DetectionSystem: "Application-Level DLP"}
	if hasID || hasName {
		info.Analytic = &Analytic{UID: ruleID, Name: ruleName, TypeID: 1, Type: "Rule"}
		ds.Policy = &Policy{UID: ruleID, Name: ruleName}
	}
	m.ev.FindingInfo, m.ev.DataSecurity = info, ds

	uid, name, typ := m.target()
	res := []ResourceDetails{{UID: uid, Name: name, Type: typ}}
	if id, ok := m.str(transform.DMessageID); ok && !(id == uid && typ == typeMessage) {
		res = append(res, ResourceDetails{UID: id, Type: typeMessage})
	}
	if id, ok := m.str(transform.DChatID); ok {
		res = append(res, ResourceDetails{UID: id, Type: typeChat})
	}
	m.ev.Resources = res
}
