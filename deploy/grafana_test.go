package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/deploy/grafana"
	"github.com/pachca-export/pachca-export/testkit/testbin"
)

// dashboardOnScrape checks that every query of the Grafana dashboard
// returns data on what a real follow process of workspace "acme" served
// and a run of it wrote (the series follow did not serve, as events_total
// before it delivered an event): promtool evaluates each, picked workspace and all, on
// those series held for ten minutes (each value growing by one a minute,
// so that counters have a rate), and an alert on absent(query) must not
// fire. A query whose matcher, label or function finds nothing in what the
// exporter really writes (a panel that stays empty) fails here; promtool
// also refuses one that does not parse.
func dashboardOnScrape(t *testing.T, follow, run string) {
	t.Helper()
	promtool := testbin.Require(t, "PACHCA_PROMTOOL", "promtool", "promtool")
	exprs, err := grafana.Exprs()
	require.NoError(t, err)

	type series struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	var input []series
	seen := map[string]bool{}
	for _, line := range strings.Split(follow+"\n"+run, "\n") {
		if !strings.HasPrefix(line, "pachca_export_") {
			continue // comments, and the Go and process collectors' series
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, "a line of the metrics: %q", line)
		if !seen[line[:i]] {
			seen[line[:i]] = true
			input = append(input, series{Series: line[:i], Values: strconv.FormatFloat(v, 'f', -1, 64) + "+1x10"})
		}
	}
	require.NotEmpty(t, input)

	type rule struct {
		Alert string `yaml:"alert"`
		Expr  string `yaml:"expr"`
	}
	type alertTest struct {
		EvalTime  string `yaml:"eval_time"`
		Alertname string `yaml:"alertname"`
		ExpAlerts []any  `yaml:"exp_alerts"`
	}
	var rules []rule
	var checks []alertTest
	for _, workspace := range []string{"acme", ".*"} {
		for _, e := range exprs {
			for v, with := range grafana.Variables {
				if v == "$workspace" {
					with = workspace
				}
				e = strings.ReplaceAll(e, v, with)
			}
			require.NotContains(t, e, "$", "a variable left in %q", e)
			name := fmt.Sprintf("DashboardQuery%d", len(rules))
			rules = append(rules, rule{Alert: name, Expr: "absent(" + e + ")"})
			checks = append(checks, alertTest{EvalTime: "10m", Alertname: name, ExpAlerts: []any{}})
		}
	}
	dir := t.TempDir()
	write := func(name string, v any) {
		b, err := yaml.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	write("dashboard.rules.yml", map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	write("dashboard.test.yml", map[string]any{
		"rule_files":          []string{"dashboard.rules.yml"},
		"evaluation_interval": "1m",
		"tests": []any{map[string]any{
			"interval":        "1m",
			"input_series":    input,
			"alert_rule_test": checks,
		}},
	})
	cmd := exec.CommandContext(t.Context(), promtool, "test", "rules", "dashboard.test.yml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "dashboard.rules.yml"))
		require.NoError(t, err, "a query of the dashboard returns nothing on what follow serves (an alert on absent(query) fired):\n%s\nqueries:\n%s", out, b)
	}
}
