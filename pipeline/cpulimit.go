package pipeline

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// cpuStat is what the CPU controller of the process's cgroup counts while
// a CPU limit is set (Kubernetes limits.cpu, systemd CPUQuota=): the
// scheduling periods that passed and those at whose end the limit stopped
// the process. millis is the limit in thousandths of a CPU.
type cpuStat struct {
	periods, throttled int64
	millis             int64
}

// cpuThrottling reads the counters of the process's cgroup; ok is false
// without a CPU limit or a cgroup to read. The group is found once, at
// the first call (a limit set later goes unseen): each progress sample
// then reads its files only. A variable: tests inject it.
var cpuThrottling = func() func() (cpuStat, bool) {
	group := sync.OnceValues(func() (string, cpuReader) { return cpuGroup("/") })
	return func() (cpuStat, bool) {
		dir, read := group()
		if read == nil {
			return cpuStat{}, false
		}
		return read(dir)
	}
}()

// cpuReader reads a group's CPU limit and counters: readCPUv1 or readCPUv2.
type cpuReader func(dir string) (cpuStat, bool)

// readCPUStat reads the CPU limit and throttling counters of the process's
// own cgroup under root (cpuGroup).
func readCPUStat(root string) (cpuStat, bool) {
	dir, read := cpuGroup(root)
	if read == nil {
		return cpuStat{}, false
	}
	return read(dir)
}

// cpuGroup finds the process's own cgroup with a CPU limit under root (/
// but in tests), and how to read it: cgroup v2 (cpu.max, cpu.stat) or v1
// (cpu.cfs_quota_us, cpu.cfs_period_us, cpu.stat of the cpu controller).
// The group is where /proc/self/cgroup names it, or the mount's root (a
// container whose cgroup namespace shows the host's path). read is nil
// when there is none.
func cpuGroup(root string) (dir string, read cpuReader) {
	text, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return "", nil
	}
	base := filepath.Join(root, "sys/fs/cgroup")
	for line := range strings.SplitSeq(strings.TrimSpace(string(text)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" { // v2
			for _, dir := range []string{filepath.Join(base, parts[2]), base} {
				if _, ok := readCPUv2(dir); ok {
					return dir, readCPUv2
				}
			}
			continue
		}
		if !strings.Contains(","+parts[1]+",", ",cpu,") { // v1, another controller
			continue
		}
		for _, mount := range []string{filepath.Join(base, parts[1]), filepath.Join(base, "cpu"), filepath.Join(base, "cpu,cpuacct")} {
			for _, dir := range []string{filepath.Join(mount, parts[2]), mount} {
				if _, ok := readCPUv1(dir); ok {
					return dir, readCPUv1
				}
			}
		}
	}
	return "", nil
}

// readCPUv2 reads a cgroup v2 group's cpu.max ("max 100000": no limit) and cpu.stat.
func readCPUv2(dir string) (cpuStat, bool) {
	cpuMax, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if err != nil {
		return cpuStat{}, false
	}
	f := strings.Fields(string(cpuMax))
	if len(f) != 2 {
		return cpuStat{}, false
	}
	quota, err1 := strconv.ParseInt(f[0], 10, 64)
	period, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
		return cpuStat{}, false // "max": no limit
	}
	return readCPUStatFile(dir, quota*1000/period)
}

// readCPUv1 reads a cgroup v1 cpu group's cpu.cfs_quota_us (-1: no limit),
// cpu.cfs_period_us and cpu.stat.
func readCPUv1(dir string) (cpuStat, bool) {
	quota, ok1 := readInt(filepath.Join(dir, "cpu.cfs_quota_us"))
	period, ok2 := readInt(filepath.Join(dir, "cpu.cfs_period_us"))
	if !ok1 || !ok2 || quota <= 0 || period <= 0 {
		return cpuStat{}, false
	}
	return readCPUStatFile(dir, quota*1000/period)
}

func readCPUStatFile(dir string, millis int64) (cpuStat, bool) {
	text, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return cpuStat{}, false
	}
	st := cpuStat{millis: millis}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "nr_periods":
			st.periods, found = n, found+1
		case "nr_throttled":
			st.throttled, found = n, found+1
		}
	}
	return st, found == 2
}

func readInt(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// cpuWatch tells when a CPU limit, not the rate limit, bounds the
// requests: the process was stopped at the end of at least half of the
// limit's periods while it sent less than 90% of its rate, with no 429
// and enough workers, for cpuHoldSamples samples in a row (measured: at a
// 100m limit a day's fetch sent 33 of its 49 requests a second, throttled
// in 83% of the periods, and nothing said why).
type cpuWatch struct {
	held      int
	last      cpuStat
	requests  int64 // at the last sample
	throttled int64 // 429s at the last sample
	started   bool
}

// cpuHoldSamples is how many progress samples in a row must find the
// process held back by its CPU limit before the run says so.
const cpuHoldSamples = 30

// starved takes one sample: st the cgroup's counters, requests and
// throttled429 the run's so far, expected the requests the rate allows
// since the last sample, short whether the workers are too few anyway. It
// reports whether the limit has held the run back for cpuHoldSamples
// samples in a row, and the share of periods throttled in the last one.
func (c *cpuWatch) starved(st cpuStat, requests, throttled429 int64, expected float64, short bool) (bool, float64) {
	prev, prevReq, prev429, started := c.last, c.requests, c.throttled, c.started
	c.last, c.requests, c.throttled, c.started = st, requests, throttled429, true
	if !started {
		return false, 0
	}
	periods, stopped := st.periods-prev.periods, st.throttled-prev.throttled
	share := 0.0
	if periods > 0 {
		share = float64(stopped) / float64(periods)
	}
	if periods <= 0 || share < 0.5 || throttled429 != prev429 || short || expected <= 0 ||
		float64(requests-prevReq) >= 0.9*expected {
		c.held = 0
		return false, share
	}
	c.held++
	return c.held >= cpuHoldSamples, share
}
