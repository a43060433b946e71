// Package configschematest checks YAML against the JSON Schema of
// pipeline.yaml (package configschema) with a validator other than the
// library that writes it, santhosh-tekuri/jsonschema, reading the YAML as
// an editor does: every document of the file, each a JSON value. For
// tests only.
package configschematest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Compile returns the validator of schema, the JSON of a draft 2020-12
// schema; it fails t if the schema does not compile (which checks it
// against the metaschema).
func Compile(t testing.TB, schema []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	require.NoError(t, c.AddResource("pipeline.schema.json", doc))
	s, err := c.Compile("pipeline.schema.json")
	require.NoError(t, err)
	return s
}

// CheckMeta fails t unless schema is valid against the metaschema of draft
// 2020-12, as the validator ships it.
func CheckMeta(t testing.TB, schema []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	require.NoError(t, err)
	meta, err := jsonschema.NewCompiler().Compile("https://json-schema.org/draft/2020-12/schema")
	require.NoError(t, err)
	require.NoError(t, meta.Validate(doc))
}

// Documents reads every YAML document of b as JSON values; the error is
// the YAML parser's.
func Documents(b []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// Validate checks every document of the YAML b against s.
func Validate(s *jsonschema.Schema, b []byte) error {
	docs, err := Documents(b)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := s.Validate(d); err != nil {
			return err
		}
	}
	return nil
}
