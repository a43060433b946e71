// Package grafana builds the Grafana dashboard of pachca-export
// (pachca-export.json beside this file) from the metrics a nightly `run
// --metrics-file` writes and a `follow` process serves: health at a glance,
// what was delivered, what the API cost, how the feed keeps up. `make
// dashboard` writes the file; go test ./deploy/grafana fails when it is not
// what Dashboard builds, and go test ./deploy when a query names a metric
// the real binary does not write or promtool cannot parse it.
package grafana

//lint:file-ignore SA1019 the SDK deprecates the classic dashboard model for its v2 schema, which only Grafana 12 with dynamic dashboards imports; the classic JSON imports in every Grafana in use.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's uid: importing the file again replaces it.
const UID = "pachca-export"

// Variables a query may hold, with the value a reader such as promtool can
// take in their place: what Grafana substitutes before it sends a query.
var Variables = map[string]string{
	"$workspace":       ".*",
	"$__rate_interval": "5m",
	"$__range":         "1d",
}

// ws is the selector every series of the dashboard is read with: the
// workspaces picked in the variable (All matches a series without the
// label too, as a single workspace's metrics are when source.workspace is
// not set).
const ws = `{workspace=~"$workspace"}`

// sel is metric m restricted to the picked workspaces.
func sel(m string) string { return m + ws }

// rate is the sum by workspace (and by more labels, if any) of the
// rate of counter m.
func rate(m string, by ...string) string {
	return fmt.Sprintf("sum by (%s) (rate(%s[$__rate_interval]))", strings.Join(append([]string{"workspace"}, by...), ", "), sel(m))
}

// increase is the sum by workspace (and by more labels) of what counter m
// gained over window w.
func increase(m, w string, by ...string) string {
	return fmt.Sprintf("sum by (%s) (increase(%s[%s]))", strings.Join(append([]string{"workspace"}, by...), ", "), sel(m), w)
}

// Dashboard builds the dashboard.
func Dashboard() (dashboard.Dashboard, error) {
	ds := common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
	query := func(expr, legend string) *prometheus.DataqueryBuilder {
		return prometheus.NewDataqueryBuilder().Datasource(ds).Expr(expr).LegendFormat(legend)
	}
	thresholds := func(steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
		return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)
	}
	step := func(v float64, color string) dashboard.Threshold {
		if v == 0 {
			return dashboard.Threshold{Color: color} // the base: from minus infinity
		}
		return dashboard.Threshold{Value: cog.ToPtr(v), Color: color}
	}
	big := func(title, desc, unit string) *stat.PanelBuilder {
		return stat.NewPanelBuilder().Title(title).Description(desc).Datasource(ds).Unit(unit).
			Height(5).Span(6).GraphMode(common.BigValueGraphModeNone).ColorMode(common.BigValueColorModeBackground).
			Orientation(common.VizOrientationAuto).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	}
	graph := func(title, desc, unit string) *timeseries.PanelBuilder {
		return timeseries.NewPanelBuilder().Title(title).Description(desc).Datasource(ds).Unit(unit).
			Height(8).Span(12).Min(0).FillOpacity(10).
			Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)).
			Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	}
	lastRun := dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
		"0": {Text: cog.ToPtr("failed"), Color: cog.ToPtr("red"), Index: cog.ToPtr[int32](0)},
		"1": {Text: cog.ToPtr("succeeded"), Color: cog.ToPtr("green"), Index: cog.ToPtr[int32](1)},
	}}}

	b := dashboard.NewDashboardBuilder("pachca-export").
		Uid(UID).
		Description("The audit-log export of Pachca workspaces: nightly runs (run --metrics-file, through node_exporter's textfile collector) and the follow feed (its /metrics).").
		Tags([]string{"pachca-export", "audit"}).
		Refresh("1m").
		Time("now-7d", "now").
		Timezone(common.TimeZoneUtc).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("workspace").Label("Workspace").
			Datasource(ds).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(pachca_export_last_run_timestamp_seconds, workspace)")}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true).AllValue(".*").
			Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("All")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")}})).

		// At a glance: the same conditions as the alerting rules.
		WithRow(dashboard.NewRowBuilder("Health")).
		WithPanel(big("Since the last success",
			"Time since a run, or a follow cycle, last committed (pachca_export_last_success_timestamp_seconds). Red past 26 hours, as PachcaExportNoRecentSuccess (tune it with the rule: a follow feed commits every minute).", "s").
			WithTarget(query("time() - max by (workspace) ("+sel("pachca_export_last_success_timestamp_seconds")+" > 0)", "{{workspace}}")).
			Thresholds(thresholds(step(0, "green"), step(26*3600, "red")))).
		WithPanel(big("Last run",
			"Whether the last run (or follow cycle) succeeded (pachca_export_last_run_success). A failed run leaves the days it did not deliver for the next one: see its log.", "none").
			WithTarget(query("max by (workspace) ("+sel("pachca_export_last_run_success")+")", "{{workspace}}")).
			Mappings([]dashboard.ValueMapping{lastRun})).
		WithPanel(big("Follow freshness",
			"The API's now minus the follow feed's watermark: every event created before it was delivered (pachca_export_follow_freshness_seconds). Red past 15 minutes, as PachcaExportFollowStale. Empty without a follow process.", "s").
			WithTarget(query("max by (workspace) ("+sel("pachca_export_follow_freshness_seconds")+")", "{{workspace}}")).
			Thresholds(thresholds(step(0, "green"), step(15*60, "red")))).
		WithPanel(big("Set aside in the range",
			"Events written to the dead-letter files, and days not delivered because they would have replaced files holding more events, or another identity's, over the time range picked. Anything but 0 needs a look: see the README's \"When an alert fires\".", "short").
			WithTarget(query("round("+increase("pachca_export_dead_letters_total", "$__range")+")", "{{workspace}} dead letters")).
			WithTarget(query("round("+increase("pachca_export_refused_partitions_total", "$__range")+")", "{{workspace}} refused days")).
			Thresholds(thresholds(step(0, "green"), step(1, "red")))).

		// What reached the sinks.
		WithRow(dashboard.NewRowBuilder("Delivery")).
		WithPanel(graph("Events delivered, by key",
			"Events delivered to every sink, by event key (pachca_export_events_total). A nightly run shows as one spike a day; a follow feed as a steady line.", "short").
			AxisLabel("events/s").
			WithTarget(query(rate("pachca_export_events_total", "event_key"), "{{workspace}} {{event_key}}"))).
		WithPanel(graph("Records committed, by sink",
			"Records each sink committed (pachca_export_sink_records_total): sink is the index in the configuration's sinks.", "short").
			AxisLabel("records/s").
			WithTarget(query(rate("pachca_export_sink_records_total", "sink", "type"), "{{workspace}} sinks[{{sink}}] {{type}}"))).
		WithPanel(graph("Bytes committed, by sink",
			"File and object sizes, or Kafka message values, each sink committed (pachca_export_sink_bytes_total).", "Bps").
			WithTarget(query(rate("pachca_export_sink_bytes_total", "sink", "type"), "{{workspace}} sinks[{{sink}}] {{type}}"))).
		WithPanel(graph("Days delivered, empty, refused",
			"Partitions (UTC days, or parts of one) delivered to every sink, those of them with no event, and those refused, per interval. An empty day usually means something broke upstream.", "short").
			WithTarget(query(increase("pachca_export_partitions_delivered_total", "$__rate_interval"), "{{workspace}} delivered")).
			WithTarget(query(increase("pachca_export_empty_partitions_total", "$__rate_interval"), "{{workspace}} empty")).
			WithTarget(query(increase("pachca_export_refused_partitions_total", "$__rate_interval"), "{{workspace}} refused"))).
		WithPanel(graph("Events dead-lettered, dropped",
			"Events written to the dead-letter files (unparseable, or another event's id), and events dropped on purpose (transform.drop_event_keys, drop_own_reads), per interval.", "short").
			WithTarget(query(increase("pachca_export_dead_letters_total", "$__rate_interval"), "{{workspace}} dead letters")).
			WithTarget(query(increase("pachca_export_dropped_events_total", "$__rate_interval"), "{{workspace}} dropped"))).
		WithPanel(graph("Run duration",
			"How long the last run took (pachca_export_last_run_duration_seconds); for a follow process, its last cycle.", "s").
			WithTarget(query("max by (workspace) ("+sel("pachca_export_last_run_duration_seconds")+")", "{{workspace}}"))).

		// What the API cost.
		WithRow(dashboard.NewRowBuilder("API")).
		WithPanel(graph("Requests, retries, 429s",
			"Requests sent to the Pachca API, those repeated after a transient failure or a 429, and the 429 answers (pachca_export_api_requests_total, _retries_total, _throttled_total).", "reqps").
			WithTarget(query(rate("pachca_export_api_requests_total"), "{{workspace}} requests")).
			WithTarget(query(rate("pachca_export_api_retries_total"), "{{workspace}} retries")).
			WithTarget(query(rate("pachca_export_api_throttled_total"), "{{workspace}} 429"))).
		WithPanel(graph("Share of requests answered 429",
			"429 answers per request. The exporter holds the rate the API admits, so a few are expected at the start of a run; above 5% over a day PachcaExportThrottled fires: another client shares the token's limit.", "percentunit").
			WithTarget(query(rate("pachca_export_api_throttled_total")+" / "+rate("pachca_export_api_requests_total"), "{{workspace}}")).
			Thresholds(thresholds(step(0, "green"), step(0.05, "red"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine))).
		WithPanel(graph("Pages and events received",
			"Pages of events received from the API and their events, before any is skipped as delivered: what a look-back or a seal reads again counts again (pachca_export_api_pages_total, _api_events_total).", "short").
			WithTarget(query(rate("pachca_export_api_pages_total"), "{{workspace}} pages/s")).
			WithTarget(query(rate("pachca_export_api_events_total"), "{{workspace}} events/s"))).
		WithPanel(graph("Runs, by result",
			"Runs ended, per interval, by result: success, failure, interrupted (pachca_export_runs_total). A follow process counts none: see Cycles.", "short").
			WithTarget(query(increase("pachca_export_runs_total", "$__rate_interval", "result"), "{{workspace}} {{result}}"))).

		// How the follow feed keeps up.
		WithRow(dashboard.NewRowBuilder("Follow")).
		WithPanel(graph("Freshness and the API's clock",
			"The feed's freshness (the API's now minus the watermark), and how far the API's clock is behind this host's, from its Date headers.", "s").
			WithTarget(query("max by (workspace) ("+sel("pachca_export_follow_freshness_seconds")+")", "{{workspace}} freshness")).
			WithTarget(query("max by (workspace) ("+sel("pachca_export_follow_api_clock_behind_seconds")+")", "{{workspace}} API clock behind"))).
		WithPanel(graph("Cycles, by result",
			"Follow cycles ended per interval, by result (pachca_export_follow_cycles_total). Failures alone for 10 minutes raise PachcaExportFollowFailing.", "short").
			WithTarget(query(increase("pachca_export_follow_cycles_total", "$__rate_interval", "result"), "{{workspace}} {{result}}"))).
		WithPanel(graph("Cycle duration",
			"Median and 95th percentile of a cycle's duration, sealing included (pachca_export_follow_cycle_duration_seconds). A cycle longer than follow.interval delays the next.", "s").
			WithTarget(query("histogram_quantile(0.5, "+rate("pachca_export_follow_cycle_duration_seconds_bucket", "le")+")", "{{workspace}} median")).
			WithTarget(query("histogram_quantile(0.95, "+rate("pachca_export_follow_cycle_duration_seconds_bucket", "le")+")", "{{workspace}} p95"))).
		WithPanel(graph("Late events, seals, unsent alerts",
			"Per interval: events delivered although created before the watermark (published late, caught by the look-back or the seal), UTC days sealed, and cycles whose alert messages could not all be sent.", "short").
			WithTarget(query(increase("pachca_export_follow_late_events_total", "$__rate_interval"), "{{workspace}} late events")).
			WithTarget(query(increase("pachca_export_follow_seals_total", "$__rate_interval"), "{{workspace}} days sealed")).
			WithTarget(query(increase("pachca_export_follow_alert_failures_total", "$__rate_interval"), "{{workspace}} alerts not sent")))
	d, err := b.Build()
	if err != nil {
		return d, err
	}
	// Ids from 1 in order (the builder leaves rows at 0 and panels
	// without): a link to one panel (viewPanel=ID) needs its own.
	for i, p := range d.Panels {
		id := uint32(i + 1)
		if p.RowPanel != nil {
			p.RowPanel.Id = id
		} else {
			p.Panel.Id = &id
		}
	}
	return d, nil
}

// Exprs are the PromQL queries of the dashboard's panels, in order.
func Exprs() ([]string, error) {
	d, err := Dashboard()
	if err != nil {
		return nil, err
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		for _, q := range p.Panel.Targets {
			pq, ok := q.(prometheus.Dataquery)
			if !ok {
				return nil, fmt.Errorf("panel %q: a query of type %T", *p.Panel.Title, q)
			}
			exprs = append(exprs, pq.Expr)
		}
	}
	return exprs, nil
}

// JSON is the dashboard as the file holds it: indented, ending in a newline.
func JSON() ([]byte, error) {
	d, err := Dashboard()
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	// A query reads "> 0", not "\u003e 0" (the panels' own MarshalJSON
	// escapes for HTML): the same JSON string, and no query holds a "\".
	for esc, c := range map[string]string{`\u003c`: "<", `\u003e`: ">", `\u0026`: "&"} {
		b = bytes.ReplaceAll(b, []byte(esc), []byte(c))
	}
	return append(b, '\n'), nil
}
