package shape_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// TestDefaultSources: every class Map produces has its own default source,
// within Security Lake's 20 characters, and the defaults validate.
func TestDefaultSources(t *testing.T) {
	sl := shape.SecurityLake{AccountID: "123456789012"}
	sources := sl.SourceOf()
	seen := map[string]bool{}
	for _, c := range ocsf.Classes() {
		src := sources[c.UID]
		require.NotEmpty(t, src, c.Name)
		require.LessOrEqual(t, len(src), 20, src)
		require.False(t, seen[src], "%s twice", src)
		seen[src] = true
	}
	require.Len(t, shape.DefaultSources(), len(ocsf.Classes()), "no default for a class Map does not produce")
	k := shape.Keys{Schema: shape.SchemaOCSF, Layout: shape.LayoutSecurityLake, SecurityLake: &sl}
	require.NoError(t, k.Validate("parquet", "eu-central-1"))
	require.Equal(t, "ocsf/security_lake", k.Label())
}
