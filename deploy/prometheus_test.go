package deploy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/deploy/grafana"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
	"github.com/pachca-export/pachca-export/testkit/testbin"
)

const rulesFile = "prometheus/pachca-export.rules.yml"

// TestPrometheusRules checks the shipped alerting rules with promtool and
// runs their unit tests (pachca-export.rules.test.yml): each alert fires on
// the series that should raise it, with its labels and annotations, and
// not on a healthy exporter.
func TestPrometheusRules(t *testing.T) {
	promtool := testbin.Require(t, "PACHCA_PROMTOOL", "promtool", "promtool")
	out, err := exec.CommandContext(t.Context(), promtool, "check", "rules", rulesFile).CombinedOutput()
	require.NoError(t, err, "promtool check rules:\n%s", out)
	cmd := exec.CommandContext(t.Context(), promtool, "test", "rules", "pachca-export.rules.test.yml")
	cmd.Dir = "prometheus"
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "promtool test rules:\n%s", out)

	// Every alert has a unit test: an alert nobody saw fire may never fire.
	b, err := os.ReadFile("prometheus/pachca-export.rules.test.yml")
	require.NoError(t, err)
	for _, r := range readRules(t) {
		require.Contains(t, string(b), "alertname: "+r.Alert+"\n", "alert %s has no unit test", r.Alert)
	}
}

// TestPrometheusRulesNameRealMetrics runs the real binary, a one-day `run
// --metrics-file` and a `follow` that commits a cycle, against the
// simulator: every pachca_export_ metric the rules and the Grafana
// dashboard's queries name must be in what they write. An alert on a
// metric that was renamed, or that a mode does not write, would never fire,
// and a panel would stay empty, and promtool cannot tell. Every panel's
// query then returns data on what follow served (dashboardOnScrape).
func TestPrometheusRulesNameRealMetrics(t *testing.T) {
	var names []string
	alerted := map[string]bool{} // named by a rule
	metrics := regexp.MustCompile(`\bpachca_export_[a-z_]+`)
	for _, r := range readRules(t) {
		for _, n := range metrics.FindAllString(r.Expr, -1) {
			alerted[n] = true
		}
	}
	exprs, err := grafana.Exprs()
	require.NoError(t, err)
	for _, r := range readRules(t) {
		exprs = append(exprs, r.Expr)
	}
	for _, e := range exprs {
		for _, n := range metrics.FindAllString(e, -1) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	require.NotEmpty(t, names)

	bin := buildtest.StaticBinary(t)
	cfg, addr := followPipeline(t, "  workspace: acme\n", "  interval: 1s\n  lookback: 10s\n")
	dir := filepath.Dir(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	textfile := filepath.Join(dir, "pachca-export.prom")
	from := time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly)
	to := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	out, err := exec.CommandContext(ctx, bin, "run", "-c", cfg, "--from", from, "--to", to, "--metrics-file", textfile).CombinedOutput()
	require.NoError(t, err, "run:\n%s", out)
	b, err := os.ReadFile(textfile)
	require.NoError(t, err)
	run := string(b)

	cmd := exec.CommandContext(ctx, bin, "follow", "-c", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	for {
		require.NoError(t, ctx.Err(), "follow committed no cycle (/readyz never 200)")
		if code, _ := get("/readyz"); code == http.StatusOK {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, follow := get("/metrics")
	require.Equal(t, http.StatusOK, code)

	// A series is a line that starts with its name, then labels or a space.
	holds := func(exposition, name string) bool {
		return regexp.MustCompile(`(?m)^` + name + `[{ ]`).MatchString(exposition)
	}
	for _, n := range names {
		// The dashboard also shows what follow serves only once it
		// delivered something (events_total{event_key}): its first cycle
		// may not have. An alert's metric must be there from the start.
		if alerted[n] || strings.HasPrefix(n, "pachca_export_follow_") {
			require.True(t, holds(follow, n), "the rules or the dashboard name %s, which follow's /metrics does not serve", n)
		}
		if !strings.HasPrefix(n, "pachca_export_follow_") {
			require.True(t, holds(run, n), "the rules or the dashboard name %s, which run --metrics-file does not write", n)
		}
	}
	dashboardOnScrape(t, follow, run)
	// The rules keep the workspace label (every series carries it).
	require.True(t, holds(run, `pachca_export_last_success_timestamp_seconds\{workspace="acme"\}`), "run's textfile:\n%s", run)
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

// TestPrometheusRulesNameTheWorkspace: one Prometheus watches the
// exporters of several workspaces, so every alert's description says
// which (was: 7 of 12 did not, "a day was not delivered ..."), but the
// one of absent(), which has no labels; and one workspace's series gone
// while others stay raises an alert naming it (was: none, absent() sees
// the others' series).
func TestPrometheusRulesNameTheWorkspace(t *testing.T) {
	gone := false
	for _, r := range readRules(t) {
		if strings.Contains(r.Expr, "absent(") {
			continue
		}
		require.Contains(t, r.Annotations["description"], "{{ $labels.workspace }}", "alert %s: the description names no workspace", r.Alert)
		gone = gone || strings.Contains(r.Expr, "unless on (workspace) pachca_export_last_run_timestamp_seconds")
	}
	require.True(t, gone, "no alert for one workspace's metrics gone")
}

func readRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	require.NotEmpty(t, rules)
	return rules
}

// followPipeline starts a simulator (no faults) and writes a pipeline.yaml
// in a temporary directory for it: one NDJSON sink, the state beside it,
// follow's endpoints on a free loopback port (addr), and the lines source
// and follow (indented YAML, "" for none) under source: and follow:.
func followPipeline(t *testing.T, source, follow string) (cfg, addr string) {
	t.Helper()
	sc := simulator.DefaultConfig()
	sc.Faults = nil
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	addr = freeAddr(t)
	dir := t.TempDir()
	cfg = filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `source:
  base_url: %s
  token: %s
%sfollow:
  listen: %q
%ssinks:
  - type: ndjson
    dir: %s
state:
  dir: %s
`, base, sc.Token, source, addr, follow, filepath.Join(dir, "out"), filepath.Join(dir, "state")), 0o600))
	return cfg, addr
}

// freeAddr is a loopback address no one listens on, for follow's
// endpoints.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestPrometheusRulesRunbook: the page says what is wrong, and its runbook
// annotation where to read what to do: every alert names its entry in the
// README's "When an alert fires" (an anchor of a heading there), and every
// entry there is an alert's (was: no alert said what to do, and the README
// had no such section). A new alert without its entry fails here.
func TestPrometheusRulesRunbook(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	readme := string(b)
	start := strings.Index(readme, "\n### When an alert fires\n")
	require.NotEqual(t, -1, start, "README has no section When an alert fires")
	section := readme[start+1:]
	if end := regexp.MustCompile(`(?m)^##{1,2} `).FindStringIndex(section[4:]); end != nil {
		section = section[:end[0]+4]
	}
	// A heading's anchor as GitHub makes it: lower case, punctuation
	// but - removed, spaces as -.
	anchor := func(heading string) string {
		a := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
				return r
			}
			return -1
		}, strings.ToLower(heading))
		return a
	}
	entries := map[string]string{} // anchor: entry text
	for _, e := range strings.Split(section, "\n#### ")[1:] {
		heading, text, _ := strings.Cut(e, "\n")
		entries[anchor(heading)] = strings.TrimSpace(text)
	}
	var alerts []string
	for _, r := range readRules(t) {
		alerts = append(alerts, anchor(r.Alert))
		rb := r.Annotations["runbook"]
		require.Equal(t, "README.md#"+anchor(r.Alert), rb, "alert %s: its runbook annotation names no README anchor of its own", r.Alert)
		require.NotEmpty(t, entries[anchor(r.Alert)], "alert %s has no entry in the README's When an alert fires (#### %s)", r.Alert, r.Alert)
	}
	for a := range entries {
		require.Contains(t, alerts, a, "README's When an alert fires has an entry (#%s) of no alert", a)
	}
}
