#!/bin/sh
# pachca-export follow under a cgroup v1 CPU quota, against a live simulator
# outside the group. Root only, not part of `make test`.
#   bench/cgroup-follow.sh QUOTA_MILLICPU SECONDS LIVE_RATE [HISTORY_EVENTS]
# Scrapes /metrics at the end and prints each cycle's log line.
set -eu
quota=$1 secs=$2 live=$3 hist=${4:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pachca-cgroup-follow.XXXXXX)
cpu=/sys/fs/cgroup/cpu/pachca-bench-f$$
acct=/sys/fs/cgroup/cpuacct/pachca-bench-f$$
cleanup() {
	[ -n "${exp:-}" ] && kill "$exp" 2>/dev/null && wait "$exp" || true
	[ -n "${sim:-}" ] && kill "$sim" 2>/dev/null || true
	for g in "$cpu" "$acct"; do [ -d "$g" ] && rmdir "$g" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
mkdir "$cpu" "$acct"
if [ "$quota" -gt 0 ]; then echo $((quota * 100)) >"$cpu/cpu.cfs_quota_us"; fi
today=$(date -u +%F)
"$root/bin/pachca-sim" -addr 127.0.0.1:0 -events "$hist" -from "$today" -to "$(date -u +%FT%TZ)" \
	-latency "${LATENCY:-100ms}" -jitter "${JITTER:-20ms}" -rate 50 -burst 50 -limit-model sliding-window \
	-faults "" -live-rate "$live" >"$work/sim.out" 2>"$work/sim.err" &
sim=$!
for _ in $(seq 1200); do [ -s "$work/sim.out" ] && break; sleep 0.1; done
base=$(head -1 "$work/sim.out")
cat >"$work/pipeline.yaml" <<YAML
source:
  base_url: $base
  token: sim-token
  workspace: acme
  requests_per_second: 50
transform:
  drop_own_reads: true
follow:
  interval: ${INTERVAL:-1m}
  lookback: ${LOOKBACK:-15m}
  listen: 127.0.0.1:0
sinks:
  - type: parquet
    dir: out/parquet
state:
  dir: state
YAML
sh -c "echo \$\$ >$cpu/cgroup.procs; echo \$\$ >$acct/cgroup.procs; exec $root/bin/pachca-export follow -c $work/pipeline.yaml --log-format json" >"$work/stdout" 2>"$work/stderr" &
exp=$!
sleep "$secs"
addr=$(grep -o '"addr":"127.0.0.1:[0-9]*' "$work/stderr" | head -1 | grep -o '127.0.0.1:[0-9]*' || true)
[ -n "$addr" ] && curl -s "http://$addr/metrics" | grep -E '^pachca_export_follow_(freshness|cycles_total|cycle_duration_seconds_(sum|count))|^process_cpu_seconds_total|^pachca_export_api_(requests|throttled)' >"$work/metrics.txt" || true
[ -n "$addr" ] && echo "readyz=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")"
echo "dir=$work quota=${quota}m live=$live/s history=$hist secs=$secs"
echo "cpu_s=$(echo "scale=2; $(cat $acct/cpuacct.usage) / 1000000000" | bc)"
grep -E 'nr_periods|nr_throttled|throttled_time' "$cpu/cpu.stat" | tr '\n' ' '; echo
cat "$work/metrics.txt" 2>/dev/null || true
grep -i 'cycle' "$work/stderr" | grep -v '"level":"DEBUG"' | cut -c1-400
