package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// forms is the end of every error of a --from/--to value in no form.
const forms = `use a date (2026-11-01 = 00:00 UTC) or RFC 3339 with Z or an offset, seconds optional (2026-11-01T10:00Z, 2026-11-01T10:00:00+03:00)`

// TestTimeFlagForms: what --from and --to read, the instant of each form,
// and the refusals. The forms of before keep their meaning; RFC 3339
// without seconds and with a lowercase t or z are new (was: "invalid time
// "2026-12-02T10:00Z"", a responder's --from of an incident refused), and
// so are offsets without a colon, +hhmm and +hh (was: the output of
// date +%Y-%m-%dT%H:%M:%S%z, "2026-12-02T10:00:00+0300", refused); a
// time of day without Z or an offset is refused, saying what to add, not
// taken for UTC or local time; --to now is the clock where the command
// takes it (run, verify).
func TestTimeFlagForms(t *testing.T) {
	clock := func() time.Time { return time.Date(2026, 12, 2, 14, 22, 33, 456789000, time.UTC) }
	utc := func(h, m, s, ms int) time.Time { return time.Date(2026, 12, 2, h, m, s, ms*1e6, time.UTC) }
	for _, c := range []struct {
		name, flag, value string
		clock             func() time.Time // nil: the command takes no now (report, follow)
		want              time.Time
		toNow             bool
		err               string
	}{
		{name: "date", flag: "from", value: "2026-12-02", want: utc(0, 0, 0, 0)},
		{name: "seconds Z", flag: "from", value: "2026-12-02T10:00:00Z", want: utc(10, 0, 0, 0)},
		{name: "seconds offset", flag: "to", value: "2026-12-02T10:00:00+03:00", want: utc(7, 0, 0, 0)},
		{name: "negative zero offset", flag: "from", value: "2026-12-02T10:00:00-00:00", want: utc(10, 0, 0, 0)},
		{name: "milliseconds", flag: "from", value: "2026-12-02T10:00:00.250Z", want: utc(10, 0, 0, 250)},
		{name: "inside a millisecond", flag: "from", value: "2026-12-02T10:00:00.0001Z", want: utc(10, 0, 0, 1)},
		{name: "minutes Z", flag: "from", value: "2026-12-02T10:00Z", want: utc(10, 0, 0, 0)},
		{name: "minutes Z to", flag: "to", value: "2026-12-02T15:00Z", want: utc(15, 0, 0, 0)},
		{name: "minutes offset", flag: "from", value: "2026-12-02T10:00+03:00", want: utc(7, 0, 0, 0)},
		{name: "minutes negative offset", flag: "to", value: "2026-12-02T10:00-05:30", want: utc(15, 30, 0, 0)},
		{name: "lowercase t z", flag: "from", value: "2026-12-02t10:00z", want: utc(10, 0, 0, 0)},
		{name: "lowercase z with seconds", flag: "from", value: "2026-12-02T10:00:00z", want: utc(10, 0, 0, 0)},
		{name: "lowercase t with offset", flag: "to", value: "2026-12-02t10:00:00+03:00", want: utc(7, 0, 0, 0)},
		{name: "now", flag: "to", value: "now", clock: clock, want: utc(14, 22, 33, 456), toNow: true},
		// date +%Y-%m-%dT%H:%M:%S%z: offsets without a colon, as +hh:mm.
		{name: "offset without colon", flag: "from", value: "2026-12-02T10:00:00+0300", want: utc(7, 0, 0, 0)},
		{name: "negative offset without colon", flag: "to", value: "2026-12-02T10:00:00-0530", want: utc(15, 30, 0, 0)},
		{name: "zero offset without colon", flag: "from", value: "2026-12-02T10:00:00+0000", want: utc(10, 0, 0, 0)},
		{name: "minutes, offset without colon", flag: "from", value: "2026-12-02T10:00+0300", want: utc(7, 0, 0, 0)},
		{name: "milliseconds, offset without colon", flag: "to", value: "2026-12-02T10:00:00.250+0300", want: utc(7, 0, 0, 250)},
		{name: "lowercase t, offset without colon", flag: "from", value: "2026-12-02t10:00:00+0300", want: utc(7, 0, 0, 0)},
		{name: "offset hours", flag: "from", value: "2026-12-02T10:00:00+03", want: utc(7, 0, 0, 0)},
		{name: "negative offset hours", flag: "to", value: "2026-12-02T10:00-05", want: utc(15, 0, 0, 0)},

		{name: "minutes without offset", flag: "from", value: "2026-12-02T10:00",
			err: `--from: invalid time "2026-12-02T10:00": no Z nor offset, so UTC or local time? add Z for UTC (2026-12-02T10:00Z) or the offset (2026-12-02T10:00+03:00)`},
		{name: "seconds without offset", flag: "to", value: "2026-12-02t15:00:00", clock: clock,
			err: `--to: invalid time "2026-12-02t15:00:00": no Z nor offset, so UTC or local time? add Z for UTC (2026-12-02T15:00:00Z) or the offset (2026-12-02T15:00:00+03:00)`},
		{name: "space", flag: "from", value: "2026-12-02 10:00Z", err: `--from: invalid time "2026-12-02 10:00Z": ` + forms},
		{name: "offset of one digit", flag: "from", value: "2026-12-02T10:00:00+3", err: `--from: invalid time "2026-12-02T10:00:00+3": ` + forms},
		{name: "offset of three digits", flag: "from", value: "2026-12-02T10:00:00+030", err: `--from: invalid time "2026-12-02T10:00:00+030": ` + forms},
		{name: "offset of five digits", flag: "from", value: "2026-12-02T10:00:00+03000", err: `--from: invalid time "2026-12-02T10:00:00+03000": ` + forms},
		{name: "offset of 25 hours", flag: "from", value: "2026-12-02T10:00:00+2500", err: `--from: invalid time "2026-12-02T10:00:00+2500": ` + forms},
		{name: "offset of 61 minutes", flag: "from", value: "2026-12-02T10:00:00+0361", err: `--from: invalid time "2026-12-02T10:00:00+0361": ` + forms},
		{name: "offset half with a colon", flag: "from", value: "2026-12-02T10:00:00+03:0", err: `--from: invalid time "2026-12-02T10:00:00+03:0": ` + forms},
		{name: "date with an offset", flag: "from", value: "2026-12-02+0300", err: `--from: invalid time "2026-12-02+0300": ` + forms},
		{name: "hour only, offset without colon", flag: "from", value: "2026-12-02T10+0300", err: `--from: invalid time "2026-12-02T10+0300": ` + forms},
		{name: "compact time, offset without colon", flag: "from", value: "2026-12-02T100000+0300", err: `--from: invalid time "2026-12-02T100000+0300": ` + forms},
		{name: "hour only", flag: "from", value: "2026-12-02T10Z", err: `--from: invalid time "2026-12-02T10Z": ` + forms},
		{name: "word where now is taken", flag: "to", value: "tomorrow", clock: clock, err: `--to: invalid time "tomorrow": ` + forms + `, or now`},
		{name: "now where it is not taken", flag: "to", value: "now", err: `--to: invalid time "now": ` + forms},
		{name: "from now", flag: "from", value: "now", clock: clock, err: `--from: invalid time "now": ` + forms},
		{name: "before 1970", flag: "to", value: "1969-12-31T23:00Z", err: `--to: invalid time "1969-12-31T23:00Z": before 1970, older than any event the API holds`},
	} {
		t.Run(c.name, func(t *testing.T) {
			from, to := c.value, ""
			if c.flag == "to" {
				from, to = "", c.value
			}
			f, tt, toNow, err := parseRange(from, to, c.clock)
			if c.err != "" {
				require.EqualError(t, err, c.err)
				return
			}
			require.NoError(t, err)
			got := f
			if c.flag == "to" {
				got = tt
			}
			require.Equal(t, c.want, got)
			require.Equal(t, time.UTC, got.Location())
			require.Equal(t, c.toNow, toNow)
		})
	}
}

// TestTimeFlagRefusals: each command's refusal of a --from/--to value is
// one line naming the flag and the forms, exit 2, before anything runs.
func TestTimeFlagRefusals(t *testing.T) {
	path := writeConfig(t, "http://127.0.0.1:1", "x", goodConfig)
	for _, c := range []struct {
		args []string
		line string
	}{
		{[]string{"run", "-c", path, "--from", "2026-12-02T10:00", "--to", "now"},
			`--from: invalid time "2026-12-02T10:00": no Z nor offset, so UTC or local time? add Z for UTC (2026-12-02T10:00Z) or the offset (2026-12-02T10:00+03:00)`},
		{[]string{"run", "-c", path, "--from", "2026-12-02T10:00Z", "--to", "15:00"},
			`--to: invalid time "15:00": ` + forms + `, or now`},
		{[]string{"verify", "-c", path, "--from", "2026-12-02", "--to", "today"},
			`--to: invalid time "today": ` + forms + `, or now`},
		{[]string{"report", "-c", path, "--from", "2026-12-02T10:00Z", "--to", "now"},
			`report: --to now: the exported output ends behind now (by period.lag at least), so the period would not be covered; give the end of what was exported: ` + strings.TrimPrefix(forms, "use ")},
		{[]string{"report", "-c", path, "--from", "2026-12-02T10:00", "--to", "2026-12-02T15:00Z"},
			`--from: invalid time "2026-12-02T10:00": no Z nor offset, so UTC or local time? add Z for UTC (2026-12-02T10:00Z) or the offset (2026-12-02T10:00+03:00)`},
		{[]string{"follow", "-c", path, "--from", "now"},
			`--from: invalid time "now": ` + forms},
	} {
		t.Run(strings.Join(c.args[3:], " "), func(t *testing.T) {
			code, stdout, stderr := runMain(t, c.args...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			require.Equal(t, "pachca-export: "+c.line+"\n", stderr)
		})
	}
}

// TestRunToNow: run --from T --to now plans up to now minus period.lag and
// says so in the note of a --to later than that (was: "invalid time
// "now"", no way to say it but a time typed out).
func TestRunToNow(t *testing.T) {
	path := writeConfig(t, "http://127.0.0.1:1", "x", goodConfig)
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	before := time.Now().Add(-2 * time.Minute).Truncate(time.Millisecond) // period.lag's default
	code, stdout, stderr := runMain(t, "run", "-c", path, "--from", from.Format("2006-01-02T15:04Z"), "--to", "now", "--dry-run")
	after := time.Now().Add(-2 * time.Minute)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `note +--to \S+ is later than now minus period.lag; exporting up to \S+\n`, stdout)
	m := regexp.MustCompile(`range +(\S+) \.\. (\S+)\n`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	require.Equal(t, from.Format(time.RFC3339Nano), m[1])
	end, err := time.Parse(time.RFC3339Nano, m[2])
	require.NoError(t, err)
	require.False(t, end.Before(before) || end.After(after), "range end %s not now minus period.lag (%s .. %s)", end, before, after)
}
