package extract

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestErrorsNeverEchoTheToken: a server that echoes the request's token in
// its answer, in any encoding and at any offset, never gets a byte of it
// into the client's error, whether the body is cut or quoted there.
func TestErrorsNeverEchoTheToken(t *testing.T) {
	tokens := []string{"S3CR3TabcdefGHIJKLMNOPQRSTUVWXYZ", `S3CR3T"quote\back<&>/+ =?%`}
	echoes := map[string]func(tok string) string{
		"raw": func(tok string) string { return "Bearer " + tok },
		"%q":  strconv.Quote,
		"json": func(tok string) string {
			j, _ := json.Marshal(tok)
			return string(j[1 : len(j)-1])
		},
		"query":  url.QueryEscape,
		"path":   url.PathEscape,
		"html":   html.EscapeString,
		"base64": func(tok string) string { return base64.StdEncoding.EncodeToString([]byte(tok)) },
	}
	bodies := map[string]func(echo string) (int, string){
		"500 cut at 120 bytes": func(e string) (int, string) { return 500, strings.Repeat("x", 100) + e },
		"500 short":            func(e string) (int, string) { return 500, "echo " + e },
		"400 not JSON":         func(e string) (int, string) { return 400, strings.Repeat("y", 110) + e },
		"401 JSON message":     func(e string) (int, string) { return 401, `{"error":"invalid_token","error_description":"` + e + `"}` },
		"200 not JSON":         func(e string) (int, string) { return 200, "<html>" + e + "</html>" },
		"200 without data":     func(e string) (int, string) { return 200, `{"echo":"` + e + `"}` },
	}
	for _, tok := range tokens {
		for en, echo := range echoes {
			for bn, body := range bodies {
				t.Run(tok[:8]+"/"+en+"/"+bn, func(t *testing.T) {
					status, b := body(echo(tok))
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.WriteHeader(status)
						w.Write([]byte(b))
					}))
					t.Cleanup(srv.Close)
					c := NewClient(ClientConfig{BaseURL: srv.URL, Token: tok, Timeout: 2 * time.Second})
					_, err := c.Page(t.Context(), Query{}, "")
					require.Error(t, err)
					require.NotContains(t, err.Error(), "S3C", "a part of the token is in the error")
					err = c.Post(t.Context(), "/messages", []byte(`{}`))
					if status != 200 {
						require.Error(t, err)
						require.NotContains(t, err.Error(), "S3C", "a part of the token is in the error of POST")
					}
				})
			}
		}
	}
}
