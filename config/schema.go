package config

import _ "embed" // the schema file

// JSONSchema is the JSON Schema (draft 2020-12) of pipeline.yaml, for
// editors: pipeline.schema.json, which package configschema generates
// from these structs (make config-schema) and whose test keeps it so.
// Embedded, so that the binary prints it (schema --config) without the
// generator and its libraries.
//
//go:embed pipeline.schema.json
var JSONSchema []byte
