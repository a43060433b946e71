#!/bin/sh
# Whole runs of pachca-export under a cgroup v1 CPU quota and memory limit, the
# simulator outside the group. Root only, not part of `make test`.
#   bench/cgroup.sh QUOTA_MILLICPU MEM_MIB EVENTS [extra run flags]
# QUOTA_MILLICPU 0 = no quota, MEM_MIB 0 = no limit. Prints wall time, CPU
# used and throttled, peak memory, requests by status, the exit status.
set -eu
quota=$1 mem=$2 events=$3; shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pachca-cgroup.XXXXXX)
day=${DAY:-$(date -u -d '2 days ago' +%F)}
next=$(date -u -d "$day + 1 day" +%F)
cpu=/sys/fs/cgroup/cpu/pachca-bench-$$
acct=/sys/fs/cgroup/cpuacct/pachca-bench-$$
memparent=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
memcg=$memparent/pachca-bench-$$
cleanup() {
	[ -n "${sim:-}" ] && kill "$sim" 2>/dev/null || true
	for g in "$cpu" "$acct" "$memcg"; do [ -d "$g" ] && rmdir "$g" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
mkdir "$cpu" "$acct" "$memcg"
echo 100000 >"$cpu/cpu.cfs_period_us"
if [ "$quota" -gt 0 ]; then echo $((quota * 100)) >"$cpu/cpu.cfs_quota_us"; fi
if [ "$mem" -gt 0 ]; then
	echo $((mem * 1024 * 1024)) >"$memcg/memory.limit_in_bytes"
	echo $((mem * 1024 * 1024)) >"$memcg/memory.memsw.limit_in_bytes" 2>/dev/null || true
fi
"$root/bin/pachca-sim" -addr 127.0.0.1:0 -events "$events" -from "$day" -to "$next" \
	-latency "${LATENCY:-100ms}" -jitter "${JITTER:-20ms}" -rate "${RATE:-50}" -burst 50 \
	-limit-model "${MODEL:-sliding-window}" -faults "" >"$work/sim.out" 2>"$work/sim.err" &
sim=$!
for _ in $(seq 1200); do [ -s "$work/sim.out" ] && break; sleep 0.1; done
[ -s "$work/sim.out" ] || { echo "the simulator did not start" >&2; exit 1; }
base=$(head -1 "$work/sim.out")
cat >"$work/pipeline.yaml" <<YAML
source:
  base_url: $base
  token: sim-token
  workspace: acme
  requests_per_second: ${RPS:-50}
sinks:
  - type: ndjson
    dir: out/ndjson
    compression: gzip
  - type: parquet
    dir: out/parquet
    compression: zstd
${EXTRA_SINK:-}
state:
  dir: state
YAML
# memory.max_usage_in_bytes counts the page cache of the files written too:
# the resident set (rss + mapped files) is sampled every 100 ms.
( peak=0; while [ -d "$memcg" ]; do
	r=$(awk '$1=="total_rss"||$1=="total_mapped_file"{s+=$2} END{print s}' "$memcg/memory.stat" 2>/dev/null || echo 0)
	[ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$work/peak_rss"
	sleep 0.1; done ) &
start=$(date +%s.%N)
set +e
sh -c "echo \$\$ >$cpu/cgroup.procs; echo \$\$ >$acct/cgroup.procs; echo \$\$ >$memcg/cgroup.procs; exec /usr/bin/time -f \"maxrss_kib=%M\" -o $work/time.txt $root/bin/pachca-export run -c $work/pipeline.yaml --from $day --to $next --metrics-file $work/metrics.prom --log-format json $*" >"$work/stdout" 2>"$work/stderr"
rc=$?
set -e
end=$(date +%s.%N)
echo "dir=$work quota=${quota}m mem=${mem}MiB events=$events rc=$rc"
echo "wall_s=$(echo "$end - $start" | bc)"
echo "cpu_s=$(echo "scale=2; $(cat $acct/cpuacct.usage) / 1000000000" | bc)"
grep -E 'nr_periods|nr_throttled|throttled_time' "$cpu/cpu.stat" | tr '\n' ' '; echo
echo "peak_rss_mib=$(( $(cat $work/peak_rss 2>/dev/null || echo 0) / 1048576 )) peak_usage_with_cache_mib=$(( $(cat $memcg/memory.max_usage_in_bytes) / 1048576 )) failcnt=$(cat $memcg/memory.failcnt) oom_kill=$(awk '$1=="oom_kill"{print $2}' $memcg/memory.oom_control)"
grep -E '^pachca_export_api_requests_total' "$work/metrics.prom" 2>/dev/null || true
cat "$work/time.txt" 2>/dev/null || true
grep -o '"requests":[0-9]*,"pages":[0-9]*,"retries":[0-9]*,"throttled":[0-9]*,"duration_seconds":[0-9.]*' "$work/stderr" || tail -c 600 "$work/stderr"; echo
