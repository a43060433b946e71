// Draws the report's charts from the JSON in #report-data with ECharts (SVG
// renderer: crisp on screen and in print). The tables next to each chart
// hold the same numbers.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var charts = [];
  var fmt = function (n) { return Number(n).toLocaleString('en-US'); };
  // A tooltip wraps long names (an actor id can be any length) instead of
  // growing wider than the page.
  var tooltip = function () {
    return { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: fmt, confine: true,
      extraCssText: 'max-width: 40em; white-space: normal; overflow-wrap: anywhere;' };
  };
  var palette = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1',
    '#ff9da7', '#9c755f', '#bab0ac', '#86bcb6', '#d37295', '#8cd17d', '#499894', '#79706e', '#d4a6c8'];

  function make(id, option) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var chart = echarts.init(el, null, { renderer: 'svg' });
    option.animation = false;
    option.color = option.color || palette;
    // The page's own label names the chart and the table with its numbers;
    // the description ECharts would generate instead reads its internal
    // stack values ("is 0, 39, 39, NaN") to a screen reader.
    option.aria = { enabled: true, label: { description: el.getAttribute('aria-label') } };
    chart.setOption(option);
    charts.push(chart);
    if (option.legend && option.legend.type === 'scroll') { scrolling.push(chart); }
  }

  // On paper a scrolling legend shows its first page only, and the colours
  // of the series after it cannot be told apart: printed, a legend lists
  // every name, on as many lines as they take, the bars below them.
  var scrolling = [];
  function legendsFor(print) {
    scrolling.forEach(function (c) {
      c.setOption({ legend: { type: print ? 'plain' : 'scroll' } });
      var legend = c.getViewOfComponentModel(c.getModel().getComponent('legend')).group.getBoundingRect();
      c.setOption({ grid: { top: print ? Math.ceil(legend.height) + 12 : 36 } });
    });
  }

  function stacked(categories, series, extra) {
    var o = {
      tooltip: tooltip(),
      legend: { type: 'scroll', top: 0 },
      grid: { left: 56, right: 18, top: 36, bottom: 56 },
      xAxis: { type: 'category', data: categories },
      yAxis: { type: 'value', minInterval: 1 },
      series: series.map(function (s) {
        return { name: s.name, type: 'bar', stack: 'total', data: s.data, emphasis: { focus: 'series' } };
      })
    };
    if (extra) { extra(o); }
    return o;
  }

  function zoomIfLong(o, n) {
    if (n > 60) {
      o.dataZoom = [{ type: 'inside' }, { type: 'slider', height: 18, bottom: 6 }];
      o.grid.bottom = 64;
    }
  }

  make('chart-days', stacked(data.days.labels, data.days.series, function (o) { zoomIfLong(o, data.days.labels.length); }));

  if (data.fails.series.length) {
    make('chart-fails', stacked(data.fails.labels, data.fails.series, function (o) {
      zoomIfLong(o, data.fails.labels.length);
      // The spans belong to a series of their own, without data: on a bar
      // series ECharts places a markArea hours away from the category
      // named. A span runs from its first hour's bar to its last's (a burst
      // within one hour is the line over that bar).
      o.series.push({
        name: 'bursts flagged', type: 'line', data: [], silent: true,
        markArea: {
          silent: false,
          itemStyle: { color: 'rgba(192, 57, 43, 0.16)', borderColor: 'rgba(192, 57, 43, 0.7)', borderWidth: 1 },
          label: { color: '#c0392b', fontSize: 10 },
          data: data.fails.bursts.map(function (b) {
            return [{ name: b.name, xAxis: b.from }, { xAxis: b.to }];
          })
        }
      });
    }));
  }

  // A count past the top list's counters is an upper bound (the table's
  // "175 ±174"): its bar is the events certain, then the possible
  // overcount in a pale part of its own, not one bar of the bound.
  function horizontal(id, rows) {
    var names = rows.map(function (r) { return r.name; }).reverse();
    var over = rows.some(function (r) { return r.err > 0; });
    var certain = rows.map(function (r) { return r.value - (r.err || 0); }).reverse();
    var series = [{ type: 'bar', data: certain, name: over ? 'events, at least' : 'events', stack: 'n' }];
    if (over) {
      series.push({ type: 'bar', data: rows.map(function (r) { return r.err || 0; }).reverse(), name: 'possible overcount',
        stack: 'n', itemStyle: { color: '#d9e2ec' } });
    }
    make(id, {
      tooltip: tooltip(),
      grid: { left: 150, right: 24, top: over ? 28 : 8, bottom: 24 },
      legend: over ? { top: 0 } : undefined,
      xAxis: { type: 'value', minInterval: 1 },
      yAxis: { type: 'category', data: names, axisLabel: { width: 140, overflow: 'truncate' } },
      series: series
    });
  }
  horizontal('chart-actors', data.actors);
  horizontal('chart-ips', data.ips);
  horizontal('chart-sensitive', data.sensitive);

  if (data.compare) {
    make('chart-compare', {
      tooltip: tooltip(),
      legend: { top: 0 },
      grid: { left: 56, right: 18, top: 36, bottom: 70 },
      xAxis: { type: 'category', data: data.compare.labels, axisLabel: { rotate: 30, interval: 0 } },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: 'previous period', type: 'bar', data: data.compare.previous, itemStyle: { color: '#bab0ac' } },
        { name: 'this period', type: 'bar', data: data.compare.current, itemStyle: { color: '#4e79a7' } }
      ]
    });
  }

  window.addEventListener('resize', function () { charts.forEach(function (c) { c.resize(); }); });
  window.addEventListener('beforeprint', function () {
    document.querySelectorAll('details').forEach(function (d) { d.open = true; });
    charts.forEach(function (c) { c.resize(); });
    legendsFor(true);
  });
  window.addEventListener('afterprint', function () {
    legendsFor(false);
    charts.forEach(function (c) { c.resize(); });
  });
  document.documentElement.setAttribute('data-charts', String(charts.length));
})();
