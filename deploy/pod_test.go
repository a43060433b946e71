package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/notices"
	"github.com/pachca-export/pachca-export/ociimage"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// podMounts lays out the volumes of the CronJob's pod on the host.
type podMounts struct {
	rootfs, state, tmp, config, token string // tmp "" = no /tmp volume
}

// TestCronJobPod runs the image's binary in the file system the CronJob's
// pod gives it, built here with mounts instead of a container runtime: the
// image's tree (the Dockerfile's rootfs) read-only, the claim at the state
// directory (root-owned, group 65532, setgid, as fsGroup leaves it), an
// emptyDir at /tmp, the ConfigMap and the Secret read-only, uid and gid
// 65532, TMPDIR=/tmp. With the shipped pipeline.yaml's paths plus an S3
// sink (MinIO) and the simulator as the API, `check` passes and `run`
// exports a day to both. Without the /tmp volume (the bug this layout
// fixes), `check` fails on the S3 sink's temporary directory, and `run`
// fails the same way before fetching anything. A configuration with the
// example's relative paths fails naming where the pod writes.
func TestCronJobPod(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root for mounts and chroot (CI runs as root)")
		}
		t.Skip("needs root for mounts and chroot")
	}
	for _, tool := range []string{"unshare", "chroot", "mount"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "util-linux and coreutils provide %s", tool)
	}
	bin := buildtest.StaticBinary(t)
	srv := miniotest.Start(t)
	srv.CreateBucket("pod")

	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To = 2000, day, day.Add(24*time.Hour)
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })

	// The shipped pipeline's paths, the API and S3 of this test.
	shipped := shippedPipeline(t)
	require.Len(t, shipped.Sinks, 1)
	require.NotNil(t, shipped.Sinks[0].File)
	pipeline := fmt.Sprintf(`source:
  base_url: %s
  token_file: %s
sinks:
  - type: parquet
    dir: %s
  - type: s3
    bucket: pod
    prefix: audit/
    region: %s
    endpoint: %s
    force_path_style: true
    access_key_id: %s
    secret_access_key: %s
state:
  dir: %s
`, base, shipped.Source.TokenFile, shipped.Sinks[0].File.Dir, srv.Region, srv.Endpoint, srv.AccessKey, srv.SecretKey, shipped.State.Dir)

	m := podVolumes(t, bin, pipeline, sc.Token, shipped.Source.TokenFile)
	cfgPath := "/etc/pachca-export/pipeline.yaml"

	t.Run("as shipped", func(t *testing.T) {
		out, code := runPod(t, m, shipped.Source.TokenFile, "check", "-c", cfgPath)
		require.Equal(t, 0, code, out)
		out, code = runPod(t, m, shipped.Source.TokenFile, "run", "-c", cfgPath,
			"--from", day.Format(time.DateOnly), "--to", day.AddDate(0, 0, 1).Format(time.DateOnly))
		require.Equal(t, 0, code, out)
		name := "dt=2026-11-02/pachca-audit-2026-11-02.parquet"
		rel, err := filepath.Rel(ociimage.StateDir, shipped.Sinks[0].File.Dir)
		require.NoError(t, err)
		require.FileExists(t, filepath.Join(m.state, rel, name), "the parquet sink wrote to the claim")
		_, err = srv.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("pod"), Key: aws.String("audit/" + name)})
		require.NoError(t, err, "the S3 sink uploaded through the emptyDir")
		entries, err := os.ReadDir(m.tmp)
		require.NoError(t, err)
		require.Empty(t, entries, "no temporary file left in the emptyDir")
	})

	// A configuration error fails the Job at once: a retry would repeat it.
	// A failed run is retried: it resumes where it stopped.
	job := readManifests(t, "kubernetes/cronjob.yaml").job
	container := job.Template.Spec.Containers[0].Name
	t.Run("configuration error", func(t *testing.T) {
		out, code := runPod(t, m, shipped.Source.TokenFile, "run", "-c", cfgPath, "--from", "2026-13-01")
		require.Equal(t, 2, code, out)
		require.Equal(t, batchv1.PodFailurePolicyActionFailJob, exitAction(job, container, int32(code)))
	})

	// The repository's example pipeline.yaml copied into the ConfigMap as
	// it is: its relative state.dir and sink dir resolve against
	// /etc/pachca-export, read-only. The error says where to write instead.
	t.Run("relative paths", func(t *testing.T) {
		relative := fmt.Sprintf("source:\n  base_url: %s\n  token_file: %s\nsinks:\n  - type: parquet\n    dir: out/parquet\nstate:\n  dir: .pachca-export\n",
			base, shipped.Source.TokenFile)
		require.NoError(t, os.WriteFile(filepath.Join(m.config, "relative.yaml"), []byte(relative), 0o644))
		const want = "state: mkdir /etc/pachca-export/.pachca-export: read-only file system (the systemd units and the Kubernetes pods write only under /var/lib/pachca-export and /tmp: give state.dir and each file sink's dir an absolute path there; relative ones resolve against the configuration file's directory)"
		out, code := runPod(t, m, shipped.Source.TokenFile, "check", "-c", "/etc/pachca-export/relative.yaml")
		require.Equal(t, 1, code, out)
		require.Contains(t, out, want)
		require.Contains(t, out, "parquet: mkdir /etc/pachca-export/out: read-only file system (the systemd units")
		out, code = runPod(t, m, shipped.Source.TokenFile, "run", "-c", "/etc/pachca-export/relative.yaml")
		require.Equal(t, 1, code, out)
		require.Contains(t, out, want)
	})

	t.Run("no /tmp volume", func(t *testing.T) {
		noTmp := m
		noTmp.tmp = ""
		want := "s3: temporary directory /tmp is not writable: read-only file system (set the sink's temp_dir, or TMPDIR, to a writable directory)"
		out, code := runPod(t, noTmp, shipped.Source.TokenFile, "check", "-c", cfgPath)
		require.Equal(t, 1, code, out)
		require.Contains(t, out, want)
		out, code = runPod(t, noTmp, shipped.Source.TokenFile, "run", "-c", cfgPath,
			"--from", day.AddDate(0, 0, -1).Format(time.DateOnly), "--to", day.Format(time.DateOnly))
		require.Equal(t, 1, code, out)
		require.Contains(t, out, want)
		require.Empty(t, exitAction(job, container, int32(code)), "a failed run is retried")
	})
}

// shippedPipeline is the pipeline.yaml of cronjob.yaml's ConfigMap.
func shippedPipeline(t *testing.T) *config.Config {
	t.Helper()
	m := readManifests(t, "kubernetes/cronjob.yaml")
	cfg, err := config.Parse([]byte(m.configMaps["pachca-export-config"].Data["pipeline.yaml"]), "pipeline.yaml",
		func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

// podVolumes writes the image's tree and the volumes' contents.
func podVolumes(t *testing.T, bin, pipeline, token, tokenFile string) podMounts {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755)) // the chroot's user walks through it
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	m := podMounts{
		rootfs: filepath.Join(dir, "rootfs"),
		state:  filepath.Join(dir, "state"),
		tmp:    filepath.Join(dir, "tmp"),
		config: filepath.Join(dir, "config"),
		token:  filepath.Join(dir, "token"),
	}
	text, err := notices.Generate("..", bin)
	require.NoError(t, err)
	noticesFile := filepath.Join(dir, "THIRD_PARTY_NOTICES")
	require.NoError(t, os.WriteFile(noticesFile, text, 0o644))
	files, err := ociimage.Files(ociimage.Spec{Binary: bin, CABundle: "/etc/ssl/certs/ca-certificates.crt", Notices: noticesFile, Arch: runtime.GOARCH})
	require.NoError(t, err)
	require.NoError(t, ociimage.WriteRootfs(m.rootfs, files))
	// Mount points the container runtime creates.
	for _, p := range []string{"/etc/pachca-export", filepath.Dir(tokenFile)} {
		require.NoError(t, os.MkdirAll(filepath.Join(m.rootfs, p), 0o755))
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
		gid  int
	}{{m.state, 0o775 | os.ModeSetgid, ociimage.GID}, {m.tmp, 0o777, 0}, {m.config, 0o755, 0}, {m.token, 0o755, 0}} {
		require.NoError(t, os.Mkdir(d.path, 0o700))
		require.NoError(t, os.Chown(d.path, 0, d.gid))
		require.NoError(t, os.Chmod(d.path, d.mode))
	}
	require.NoError(t, os.WriteFile(filepath.Join(m.config, "pipeline.yaml"), []byte(pipeline), 0o644))
	tf := filepath.Join(m.token, filepath.Base(tokenFile))
	require.NoError(t, os.WriteFile(tf, []byte(token), 0o440))
	require.NoError(t, os.Chown(tf, 0, ociimage.GID))
	return m
}

// runPod runs the image's entrypoint with args inside the pod's mounts, in
// a mount namespace of its own, and returns its combined output and exit
// status.
func runPod(t *testing.T, m podMounts, tokenFile string, args ...string) (string, int) {
	t.Helper()
	const script = `set -e
R=$1 STATE=$2 TMPVOL=$3 CFG=$4 TOKEN=$5 TOKENDIR=$6; shift 6
mount --make-rprivate /
mount --bind "$R" "$R"
mount --bind "$STATE" "$R` + ociimage.StateDir + `"
if [ -n "$TMPVOL" ]; then mount --bind "$TMPVOL" "$R/tmp"; fi
mount --bind -o ro "$CFG" "$R/etc/pachca-export"
mount --bind -o ro "$TOKEN" "$R$TOKENDIR"
mount -o remount,bind,ro "$R"
exec chroot --userspec=65532:65532 "$R" ` + ociimage.BinaryPath + ` "$@"
`
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--", "sh", "-c", script, "sh",
		m.rootfs, m.state, m.tmp, m.config, m.token, filepath.Dir(tokenFile)}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=/tmp"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("unshare: %v\n%s", err, out.String())
	}
	t.Logf("%v -> %d\n%s", args, cmd.ProcessState.ExitCode(), out.String())
	return out.String(), cmd.ProcessState.ExitCode()
}
