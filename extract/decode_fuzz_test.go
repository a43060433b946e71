package extract

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodePage: decodePage never panics, and a page it accepts holds only
// events whose Raw is a JSON value, and a next cursor whenever it says
// has_next. Real answers of the simulator seed testdata/fuzz/FuzzDecodePage.
func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{
		okBody,
		`{"data":[],"meta":{"paginate":{"next_page":"eyJpZCI6MSwiZGlyIjoiZGVzYyJ9","has_next":true}}}`,
		`{"data":[],"meta":{"paginate":{"has_next":true}}}`,
		`{"data":[{"id":"a"}],"meta":{"paginate":{"next_page":"c"}}}`,
		`{"data":[null,1,"x",[]],"meta":{}}`,
		`{"data":null,"meta":{}}`,
		`{"errors":[{"key":"cursor","value":null,"message":"cursor is invalid","code":"invalid","payload":null}]}`,
		`<html><head><title>502 Bad Gateway</title></head></html>`,
		`{"data":[{"id":"a","created_at":"2026-11-01T10:00:00.000Z"`,
		``, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		p, err := decodePage(body)
		require.Equal(t, orig, body, "decodePage modified its input")
		if err != nil {
			require.Empty(t, p.Events)
			return
		}
		require.True(t, json.Valid(body), "accepted a body that is not JSON")
		require.True(t, !p.HasNext || p.Next != "", "has_next without next_page")
		for i, ev := range p.Events {
			require.True(t, json.Valid(ev.Raw), "event %d: Raw %q is not JSON", i, ev.Raw)
			if ev.TimeOK {
				require.NotZero(t, ev.At, "event %d", i)
			}
		}
	})
}
