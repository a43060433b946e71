package ocsfschema_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
)

// sharedDir is the project's shared OCSF reference, relative to this
// package's directory (beside the repository, as in CI).
const sharedDir = "../../../shared/reference/ocsf-1.3.0"

// TestVendoredSchemaIsCurrent: where the shared reference is beside the
// repository, every vendored file equals it, except the files the shared
// reference lacks (NOTICE, includes/), which come from the same upstream tag.
func TestVendoredSchemaIsCurrent(t *testing.T) {
	if _, err := os.Stat(sharedDir); err != nil {
		t.Skipf("no shared reference beside the repository (%v); the vendored copy is used", err)
	}
	vendored := filepath.FromSlash(ocsfschema.VendoredDir)
	n := 0
	err := filepath.WalkDir(vendored, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(vendored, p)
		require.NoError(t, err)
		if rel == "NOTICE" || strings.HasPrefix(rel, "includes"+string(filepath.Separator)) {
			_, err := os.Stat(filepath.Join(sharedDir, rel))
			require.True(t, os.IsNotExist(err), "%s is in the shared reference now: compare it", rel)
			return nil
		}
		want, err := os.ReadFile(filepath.Join(sharedDir, rel))
		require.NoError(t, err)
		got, err := os.ReadFile(p)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s differs from the shared reference: copy it again", rel)
		n++
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, n, 40)
}

func TestLoadCompilesClasses(t *testing.T) {
	s, err := ocsfschema.Load()
	require.NoError(t, err)
	for _, c := range []struct {
		uid      int64
		name     string
		category int64
	}{
		{0, "base_event", 0}, {2006, "data_security_finding", 2}, {3001, "account_change", 3},
		{3002, "authentication", 3}, {3004, "entity_management", 3}, {3005, "user_access", 3},
		{3006, "group_management", 3}, {6001, "web_resources_activity", 6}, {6003, "api_activity", 6},
	} {
		cl, ok := s.Class(c.uid)
		require.True(t, ok, c.name)
		require.Equal(t, c.name, cl.Name)
		require.Equal(t, c.category, cl.CategoryUID)
		for _, a := range []string{"class_uid", "category_uid", "activity_id", "type_uid", "time", "metadata", "severity_id"} {
			require.Equal(t, "required", cl.Attrs[a].Requirement, "%s.%s", c.name, a)
		}
	}
	auth, _ := s.Class(3002)
	require.Equal(t, "Logon", auth.Attrs["activity_id"].Enum["1"])
	require.Equal(t, "Other", auth.Attrs["activity_id"].Enum["99"], "the dictionary's values are merged in")
	require.Equal(t, "Authentication: Logon", auth.Attrs["type_uid"].Enum["300201"])
	require.Equal(t, "", auth.Attrs["actor"].Profile, "authentication resets the host profile of actor")
	gm, _ := s.Class(3006)
	require.Equal(t, "host", gm.Attrs["actor"].Profile)
	require.Equal(t, []string{"privileges", "user"}, gm.Constraints["at_least_one"])
	finding, _ := s.Class(2006)
	require.Equal(t, "New", finding.Attrs["status_id"].Enum["1"], "the class's captions win")
	require.Equal(t, "Unknown", finding.Attrs["status_id"].Enum["0"])
	user, ok := s.Object("user")
	require.True(t, ok)
	require.Equal(t, "username_t", user.Attrs["name"].Type)
	require.Equal(t, []string{"account", "name", "uid"}, user.Constraints["at_least_one"])
}

// validLogon is a complete, valid Authentication event.
const validLogon = `{
  "activity_id": 1, "activity_name": "Logon",
  "category_uid": 3, "category_name": "Identity & Access Management",
  "class_uid": 3002, "class_name": "Authentication",
  "type_uid": 300201, "type_name": "Authentication: Logon",
  "severity_id": 1, "severity": "Informational",
  "status_id": 1, "status": "Success",
  "time": 1747319400000, "time_dt": "2025-05-15T14:30:00.000Z",
  "metadata": {"version": "1.3.0", "product": {"name": "Pachca", "vendor_name": "Pachca"},
    "uid": "e1", "profiles": ["datetime", "host"]},
  "actor": {"user": {"uid": "12345", "type": "User"}},
  "user": {"uid": "12345", "type": "User"},
  "service": {"name": "Pachca"},
  "src_endpoint": {"ip": "192.168.1.100"},
  "http_request": {"user_agent": "Mozilla/5.0"},
  "is_mfa": true,
  "unmapped": {"details": {"a": [1, {"b": null}]}}
}`

func TestValidate(t *testing.T) {
	s, err := ocsfschema.Load()
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		edit func(ev map[string]any)
		want string // "" = valid
	}{
		{"valid", func(map[string]any) {}, ""},
		{"missing required", func(ev map[string]any) { delete(ev, "user") }, "user: required attribute missing"},
		{"missing required of object", func(ev map[string]any) { delete(obj(ev, "metadata"), "version") }, "metadata.version: required attribute missing"},
		{"type_uid rule", func(ev map[string]any) { ev["type_uid"] = json.Number("300202") }, "want class_uid*100+activity_id"},
		{"activity not in class", func(ev map[string]any) { ev["activity_id"] = json.Number("7") }, "activity_id: 7 is not a value of the enum"},
		{"sibling caption", func(ev map[string]any) { ev["activity_name"] = "Login" }, `activity_name: "Login", want "Logon"`},
		{"sibling of Other is free", func(ev map[string]any) {
			ev["activity_id"], ev["activity_name"], ev["type_uid"] = json.Number("99"), "Custom", json.Number("300299")
			ev["type_name"] = "Authentication: Other"
		}, ""},
		{"unknown attribute", func(ev map[string]any) { ev["entity"] = map[string]any{"uid": "1"} }, "entity: not an attribute"},
		{"unknown attribute of object", func(ev map[string]any) { obj(ev, "user")["ip"] = "1.2.3.4" }, "user.ip: not an attribute"},
		{"wrong scalar type", func(ev map[string]any) { ev["time"] = "2025-05-15" }, "time: want an integer"},
		{"integer_t overflow", func(ev map[string]any) { ev["severity_id"] = json.Number("4294967297") }, "overflows a 32-bit"},
		{"ip pattern", func(ev map[string]any) { obj(ev, "src_endpoint")["ip"] = "not-an-ip" }, "does not match the ip_t pattern"},
		{"datetime pattern", func(ev map[string]any) { ev["time_dt"] = "yesterday" }, "does not match the datetime_t pattern"},
		{"_dt needs the datetime profile", func(ev map[string]any) { obj(ev, "metadata")["profiles"] = []any{"host"} }, "time_dt: not an attribute"},
		{"profile attribute without its profile", func(ev map[string]any) {
			ev["class_uid"], ev["type_uid"], ev["class_name"] = json.Number("3006"), json.Number("300603"), "Group Management"
			ev["activity_name"], ev["type_name"] = "Add User", "Group Management: Add User"
			ev["activity_id"] = json.Number("3")
			delete(ev, "service")
			delete(ev, "is_mfa")
			ev["group"] = map[string]any{"uid": "7"}
			obj(ev, "metadata")["profiles"] = []any{"datetime"}
		}, `actor: attribute of profile "host"`},
		{"undeclared profile", func(ev map[string]any) { obj(ev, "metadata")["profiles"] = []any{"datetime", "host", "osint"} }, "osint: required attribute missing"},
		{"at_least_one", func(ev map[string]any) { ev["user"] = map[string]any{"type": "User"} }, "user: at least one of [account name uid]"},
		{"class constraint", func(ev map[string]any) { delete(ev, "service") }, "at least one of [service dst_endpoint]"},
		{"array wanted", func(ev map[string]any) { obj(ev, "metadata")["profiles"] = "datetime" }, "want an array"},
		{"object wanted", func(ev map[string]any) { ev["user"] = "12345" }, "user: want an object"},
		{"string enum", func(ev map[string]any) { obj(ev, "http_request")["http_method"] = "FETCH" }, `"FETCH" is not a value of the enum`},
		{"deprecated", func(ev map[string]any) { obj(ev, "actor")["invoked_by"] = "x" }, "actor.invoked_by: deprecated"},
		{"max_len", func(ev map[string]any) { obj(ev, "user")["uid"] = strings.Repeat("я", 65536) }, "65536 characters, string_t allows 65535"},
		{"unknown class", func(ev map[string]any) { ev["class_uid"] = json.Number("3999") }, "unknown class 3999"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ocsfschema.Decode([]byte(validLogon))
			require.NoError(t, err)
			c.edit(ev)
			err = s.Validate(ev)
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
		})
	}
}

func obj(ev map[string]any, name string) map[string]any { return ev[name].(map[string]any) }
