package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// firstMessageID is the id of the first message the simulator accepts.
const firstMessageID = 194275

// countingWriter counts the answer of a request other than GET
// /audit_events (which keeps its own request log) in the stats.
func (s *Server) countingWriter(rw http.ResponseWriter) *statusWriter {
	return &statusWriter{ResponseWriter: rw, onCommit: func(status int) {
		s.count(func(st *Stats) {
			st.Requests++
			if status >= 200 && status < 300 {
				st.OK++
			}
			if status == http.StatusTooManyRequests {
				st.Status429++
			}
		})
	}}
}

// serveMessages accepts POST /messages: it records the message and answers
// 201 with a Message object. A direct message (entity_type user) to a user
// the workspace does not have is refused 422 not_found. Faults are not injected here, so a test that
// counts alerts sees each one exactly once.
func (s *Server) serveMessages(rw http.ResponseWriter, r *http.Request) {
	w := s.countingWriter(rw)
	defer w.commit(0) // the handler was aborted: no answer
	token, ok := s.authorize(w, r)
	if !ok || !s.admit(w, token) {
		return
	}
	s.latency(r.Context())
	if !slices.Contains(s.scopes(token), scopeMessagesCreate) {
		writeOAuthError(w, http.StatusForbidden, "insufficient_scope", "The access token lacks the scope "+scopeMessagesCreate)
		return
	}
	var req struct {
		Message *struct {
			EntityType *string `json:"entity_type"`
			EntityID   *int64  `json:"entity_id"`
			Content    *string `json:"content"`
		} `json:"message"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return // the client went away
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Message == nil {
		writeAPIError(w, http.StatusUnprocessableEntity, errItem("message", "", "invalid",
			`The body must be JSON: {"message":{"entity_type":"user","entity_id":1,"content":"..."}}`))
		return
	}
	m := req.Message
	entityType := "discussion"
	if m.EntityType != nil {
		entityType = strings.ToLower(*m.EntityType)
	}
	if entityType != "discussion" && entityType != "thread" && entityType != "user" {
		// The OpenAPI document: a value outside the list returns 400 invalid.
		writeAPIError(w, http.StatusBadRequest, errItem("entity_type", entityType, "invalid", "entity_type must be discussion, thread or user"))
		return
	}
	var errs []apiErrorItem
	switch {
	case m.EntityID == nil || *m.EntityID < 1:
		errs = append(errs, errItem("entity_id", "", "blank", "entity_id is required"))
	case *m.EntityID > math.MaxInt32:
		// The OpenAPI document: entity_id is an int32.
		errs = append(errs, errItem("entity_id", strconv.FormatInt(*m.EntityID, 10), "invalid", "entity_id must be an int32"))
	}
	switch limit := s.cfg.messageMaxBytes(); {
	case m.Content == nil || strings.TrimSpace(*m.Content) == "":
		errs = append(errs, errItem("content", "", "blank", "content cannot be empty"))
	case len(*m.Content) > limit:
		errs = append(errs, errItem("content", "", "too_long", fmt.Sprintf("content is too long (maximum is %d bytes)", limit)))
	}
	if len(errs) == 0 && entityType == "user" && !s.cfg.isUser(*m.EntityID) {
		// The API can deliver a direct message only to a user it has:
		// 422 (the OpenAPI document's status for a request it cannot
		// carry out; it lists no 404 here) with code not_found.
		errs = append(errs, errItem("entity_id", strconv.FormatInt(*m.EntityID, 10), "not_found", "User not found"))
	}
	if len(errs) > 0 {
		writeAPIError(w, http.StatusUnprocessableEntity, errs...)
		return
	}
	now := time.Now().UTC()
	var id int64
	s.count(func(st *Stats) {
		st.Messages = append(st.Messages, Message{EntityType: entityType, EntityID: *m.EntityID, Content: *m.Content, At: now})
		id = firstMessageID + int64(len(st.Messages)) - 1
	})
	writeJSON(w, http.StatusCreated, renderMessage(id, entityType, *m.EntityID, *m.Content, now.UnixMilli(), s.cfg.owner()))
}

// renderMessage renders {"data": Message} as the API answers a new message.
func renderMessage(id int64, entityType string, entityID int64, content string, ms int64, owner uint64) []byte {
	chatID := entityID
	switch entityType {
	case "user":
		chatID = 4_000_000 + entityID // the direct chat with that user
	case "thread":
		chatID = 5_000_000 + entityID
	}
	o := newObj(nil)
	o.int("id", id).str("entity_type", entityType).int("entity_id", entityID).int("chat_id", chatID).int("root_chat_id", chatID).
		str("content", content).int("user_id", int64(owner))
	o.key("created_at")
	o.b = appendTime(o.b, ms)
	o.str("url", "https://app.pachca.com/chats/"+strconv.FormatInt(chatID, 10)+"?message="+strconv.FormatInt(id, 10)).
		raw("files", []byte("[]")).null("voice_content").null("buttons").null("thread").null("forwarding").null("parent_message_id")
	o.key("changed_at")
	o.b = appendTime(o.b, ms)
	o.null("deleted_at")
	return newObj(nil).raw("data", o.close()).close()
}

// The scopes the simulator knows of.
const (
	scopeAuditEvents    = "audit_events:read"
	scopeMessagesCreate = "messages:create"
)

// scopes are the scopes of an authorized token: TokenNoScope may send
// messages but not read the audit log; TokenNoPlan has the scope, but not
// the plan.
func (s *Server) scopes(token string) []string {
	switch {
	case token == TokenNoScope:
		return []string{scopeMessagesCreate}
	case s.cfg.NoMessagesScope:
		return []string{scopeAuditEvents}
	}
	return []string{scopeAuditEvents, scopeMessagesCreate}
}

// serveTokenInfo answers GET /oauth/token/info, which any token may ask:
// its owner and scopes, the token masked as the API masks it.
func (s *Server) serveTokenInfo(rw http.ResponseWriter, r *http.Request) {
	w := s.countingWriter(rw)
	defer w.commit(0)
	token, ok := s.authorize(w, r)
	if !ok || !s.admit(w, token) {
		return
	}
	s.latency(r.Context())
	masked := token
	if len(masked) > 12 {
		masked = masked[:8] + "..." + masked[len(masked)-4:]
	}
	writeJSONValue(w, http.StatusOK, map[string]any{"data": map[string]any{
		"id": 4827, "token": masked, "name": "pachca-export", "user_id": s.tokenOwner(token), "scopes": s.scopes(token),
		"created_at": "2025-05-12T09:00:00.000Z", "revoked_at": nil, "expires_in": nil, "last_used_at": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
	}})
}
