package simulator

import (
	"encoding/json"
	"net/http"
)

// AddToken has the server accept token from now on, a token of the user
// owner (0 for the workspace's owner, Config.OwnerID): GET
// /oauth/token/info names that user, as the API names the owner of
// another workspace's token. Safe for concurrent use.
func (s *Server) AddToken(token string, owner uint64) {
	if owner == 0 {
		owner = s.cfg.owner()
	}
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	s.tokens[token] = owner
}

// RevokeToken has the server refuse token from now on, 401 invalid_token
// as the API answers a revoked token; TokenNoScope and TokenNoPlan stay
// known. Safe for concurrent use.
func (s *Server) RevokeToken(token string) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	delete(s.tokens, token)
}

// knownToken reports whether token authenticates.
func (s *Server) knownToken(token string) bool {
	if token == TokenNoScope || token == TokenNoPlan {
		return true
	}
	s.tokenMu.RLock()
	defer s.tokenMu.RUnlock()
	_, ok := s.tokens[token]
	return ok
}

// tokenOwner is the user id of token's owner.
func (s *Server) tokenOwner(token string) uint64 {
	s.tokenMu.RLock()
	defer s.tokenMu.RUnlock()
	if owner, ok := s.tokens[token]; ok {
		return owner
	}
	return s.cfg.owner()
}

// tokenRequest is the body of POST /_sim/tokens and /_sim/tokens/revoke.
type tokenRequest struct {
	Token string `json:"token"`
	Owner uint64 `json:"owner"` // AddToken's owner; 0 for the workspace's
}

// serveAddToken answers POST /_sim/tokens {"token": ..., "owner": ...}
// with 204 once the token is accepted (AddToken).
func (s *Server) serveAddToken(w http.ResponseWriter, r *http.Request) {
	if tr, ok := readTokenRequest(w, r); ok {
		s.AddToken(tr.Token, tr.Owner)
		w.WriteHeader(http.StatusNoContent)
	}
}

// serveRevokeToken answers POST /_sim/tokens/revoke {"token": ...} with
// 204 once the token is refused (RevokeToken).
func (s *Server) serveRevokeToken(w http.ResponseWriter, r *http.Request) {
	if tr, ok := readTokenRequest(w, r); ok {
		s.RevokeToken(tr.Token)
		w.WriteHeader(http.StatusNoContent)
	}
}

func readTokenRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, bool) {
	var tr tokenRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&tr); err != nil || tr.Token == "" {
		http.Error(w, `want {"token": "...", "owner": 0}`, http.StatusBadRequest)
		return tr, false
	}
	return tr, true
}
