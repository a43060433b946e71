package grafana_test

//lint:file-ignore SA1019 the SDK deprecates the classic dashboard model for its v2 schema, which only Grafana 12 with dynamic dashboards imports; the classic JSON imports in every Grafana in use.

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/deploy/grafana"
)

var update = flag.Bool("update", false, "rewrite pachca-export.json from Dashboard (make dashboard)")

const file = "pachca-export.json"

// TestDashboardFile: the shipped file is what Dashboard builds, so that a
// change made to one and not the other fails here.
func TestDashboardFile(t *testing.T) {
	want, err := grafana.JSON()
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(file, want, 0o644))
	}
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	if string(got) != string(want) {
		w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
		i := 0
		for i < min(len(w), len(g)) && w[i] == g[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end of file)"
		}
		t.Fatalf("%s is not what Dashboard builds (make dashboard): line %d is\n%s\nnot\n%s", file, i+1, line(g), line(w))
	}

	// No setting left at the SDK's zero value: Grafana reads a tooltip mode
	// or an orientation of "" as none it knows.
	var v any
	require.NoError(t, json.Unmarshal(got, &v))
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case string:
			require.NotEmpty(t, v, "%s is empty", path)
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, e)
			}
		}
	}
	walk("dashboard", v)
}

// TestDashboardReadsBack: Grafana's own types (the SDK's, with its panel and
// query plugins) read the file back to the same dashboard, every panel is
// placed on the grid without overlapping another, has an id of its own, a
// title and a description, and reads the data source the dashboard's variable picks.
func TestDashboardReadsBack(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var d dashboard.Dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	require.Equal(t, grafana.UID, *d.Uid)

	type cell struct{ x, y uint32 }
	taken := map[cell]string{}
	ids := map[uint32]bool{}
	panels := 0
	for _, p := range d.Panels {
		if p.RowPanel != nil {
			require.NotEmpty(t, p.RowPanel.Title)
			require.False(t, ids[p.RowPanel.Id], "row %q: id %d twice", *p.RowPanel.Title, p.RowPanel.Id)
			ids[p.RowPanel.Id] = true
			continue
		}
		panel := p.Panel
		require.NotNil(t, panel)
		panels++
		title := *panel.Title
		require.NotEmpty(t, title)
		require.NotNil(t, panel.Id, "panel %q has no id", title)
		require.False(t, ids[*panel.Id], "panel %q: id %d twice", title, *panel.Id)
		ids[*panel.Id] = true
		require.NotEmpty(t, panel.Description, "panel %q says nothing of what it shows", title)
		require.Equal(t, "${datasource}", *panel.Datasource.Uid, "panel %q", title)
		require.NotEmpty(t, panel.Targets, "panel %q has no query", title)
		g := panel.GridPos
		require.LessOrEqual(t, g.X+g.W, uint32(24), "panel %q is wider than the grid", title)
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				other, ok := taken[cell{x, y}]
				require.False(t, ok, "panels %q and %q overlap", title, other)
				taken[cell{x, y}] = title
			}
		}
	}
	require.GreaterOrEqual(t, panels, 10)
}

// TestDashboardQueriesPickTheWorkspace: every series a query reads is
// restricted to the workspaces picked (one Grafana shows the exporters of
// several), so a panel that forgot the selector, and shows all of them
// whatever is picked, fails here.
func TestDashboardQueriesPickTheWorkspace(t *testing.T) {
	exprs, err := grafana.Exprs()
	require.NoError(t, err)
	require.NotEmpty(t, exprs)
	metric := regexp.MustCompile(`\bpachca_export_[a-z_]+`)
	for _, e := range exprs {
		locs := metric.FindAllStringIndex(e, -1)
		require.NotEmpty(t, locs, "query %q reads no pachca_export_ metric", e)
		for _, l := range locs {
			require.True(t, strings.HasPrefix(e[l[1]:], `{workspace=~"$workspace"`), "query %q reads %s of every workspace", e, e[l[0]:l[1]])
		}
	}
}
