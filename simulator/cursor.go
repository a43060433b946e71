package simulator

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// encodeCursor renders a cursor like the API's: standard base64 (with
// padding) of {"id":123,"dir":"desc"}.
func encodeCursor(c cursor) string {
	return base64.StdEncoding.EncodeToString([]byte(cursorFields(c) + "}"))
}

// encodeCursorNonce renders a cursor that points where c does but is spelt
// differently for every nonce, as a server that mints fresh cursor tokens
// would: {"id":123,"dir":"desc","n":nonce}.
func encodeCursorNonce(c cursor, nonce uint64) string {
	return base64.StdEncoding.EncodeToString([]byte(cursorFields(c) + `,"n":` + strconv.FormatUint(nonce, 10) + "}"))
}

// cursorFields is the JSON object of c without its closing brace.
func cursorFields(c cursor) string {
	dir := "desc"
	if c.asc {
		dir = "asc"
	}
	return `{"id":` + strconv.FormatUint(c.id, 10) + `,"dir":"` + dir + `"`
}

// decodeCursor accepts what encodeCursor makes, also unpadded, URL-safe, or
// with '+' turned into ' ' by a client that forgot to escape it.
func decodeCursor(s string) (cursor, error) {
	s = strings.ReplaceAll(s, " ", "+")
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return cursor{}, errors.New("not base64")
	}
	var v struct {
		ID  *uint64 `json:"id"`
		Dir string  `json:"dir"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.ID == nil {
		return cursor{}, errors.New("not a cursor object")
	}
	switch v.Dir {
	case "asc":
		return cursor{id: *v.ID, asc: true}, nil
	case "desc":
		return cursor{id: *v.ID}, nil
	}
	return cursor{}, errors.New("dir must be asc or desc")
}
