package simulator

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// apiErrorItem is the ApiErrorItem schema.
type apiErrorItem struct {
	Key     string  `json:"key"`
	Value   *string `json:"value"`
	Message string  `json:"message"`
	Code    string  `json:"code"`
	Payload any     `json:"payload"`
}

// errItem makes an ApiErrorItem; an empty value becomes null.
func errItem(key, value, code, message string) apiErrorItem {
	it := apiErrorItem{Key: key, Message: message, Code: code}
	if value != "" {
		it.Value = &value
	}
	return it
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away: nothing to do
}

func writeJSONValue(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs go here: cannot happen
		writeAPIError(w, http.StatusInternalServerError, errItem("", "", "unhandled", err.Error()))
		return
	}
	writeJSON(w, status, b)
}

// apiErrorBody renders the ApiError schema: {"errors":[...]}.
func apiErrorBody(items ...apiErrorItem) []byte {
	b, _ := json.Marshal(struct {
		Errors []apiErrorItem `json:"errors"`
	}{items})
	return b
}

func writeAPIError(w http.ResponseWriter, status int, items ...apiErrorItem) {
	writeJSON(w, status, apiErrorBody(items...))
}

// writeOAuthError renders the OAuthError schema, with the WWW-Authenticate
// header an OAuth 2 bearer server sends along.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="Pachca", error="`+code+`", error_description="`+description+`"`)
	writeJSONValue(w, status, struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{code, description})
}
