package simulator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

// TestTokensRotate: the server accepts several tokens, and while it serves
// POST /_sim/tokens adds one (of another owner, too) and
// /_sim/tokens/revoke revokes one, which is then answered 401
// invalid_token as the API answers a revoked token: what a test of a
// rotated token needs.
func TestTokensRotate(t *testing.T) {
	cfg := testConfig()
	cfg.Tokens = []string{"tok-b"}
	_, base := start(t, cfg)
	root := strings.TrimSuffix(base, simulator.BasePath)
	owner := func(token string) (int, int64) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/oauth/token/info", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var info struct {
			Data struct {
				UserID int64 `json:"user_id"`
			} `json:"data"`
			Error string `json:"error"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
		if resp.StatusCode == http.StatusUnauthorized {
			require.Equal(t, "invalid_token", info.Error)
		}
		return resp.StatusCode, info.Data.UserID
	}
	control := func(path, body string, want int) {
		t.Helper()
		resp, err := http.Post(root+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode)
	}
	for _, tok := range []string{"sim-token", "tok-b"} {
		code, id := owner(tok)
		require.Equal(t, http.StatusOK, code, tok)
		require.EqualValues(t, 10001, id)
	}
	control("/_sim/tokens/revoke", `{"token":"sim-token"}`, http.StatusNoContent)
	code, _ := owner("sim-token")
	require.Equal(t, http.StatusUnauthorized, code, "a revoked token")
	code, _ = owner("tok-b")
	require.Equal(t, http.StatusOK, code, "the other token stays")

	control("/_sim/tokens", `{"token":"tok-globex","owner":20002}`, http.StatusNoContent)
	code, id := owner("tok-globex")
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 20002, id, "another workspace's owner")
	control("/_sim/tokens", `{"owner":1}`, http.StatusBadRequest)

	cfg.Tokens = []string{simulator.TokenNoPlan}
	require.ErrorContains(t, cfg.Validate(), "reserved")
}
