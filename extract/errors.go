package extract

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/printable"
)

// APIError is an answer of the API that retrying cannot fix (400, 401, 402,
// 403, 404, 422, ...). For GET /audit_events its message says what to do
// about it (token, scope, plan); for other requests (Method and Path set)
// it names the request, and the caller adds what that request needs.
type APIError struct {
	Status  int
	Code    string // ApiError code (invalid_date_range, required, ...) or OAuth error
	Key     string // the parameter an ApiError names
	Message string
	// Method and Path name a request other than GET /audit_events, e.g.
	// POST /messages.
	Method, Path string
	// Foreign is an answer whose body is neither error shape of the API (an
	// HTML page, another JSON): a proxy or firewall on the way may have
	// sent it rather than the API.
	Foreign bool
	// Reread is source.token_file, read again after this answer to a
	// token it held, and holding no other: the error says so.
	Reread string
}

// FailureKind makes every APIError permanent: waiting will not change the
// answer. The API's own 401 (a token rejected or revoked), 402 (a plan
// without the audit log) and 403 (a token without the scope) are
// configuration errors (exit status 2): a supervisor that restarts the
// process after exit 1 would send the same token again and again, and the
// API may restrict a token that keeps sending. So is the API's 400 or 422
// of a filter of GET /audit_events (an event key in
// source.filters.event_keys that it does not know): the configured value,
// refused again at every start. A 401 or 403 that is not the API's
// (Foreign: a proxy's, a firewall's) stays permanent.
func (e *APIError) FailureKind() failure.Kind {
	if !e.Foreign && e.Status >= 401 && e.Status <= 403 {
		return failure.Usage
	}
	if !e.Foreign && e.Path == "" && (e.Status == 400 || e.Status == 422) && filterKey(e.Key) != "" {
		return failure.Usage
	}
	return failure.Permanent
}

// Detail is the status, code and message, e.g. "403 insufficient_scope: ...".
func (e *APIError) Detail() string {
	detail := fmt.Sprintf("%d", e.Status)
	if e.Code != "" {
		detail += " " + e.Code
	}
	if e.Message != "" {
		detail += ": " + e.Message
	}
	if e.Key != "" {
		detail += ", parameter " + e.Key
	}
	return detail
}

func (e *APIError) Error() string {
	if e.Reread != "" {
		r := *e
		r.Reread = ""
		return r.Error() + "; source.token_file " + e.Reread + " was read again after this answer and holds no other token"
	}
	if e.Path != "" {
		return "the API refused " + e.Method + " " + e.Path + " (" + e.Detail() + ")"
	}
	detail := e.Detail()
	if e.Foreign && e.Status >= 401 && e.Status <= 403 {
		return "the server at source.base_url answered " + detail + ", which is not the API's error: a proxy or firewall on the way may refuse the request; check source.base_url and the way to it. " + e.tokenAdvice()
	}
	switch e.Status {
	case 401:
		return "the API rejected the token (" + detail + "): check the token (source.token, source.token_file or --token); reading the audit log needs the workspace owner's token with scope audit_events:read on the Corporation plan"
	case 402:
		return "the workspace's plan does not include the audit log (" + detail + "): audit events need the Corporation plan"
	case 403:
		return "the token lacks access to the audit log (" + detail + "): it needs scope audit_events:read, which only the workspace owner's token has"
	case 404:
		return "the API answered 404 Not Found: check source.base_url (default https://api.pachca.com/api/shared/v1)"
	}
	if key := filterKey(e.Key); key != "" {
		return "the API refused the request (" + detail + "): check " + key
	}
	return "the API refused the request (" + detail + ")"
}

// tokenAdvice is what a 401, 402 or 403 of the API itself would mean.
func (e *APIError) tokenAdvice() string {
	switch e.Status {
	case 401:
		return "From the API, 401 would be a rejected token (source.token, or --token)"
	case 402:
		return "From the API, 402 would be a plan without the audit log (it needs the Corporation plan)"
	}
	return "From the API, 403 would be a token without scope audit_events:read"
}

// filterKey names the configuration key behind a filter parameter of
// GET /audit_events, for an answer that refuses one (an event key the API
// does not know, say); "" for any other parameter.
func filterKey(param string) string {
	switch param {
	case "event_key":
		return "source.filters.event_keys"
	case "actor_id", "actor_type", "entity_id", "entity_type":
		return "source.filters." + param
	}
	return ""
}

// IsRangeTooLarge reports whether err is the API's invalid_date_range answer,
// after which the caller splits the time window and tries again.
func IsRangeTooLarge(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == "invalid_date_range"
}

// parseAPIError reads the two error shapes of the API: ApiError
// {"errors":[{key,value,message,code,payload}]} and OAuthError {error, error_description}.
func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var api struct {
		Errors []struct {
			Key     string `json:"key"`
			Message string `json:"message"`
			Code    string `json:"code"`
		} `json:"errors"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &api) != nil {
		e.Message = snippet(body)
		e.Foreign = e.Message != ""
		return e
	}
	if len(api.Errors) > 0 {
		first := api.Errors[0]
		e.Code, e.Key, e.Message = printable.Line(first.Code), printable.Line(first.Key), printable.Line(first.Message)
		return e
	}
	if api.Error == "" && api.Description == "" {
		e.Message = snippet(body)
		e.Foreign = true
		return e
	}
	e.Code, e.Message = printable.Line(api.Error), printable.Line(api.Description)
	return e
}

// snippet returns the start of a body for an error message, on one line.
// Remove secrets from b first: a secret cut here is no longer whole, and no
// later redaction would find it.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 120 {
		cut := 120
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return printable.Line(s)
}

// retryableError is a transient failure: a 5xx, a network error, a malformed body.
type retryableError struct {
	msg string
	err error
}

func (e *retryableError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *retryableError) Unwrap() error { return e.err }
