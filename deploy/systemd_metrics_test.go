package deploy_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

// TestFollowUnitMetrics runs `follow` with /proc mounted as
// pachca-export-follow.service mounts it (ProtectProc=, ProcSubset=) and
// scrapes /metrics: the process collector's series README promises must all
// be there. Was: the unit set ProcSubset=pid, which hides /proc/stat, and
// process_start_time_seconds (the boot time comes from /proc/stat) was
// missing from every scrape, silently: alerts on restarts saw none.
func TestFollowUnitMetrics(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to mount /proc (CI runs as root)")
		}
		t.Skip("needs root to mount /proc")
	}
	_, err := exec.LookPath("unshare")
	require.NoError(t, err, "util-linux provides unshare")
	u := readUnit(t, "systemd/pachca-export-follow.service")
	var opts []string
	if v := u.get("Service", "ProtectProc"); len(v) == 1 && v[0] != "default" {
		opts = append(opts, "hidepid="+v[0])
	}
	if v := u.get("Service", "ProcSubset"); len(v) == 1 && v[0] == "pid" {
		opts = append(opts, "subset=pid")
	}

	bin := buildtest.StaticBinary(t)
	cfg, addr := followPipeline(t, "", "")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	mount := "mount -t proc proc /proc"
	if len(opts) > 0 {
		mount = "mount -t proc -o " + strings.Join(opts, ",") + " proc /proc"
	}
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--pid", "--fork", "--kill-child", "--",
		"sh", "-c", `mount --make-rprivate / && `+mount+` && exec "$@"`, "sh", bin, "follow", "-c", cfg)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var body string
	for body == "" {
		require.NoError(t, ctx.Err(), "no /metrics answer")
		time.Sleep(100 * time.Millisecond)
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		if resp.StatusCode == http.StatusOK {
			body = string(b)
		}
	}
	for _, name := range []string{"process_start_time_seconds", "process_resident_memory_bytes", "process_open_fds", "go_goroutines"} {
		require.True(t, strings.Contains(body, "\n"+name+" "), "%s missing from /metrics with /proc mounted %v", name, opts)
	}
}
