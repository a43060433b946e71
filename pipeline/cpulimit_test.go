package pipeline

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
)

// writeTree writes files (path → content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, text := range files {
		p = filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	return root
}

// TestReadCPUStat: the CPU limit and throttling counters of the process's
// own cgroup, v1 (as this process's /proc/self/cgroup names it, or at the
// mount's root in a container) and v2; none without a limit.
func TestReadCPUStat(t *testing.T) {
	v1stat := "nr_periods 1581\nnr_throttled 1313\nthrottled_time 94309566413\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  cpuStat
		ok    bool
	}{
		{"v1 group named", map[string]string{
			"proc/self/cgroup":                           "4:memory:/x\n2:cpuacct:/\n1:cpu:/pods-1\n",
			"sys/fs/cgroup/cpu/pods-1/cpu.cfs_quota_us":  "10000\n",
			"sys/fs/cgroup/cpu/pods-1/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/cpu/pods-1/cpu.stat":          v1stat,
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":         "-1\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us":        "100000\n",
			"sys/fs/cgroup/cpu/cpu.stat":                 "nr_periods 0\nnr_throttled 0\n",
		}, cpuStat{periods: 1581, throttled: 1313, millis: 100}, true},
		{"v1 container, host path, cpu,cpuacct at the root", map[string]string{
			"proc/self/cgroup":                            "3:cpu,cpuacct:/kubepods/burstable/pod1/abc\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  "25000\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.stat":          v1stat,
		}, cpuStat{periods: 1581, throttled: 1313, millis: 250}, true},
		{"v2", map[string]string{
			"proc/self/cgroup": "0::/system.slice/pachca-export.service\n",
			"sys/fs/cgroup/system.slice/pachca-export.service/cpu.max":  "50000 100000\n",
			"sys/fs/cgroup/system.slice/pachca-export.service/cpu.stat": "usage_usec 1\nnr_periods 10\nnr_throttled 4\nthrottled_usec 9\n",
		}, cpuStat{periods: 10, throttled: 4, millis: 500}, true},
		{"v2 namespaced, no limit", map[string]string{
			"proc/self/cgroup":       "0::/\n",
			"sys/fs/cgroup/cpu.max":  "max 100000\n",
			"sys/fs/cgroup/cpu.stat": "usage_usec 1\nnr_periods 0\nnr_throttled 0\n",
		}, cpuStat{}, false},
		{"v1 no limit", map[string]string{
			"proc/self/cgroup":                    "1:cpu:/\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "-1\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/cpu/cpu.stat":          v1stat,
		}, cpuStat{}, false},
		{"no cgroup", map[string]string{}, cpuStat{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ok := readCPUStat(writeTree(t, tc.files))
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, st)
		})
	}
}

// TestCPULimitBoundIsTold: a run held back by its CPU limit (the cgroup
// stopped it in 8 of every 10 periods while it sent 33 of its 49 requests
// a second, no 429, enough workers) says so once, naming the limit, after
// cpuHoldSamples samples; 429s, a rate kept, few periods throttled, the
// delivery after the fetch (no requests to send) or no limit say nothing
// (was: nothing said why a run under a 100m limit sent two thirds of its
// rate).
func TestCPULimitBoundIsTold(t *testing.T) {
	type sample struct {
		reqs, throttled429 int64 // added each second
		periods, stopped   int64
		covered            float64
	}
	starved := sample{reqs: 33, periods: 10, stopped: 8, covered: 0.5}
	for _, tc := range []struct {
		name    string
		s       sample
		limited bool
		told    bool
	}{
		{"held back", starved, true, true},
		{"no limit", starved, false, false},
		{"429s", sample{reqs: 33, throttled429: 1, periods: 10, stopped: 8, covered: 0.5}, true, false},
		{"rate kept", sample{reqs: 48, periods: 10, stopped: 8, covered: 0.5}, true, false},
		{"few periods throttled", sample{reqs: 33, periods: 10, stopped: 2, covered: 0.5}, true, false},
		{"delivering", sample{reqs: 0, periods: 10, stopped: 10, covered: 1}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st cpuStat
			prev := cpuThrottling
			cpuThrottling = func() (cpuStat, bool) { return st, tc.limited }
			t.Cleanup(func() { cpuThrottling = prev })
			cfg := config.Default()
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			r := &runner{s: &Session{}, cfg: &cfg, log: log,
				client: extract.NewClient(extract.ClientConfig{BaseURL: "http://127.0.0.1:1", RPS: 50})}
			var c cpuWatch
			var snap Snapshot
			for i := range 3 * cpuHoldSamples {
				st.periods += tc.s.periods
				st.throttled += tc.s.stopped
				st.millis = 100
				snap.Requests += tc.s.reqs
				snap.Throttled += tc.s.throttled429
				snap.Covered = tc.s.covered
				r.watchCPU(&c, snap, time.Second)
				if tc.told && i < cpuHoldSamples {
					require.Empty(t, logs.String(), "sample %d", i)
				}
			}
			n := strings.Count(logs.String(), "a CPU limit bounds the request rate")
			if !tc.told {
				require.Zero(t, n, logs.String())
				return
			}
			require.Equal(t, 1, n, logs.String())
			require.Contains(t, logs.String(), "cpu_limit=100m throttled_pct=80 req_per_s=33 rate=49")
		})
	}
}
