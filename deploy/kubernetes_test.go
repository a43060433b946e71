// Package deploy_test checks the deployment files under deploy/ as the
// tools that consume them would: the Kubernetes manifests decoded strictly
// into the API's own types, the systemd units with systemd-analyze.
package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/ociimage"
)

// manifests is one file of Kubernetes objects, by kind.
type manifests struct {
	configMaps map[string]corev1.ConfigMap
	pvcs       map[string]corev1.PersistentVolumeClaim
	pod        corev1.PodSpec   // of the CronJob or the Deployment
	job        *batchv1.JobSpec // of the CronJob
}

// TestKubernetes: each manifest decodes strictly into the Kubernetes API
// types (a misspelled or misplaced field fails), and its pod runs the image
// as shipped: non-root as the image's user, read-only root file system,
// no capabilities, RuntimeDefault seccomp, bounded memory, a writable
// emptyDir as TMPDIR, the state on the claim, the token from the Secret;
// and the pipeline.yaml it mounts loads and writes only into those volumes.
func TestKubernetes(t *testing.T) {
	for _, tc := range []struct {
		file    string
		command string
	}{
		{"kubernetes/cronjob.yaml", "run"},
		{"kubernetes/follow-deployment.yaml", "follow"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			m := readManifests(t, tc.file)
			requireHardenedPod(t, m.pod)
			requireWorkingVolumes(t, tc.file, m, tc.command)
		})
	}
}

// readManifests decodes every document of file strictly.
func readManifests(t *testing.T, file string) manifests {
	t.Helper()
	text, err := os.ReadFile(file)
	require.NoError(t, err)
	m := manifests{configMaps: map[string]corev1.ConfigMap{}, pvcs: map[string]corev1.PersistentVolumeClaim{}}
	workloads := 0
	for _, doc := range strings.Split(string(text), "\n---\n") {
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal([]byte(doc), &tm))
		// As the API server's strict field validation: field names match
		// case-sensitively, unknown and duplicate fields are errors.
		strict := func(obj any) {
			t.Helper()
			js, err := yaml.YAMLToJSONStrict([]byte(doc))
			require.NoError(t, err, "%s %s", file, tm.Kind)
			strictErrs, err := kjson.UnmarshalStrict(js, obj)
			require.NoError(t, err, "%s %s", file, tm.Kind)
			require.Empty(t, strictErrs, "%s %s", file, tm.Kind)
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			var cm corev1.ConfigMap
			strict(&cm)
			m.configMaps[cm.Name] = cm
		case "v1 PersistentVolumeClaim":
			var pvc corev1.PersistentVolumeClaim
			strict(&pvc)
			m.pvcs[pvc.Name] = pvc
		case "batch/v1 CronJob":
			var cj batchv1.CronJob
			strict(&cj)
			require.Equal(t, batchv1.ForbidConcurrent, cj.Spec.ConcurrencyPolicy, "one run at a time")
			m.job = &cj.Spec.JobTemplate.Spec
			m.pod = m.job.Template.Spec
			require.Equal(t, corev1.RestartPolicyNever, m.pod.RestartPolicy)
			workloads++
		case "apps/v1 Deployment":
			var d appsv1.Deployment
			strict(&d)
			require.Equal(t, int32(1), *d.Spec.Replicas, "the state lock admits one process")
			require.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type, "never two pods on one state")
			require.Equal(t, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
			m.pod = d.Spec.Template.Spec
			workloads++
		default:
			t.Fatalf("%s: unexpected object %s %s", file, tm.APIVersion, tm.Kind)
		}
	}
	require.Equal(t, 1, workloads, "%s: one CronJob or Deployment", file)
	return m
}

// requireHardenedPod checks the pod's security settings and resources.
func requireHardenedPod(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	require.NotNil(t, pod.AutomountServiceAccountToken)
	require.False(t, *pod.AutomountServiceAccountToken, "no Kubernetes API token in the pod")
	psc := pod.SecurityContext
	require.NotNil(t, psc)
	require.True(t, *psc.RunAsNonRoot)
	require.Equal(t, int64(ociimage.UID), *psc.RunAsUser, "the image's user")
	require.Equal(t, int64(ociimage.GID), *psc.RunAsGroup)
	require.Equal(t, int64(ociimage.GID), *psc.FSGroup, "volumes writable by the image's group")
	require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)

	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	csc := c.SecurityContext
	require.NotNil(t, csc)
	require.False(t, *csc.AllowPrivilegeEscalation)
	require.True(t, *csc.ReadOnlyRootFilesystem)
	require.True(t, *csc.RunAsNonRoot)
	require.Nil(t, csc.Privileged)
	require.Equal(t, []corev1.Capability{"ALL"}, csc.Capabilities.Drop)
	require.Empty(t, csc.Capabilities.Add)
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		require.Contains(t, c.Resources.Requests, r)
	}
	require.Contains(t, c.Resources.Limits, corev1.ResourceMemory)
	require.True(t, c.Resources.Limits.Memory().Cmp(resource.MustParse("256Mi")) >= 0,
		"room above the 64 MiB peak of a 1,000,000-event day, and for S3 upload parts")
	require.Empty(t, c.Command, "the image's entrypoint runs")
}

// requireWorkingVolumes checks that what the process writes lands on a
// writable volume: TMPDIR on an emptyDir, the state on the claim, every path
// of the mounted pipeline.yaml under one of them; and that the config, the
// claim and the Secret the pod names are the ones shipped.
func requireWorkingVolumes(t *testing.T, file string, m manifests, command string) {
	t.Helper()
	c := m.pod.Containers[0]
	volumes := map[string]corev1.Volume{}
	for _, v := range m.pod.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(dir string) (corev1.VolumeMount, corev1.Volume) {
		t.Helper()
		var best corev1.VolumeMount
		for _, vm := range c.VolumeMounts {
			if (dir == vm.MountPath || strings.HasPrefix(dir, vm.MountPath+"/")) && len(vm.MountPath) > len(best.MountPath) {
				best = vm
			}
		}
		require.NotEmpty(t, best.Name, "%s: no volume mounted at %s (read-only root file system)", file, dir)
		return best, volumes[best.Name]
	}
	writable := func(what, dir string) corev1.Volume {
		t.Helper()
		require.True(t, path.IsAbs(dir), "%s: %s %q must be absolute", file, what, dir)
		vm, v := mountOf(dir)
		require.False(t, vm.ReadOnly, "%s: %s %s is on a read-only mount", file, what, dir)
		require.True(t, v.EmptyDir != nil || v.PersistentVolumeClaim != nil, "%s: %s %s is on volume %s", file, what, dir, v.Name)
		return v
	}

	var tmpdir string
	for _, e := range c.Env {
		if e.Name == "TMPDIR" {
			tmpdir = e.Value
		}
	}
	require.NotNil(t, writable("TMPDIR", tmpdir).EmptyDir, "TMPDIR (the S3 sink's temporary files) on an emptyDir")

	state := writable("state volume", ociimage.StateDir)
	require.Contains(t, m.pvcs, state.PersistentVolumeClaim.ClaimName, "the claim is shipped in %s", file)

	require.Equal(t, command, c.Args[0])
	require.Equal(t, "-c", c.Args[1])
	cfgMount, cfgVol := mountOf(path.Dir(c.Args[2]))
	require.True(t, cfgMount.ReadOnly)
	require.NotNil(t, cfgVol.ConfigMap)
	cm, ok := m.configMaps[cfgVol.ConfigMap.Name]
	require.True(t, ok, "the ConfigMap is shipped in %s", file)
	pipeline, ok := cm.Data[path.Base(c.Args[2])]
	require.True(t, ok, "%s has no %s", cm.Name, path.Base(c.Args[2]))

	cfg, err := config.Parse([]byte(pipeline), file+": pipeline.yaml", func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	tokenMount, tokenVol := mountOf(cfg.Source.TokenFile)
	require.True(t, tokenMount.ReadOnly)
	require.NotNil(t, tokenVol.Secret, "the token comes from a Secret")
	require.Equal(t, "pachca-export-token", tokenVol.Secret.SecretName)
	require.Equal(t, path.Base(cfg.Source.TokenFile), "token", "the key of `kubectl create secret ... --from-literal=token=`")
	require.NotNil(t, tokenVol.Secret.DefaultMode)
	require.Zero(t, *tokenVol.Secret.DefaultMode&0o007, "not world-readable")

	require.Equal(t, state.Name, writable("state.dir", cfg.State.Dir).Name, "state.dir on the claim")
	// The exporter's own reads of the log are dropped as the shipped
	// pipeline.yaml drops them, by its reader id: not every read, a stolen
	// token's too (was: drop_event_keys: [audit_events_accessed]).
	require.True(t, cfg.Transform.DropOwnReads, "%s: transform.drop_own_reads, as the shipped pipeline.yaml", file)
	require.NotContains(t, cfg.Transform.DropEventKeys, "audit_events_accessed",
		"%s: dropping audit_events_accessed drops a stolen token's reads of the log too (README, The exporter's own reads of the log)", file)
	for i, s := range cfg.Sinks {
		switch {
		case s.File != nil:
			writable(fmt.Sprintf("sinks[%d].dir", i), s.File.Dir)
		case s.S3 != nil && s.S3.TempDir != "":
			writable(fmt.Sprintf("sinks[%d].temp_dir", i), s.S3.TempDir)
		}
	}
}

// exitAction is what the Job's pod failure policy does when the container
// exits with code, as the Job controller reads the rules: the first rule
// whose onExitCodes matches; "" when none does (the pod counts against
// backoffLimit and is retried).
func exitAction(job *batchv1.JobSpec, container string, code int32) batchv1.PodFailurePolicyAction {
	if job.PodFailurePolicy == nil {
		return ""
	}
	for _, r := range job.PodFailurePolicy.Rules {
		e := r.OnExitCodes
		if e == nil || (e.ContainerName != nil && *e.ContainerName != container) {
			continue
		}
		in := false
		for _, v := range e.Values {
			in = in || v == code
		}
		if in == (e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) {
			return r.Action
		}
	}
	return ""
}

// TestResourcesDocumented: the README's "CPU and memory limits" names the
// requests and the memory limit each manifest sets, and says they set no
// CPU limit, as they do: its measured figures under a CPU quota are what
// a user weighs before adding one.
func TestResourcesDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n### CPU and memory limits\n")
	require.True(t, ok, "README: no section CPU and memory limits")
	section, _, _ = strings.Cut(section, "\n### ")
	section = strings.Join(strings.Fields(section), " ")
	for file, what := range map[string]string{
		"kubernetes/cronjob.yaml":           "(the CronJob)",
		"kubernetes/follow-deployment.yaml": "(the follow Deployment)",
	} {
		c := readManifests(t, file).pod.Containers[0]
		require.Contains(t, section, fmt.Sprintf("`cpu: %s` %s", c.Resources.Requests.Cpu(), what), file)
		require.Contains(t, section, fmt.Sprintf("`memory: %s`", c.Resources.Requests.Memory()), file)
		require.Contains(t, section, fmt.Sprintf("%s memory limit", c.Resources.Limits.Memory()), file)
		require.NotContains(t, c.Resources.Limits, corev1.ResourceCPU, "%s: the README says no CPU limit", file)
		require.Contains(t, section, "no CPU limit", file)
	}
}

// secondWorkspace is the README's sed line (Kubernetes, "A second
// workspace in the namespace"), which makes a copy of a manifest for the
// workspace globex: every object, label, reference and the Secret's
// kubectl line get the prefix globex-, and the ConfigMap's
// source.workspace is globex.
const secondWorkspace = `sed -E -e 's/([Nn]ame: |generic |cronjob\/)pachca-export/\1globex-pachca-export/g' -e 's/workspace: acme/workspace: globex/'`

// TestKubernetesSecondWorkspace: the copy the README's sed line makes of
// each manifest lives beside the original in one namespace: no object of
// one has the other's kind and name (kubectl apply would replace it: its
// ConfigMap, its claim, its state), a Deployment selects none of the
// other's pods, every volume and the Secret are the copy's own, and its
// pipeline.yaml labels the other workspace (was: nothing said what to
// rename; a copy with its names changed by hand kept the Secret, the
// first workspace's token, and the selector of the first's pods).
func TestKubernetesSecondWorkspace(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), secondWorkspace, "README: the sed line of a second workspace")
	rename := regexp.MustCompile(`([Nn]ame: |generic |cronjob/)pachca-export`)
	for _, file := range []string{"kubernetes/cronjob.yaml", "kubernetes/follow-deployment.yaml"} {
		t.Run(file, func(t *testing.T) {
			text, err := os.ReadFile(file)
			require.NoError(t, err)
			copied := rename.ReplaceAll(text, []byte("${1}globex-pachca-export"))
			copied = bytes.Replace(copied, []byte("workspace: acme"), []byte("workspace: globex"), 1)
			copyFile := filepath.Join(t.TempDir(), "globex.yaml")
			require.NoError(t, os.WriteFile(copyFile, copied, 0o644))

			orig, other := readManifests(t, file), readManifests(t, copyFile)
			requireHardenedPod(t, other.pod)
			origObjs, otherObjs := objects(t, text), objects(t, copied)
			for key := range otherObjs {
				require.NotContains(t, origObjs, key, "%s: the copy's %s replaces the original's", file, key)
			}
			for _, v := range other.pod.Volumes {
				switch {
				case v.ConfigMap != nil:
					require.Contains(t, other.configMaps, v.ConfigMap.Name, "the copy's own ConfigMap")
				case v.PersistentVolumeClaim != nil:
					require.Contains(t, other.pvcs, v.PersistentVolumeClaim.ClaimName, "the copy's own claim")
				case v.Secret != nil:
					require.Equal(t, "globex-pachca-export-token", v.Secret.SecretName, "the copy's own token")
					require.Contains(t, string(copied), "kubectl create secret generic globex-pachca-export-token ", "the head says which Secret to create")
				}
			}
			for _, cm := range other.configMaps {
				cfg, err := config.Parse([]byte(cm.Data["pipeline.yaml"]), "pipeline.yaml", func(string) (string, bool) { return "", false })
				require.NoError(t, err)
				require.Equal(t, "globex", cfg.Source.Workspace)
			}
			if other.job != nil {
				c := other.pod.Containers[0].Name
				require.Equal(t, exitAction(orig.job, orig.pod.Containers[0].Name, 2), exitAction(other.job, c, 2), "the pod failure policy names the copy's container")
			}
			for key, sel := range otherObjs {
				if sel == nil {
					continue
				}
				s, err := metav1.LabelSelectorAsSelector(sel)
				require.NoError(t, err)
				for okey, osel := range origObjs {
					if osel != nil {
						theirs, err := metav1.LabelSelectorAsSelector(osel)
						require.NoError(t, err)
						require.False(t, s.Matches(labels.Set(osel.MatchLabels)) || theirs.Matches(labels.Set(sel.MatchLabels)),
							"%s and %s select each other's pods", key, okey)
					}
				}
			}
		})
	}
}

// objects maps "Kind/name" of each document of a manifest to its
// Deployment's selector (nil for other kinds).
func objects(t *testing.T, text []byte) map[string]*metav1.LabelSelector {
	t.Helper()
	out := map[string]*metav1.LabelSelector{}
	for _, doc := range strings.Split(string(text), "\n---\n") {
		var o struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
			Spec     struct {
				Selector *metav1.LabelSelector `json:"selector"`
			} `json:"spec"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o))
		require.NotEmpty(t, o.Metadata.Name)
		sel := o.Spec.Selector
		if o.Kind != "Deployment" {
			sel = nil
		}
		out[o.Kind+"/"+o.Metadata.Name] = sel
	}
	return out
}
