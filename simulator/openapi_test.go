package simulator_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

// specPath is the OpenAPI document, relative to this package's directory.
const specPath = "../../shared/reference/pachca-openapi.en.yaml"

// vendoredSpec is a copy of the official document, so that the tests run
// from any checkout; TestVendoredSpecIsCurrent keeps it equal to sharedSpec.
const vendoredSpec = "testdata/pachca-openapi.en.yaml"

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(vendoredSpec)
	require.NoError(t, err)
	return doc
}

// TestVendoredSpecIsCurrent: where the project's shared reference is beside
// the repository (as in CI), the vendored copy equals it.
func TestVendoredSpecIsCurrent(t *testing.T) {
	shared, err := os.ReadFile(specPath)
	if err != nil {
		t.Skipf("no shared reference beside the repository (%v); the vendored copy is used", err)
	}
	vendored, err := os.ReadFile(vendoredSpec)
	require.NoError(t, err)
	require.True(t, bytes.Equal(shared, vendored), "%s differs from %s: copy it again", vendoredSpec, specPath)
}

// validate checks a response against the operation of path and method.
func validate(t *testing.T, doc *openapi3.T, method, path string, r response) {
	t.Helper()
	item := doc.Paths.Value(path)
	require.NotNil(t, item, path)
	op := item.GetOperation(method)
	require.NotNil(t, op, method+" "+path)
	req, err := http.NewRequestWithContext(t.Context(), method, "https://api.pachca.com/api/shared/v1"+path, nil)
	require.NoError(t, err)
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
			Options: opts,
		},
		Status:  r.Status,
		Header:  r.Header,
		Options: opts,
	}
	in.SetBodyBytes(bytes.Clone(r.Body))
	require.NoError(t, openapi3filter.ValidateResponse(t.Context(), in), "status %d body %.500s", r.Status, r.Body)
}

func TestResponsesMatchOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	cfg := testConfig()
	cfg.MaxRange = 48 * time.Hour
	_, base := start(t, cfg)
	full := query(day(0), day(2))

	first := get(t, base, "sim-token", full)
	require.Equal(t, http.StatusOK, first.Status)
	p := decodePage(t, first)
	require.Len(t, p.Data, 50)
	cases := []struct {
		name   string
		resp   response
		status int
	}{
		{"first page", first, 200},
		{"next page", get(t, base, "sim-token", cloneWith(full, "cursor", p.Meta.Paginate.NextPage)), 200},
		{"prev page", get(t, base, "sim-token", cloneWith(full, "cursor", p.Meta.Paginate.PrevPage)), 200},
		{"filtered by key", get(t, base, "sim-token", query(day(0), day(2), "event_key", "bot_oauth_client_updated")), 200},
		{"empty", get(t, base, "sim-token", query(day(5), day(6))), 200},
		{"no token", get(t, base, "", full), 401},
		{"bad token", get(t, base, "nope", full), 401},
		{"no plan", get(t, base, "sim-no-plan", full), 402},
		{"no scope", get(t, base, "sim-no-scope", full), 403},
		{"required", get(t, base, "sim-token", nil), 400},
		{"limit too large", get(t, base, "sim-token", cloneWith(full, "limit", "51")), 422},
		{"start after end", get(t, base, "sim-token", query(day(2), day(1))), 422},
		{"range too large", get(t, base, "sim-token", query(day(0), day(3))), 422},
		{"bad cursor", get(t, base, "sim-token", cloneWith(full, "cursor", "!!")), 422},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.status, c.resp.Status, "body: %s", c.resp.Body)
			validate(t, doc, http.MethodGet, "/audit_events", c.resp)
		})
	}
	// One event of every shape, as a page, against the AuditEvent schema.
	for _, raw := range shapes(t, walk(t, base, full)) {
		body := append(append([]byte(`{"data":[`), raw...), `],"meta":{"paginate":{"next_page":"x"}}}`...)
		validate(t, doc, http.MethodGet, "/audit_events", response{200, first.Header, body})
	}

	t.Run("messages", func(t *testing.T) {
		ok := post(t, base, "sim-token", `{"message":{"entity_type":"user","entity_id":10001,"content":"5 failed 2FA attempts"}}`)
		require.Equal(t, http.StatusCreated, ok.Status, "body: %s", ok.Body)
		validate(t, doc, http.MethodPost, "/messages", ok)
		bad := post(t, base, "sim-token", `{"message":{"entity_type":"user"}}`)
		require.Equal(t, http.StatusUnprocessableEntity, bad.Status)
		validate(t, doc, http.MethodPost, "/messages", bad)
	})

	// The token's scopes, which check reads; a token without
	// messages:create is refused a message.
	t.Run("token info", func(t *testing.T) {
		tokenInfo := func(base, token string) response {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/oauth/token/info", nil)
			require.NoError(t, err)
			return do(t, req, token)
		}
		ok := tokenInfo(base, "sim-token")
		require.Equal(t, http.StatusOK, ok.Status, "body: %s", ok.Body)
		validate(t, doc, http.MethodGet, "/oauth/token/info", ok)
		require.Contains(t, string(ok.Body), `"scopes":["audit_events:read","messages:create"]`)
		require.Equal(t, http.StatusUnauthorized, tokenInfo(base, "nope").Status)

		noSend := testConfig()
		noSend.NoMessagesScope = true
		_, noSendBase := start(t, noSend)
		info := tokenInfo(noSendBase, "sim-token")
		validate(t, doc, http.MethodGet, "/oauth/token/info", info)
		require.Contains(t, string(info.Body), `"scopes":["audit_events:read"]`)
		refused := post(t, noSendBase, "sim-token", `{"message":{"entity_type":"user","entity_id":10001,"content":"x"}}`)
		require.Equal(t, http.StatusForbidden, refused.Status)
		validate(t, doc, http.MethodPost, "/messages", refused)
	})
}

// TestDetailsMatchTheirVariant checks each event's details against the one
// AuditDetails* schema whose description names its key ("For: a, b"); the
// union in AuditEvent accepts any object, so it checks nothing by itself.
func TestDetailsMatchTheirVariant(t *testing.T) {
	doc := loadSpec(t)
	variant := map[string]*openapi3.Schema{}
	for name, ref := range doc.Components.Schemas {
		if !strings.HasPrefix(name, "AuditDetails") {
			continue
		}
		_, list, ok := strings.Cut(ref.Value.Description, "For: ")
		require.True(t, ok, "%s: no 'For:' in its description", name)
		for _, k := range strings.Split(strings.TrimSuffix(strings.TrimSpace(list), "."), ",") {
			variant[strings.TrimSpace(k)] = ref.Value
		}
	}
	require.ElementsMatch(t, simulator.EventKeys(), slices.Collect(maps.Keys(variant)))

	s, _ := start(t, testConfig())
	beyond := 0
	var raws [][]byte
	for _, e := range s.Events() {
		raws = append(raws, e.Raw)
	}
	for _, raw := range shapes(t, raws) {
		var ev struct {
			Key     string         `json:"event_key"`
			Details map[string]any `json:"details"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&ev))
		schema := variant[ev.Key]
		if len(schema.Properties) == 0 {
			require.Empty(t, ev.Details, "%s: details of the empty variant", ev.Key)
			continue
		}
		// Identifiers beyond int32 (even 2^53) are deliberate: the API reference
		// warns they occur. Check them apart, then validate the rest.
		for name, prop := range schema.Properties {
			n, isNum := ev.Details[name].(json.Number)
			if v, err := strconv.ParseUint(n.String(), 10, 64); isNum && err == nil && v > math.MaxInt32 && prop.Value.Format == "int32" {
				require.Greater(t, v, uint64(1)<<53, "%s.%s: %s", ev.Key, name, raw)
				ev.Details[name], beyond = json.Number("1"), beyond+1
			}
		}
		require.NoError(t, schema.VisitJSON(ev.Details, openapi3.MultiErrors()), "%s: %s", ev.Key, raw)
	}
	require.Positive(t, beyond, "no identifier above 2^53 generated")
}

// shapes keeps the first event of every shape: its key, whether ip_address
// and user_agent are null, and the JSON kind of each details field (numbers
// above 2^31 apart). Validating thousands of events would only repeat these.
func shapes(t *testing.T, raws [][]byte) [][]byte {
	t.Helper()
	seen := map[string]bool{}
	var out [][]byte
	for _, raw := range raws {
		var ev struct {
			Key     string                     `json:"event_key"`
			Details map[string]json.RawMessage `json:"details"`
			IP      *string                    `json:"ip_address"`
			Agent   *string                    `json:"user_agent"`
		}
		require.NoError(t, json.Unmarshal(raw, &ev))
		sig := []string{ev.Key, strconv.FormatBool(ev.IP == nil), strconv.FormatBool(ev.Agent == nil)}
		for _, name := range slices.Sorted(maps.Keys(ev.Details)) {
			v := ev.Details[name]
			kind := string(v[:1])
			if n, err := strconv.ParseUint(string(v), 10, 64); err == nil && n > math.MaxInt32 {
				kind = "big"
			}
			sig = append(sig, name+"="+kind)
		}
		if k := strings.Join(sig, ","); !seen[k] {
			seen[k] = true
			out = append(out, raw)
		}
	}
	return out
}
