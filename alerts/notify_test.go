package alerts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/sumfile"
)

// fakeSender records messages and fails for the user ids in fail.
type fakeSender struct {
	sent  []string // "to: content"
	fail  map[string]error
	tries int // messages tried, sent or not
}

func (s *fakeSender) PostMessage(ctx context.Context, to, content string) error {
	s.tries++
	if err := s.fail[to]; err != nil {
		return err
	}
	s.sent = append(s.sent, to+": "+content)
	return nil
}

func notifyConfig() Config {
	r := thresholdRule(3, 10*time.Minute)
	r.Recipients = []string{"10001", "10002"}
	r.Template = "{{.Count}} by {{.ActorID}}"
	return Config{Rules: []Rule{r}}
}

func notifyFindings() []Finding {
	mk := func(actor, first string, count int) Finding {
		return Finding{Rule: "Suspicious logins", Kind: KindThreshold, ActorID: actor, ActorType: "User", EventKey: "user_2fa_fail",
			Count: count, First: t0, Last: t0.Add(time.Minute), EventIDs: []string{first}}
	}
	return []Finding{mk("1", "a", 3), mk("2", "b", 4)}
}

func TestNotifyAtMostOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	sent, err := OpenSent(path)
	require.NoError(t, err)
	s := &fakeSender{}
	n, err := Notify(t.Context(), notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, []string{"10001: 3 by 1", "10002: 3 by 1", "10001: 4 by 2", "10002: 4 by 2"}, s.sent)

	// The same findings again, with the record reopened as a new run would.
	sent, err = OpenSent(path)
	require.NoError(t, err)
	n, err = Notify(t.Context(), notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, s.sent, 4)
}

// TestNotifyPartialFailure: a failed send stops Notify with the error; the
// next run sends only the messages that did not go out.
func TestNotifyPartialFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	sent, err := OpenSent(path)
	require.NoError(t, err)
	s := &fakeSender{fail: map[string]error{"10002": errors.New("giving up after 3 retries: server error 503")}}
	n, err := Notify(t.Context(), notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.EqualError(t, err, "alerts: rule Suspicious logins: giving up after 3 retries: server error 503")
	require.Equal(t, 1, n)
	require.Equal(t, []string{"10001: 3 by 1"}, s.sent)

	sent, err = OpenSent(path)
	require.NoError(t, err)
	s.fail = nil
	n, err = Notify(t.Context(), notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []string{"10001: 3 by 1", "10002: 3 by 1", "10001: 4 by 2", "10002: 4 by 2"}, s.sent)
}

func TestNotifyDryRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	sent, err := OpenSent(path)
	require.NoError(t, err)
	cfg := notifyConfig()
	cfg.Rules[0].Template = "{{.Count}} by {{.ActorID}}\nsee the log"
	var out strings.Builder
	s := &fakeSender{}
	n, err := Notify(t.Context(), cfg, notifyFindings()[:1], sent, s, true, &out)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, "alert Suspicious logins -> 10001: 3 by 1\n    see the log\nalert Suspicious logins -> 10002: 3 by 1\n    see the log\n", out.String())
	require.Empty(t, s.sent)
	require.Zero(t, sent.Len())
	require.NoFileExists(t, path)
}

func TestNotifyErrors(t *testing.T) {
	sent, err := OpenSent(filepath.Join(t.TempDir(), "alerts-sent.json"))
	require.NoError(t, err)
	f := notifyFindings()[0]
	f.Rule = "Gone"
	_, err = Notify(t.Context(), notifyConfig(), []Finding{f}, sent, &fakeSender{}, false, nil)
	require.EqualError(t, err, `alerts: finding threshold/Gone/User:1/a: no rule named "Gone"`)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := &fakeSender{}
	_, err = Notify(ctx, notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, s.sent)
}

func TestSentDurable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts-sent.json")
	s, err := OpenSent(path)
	require.NoError(t, err)
	require.False(t, s.Has("k1"))
	require.NoError(t, s.Add("k1"))
	require.NoError(t, s.Add("k1")) // twice: no change
	require.NoError(t, s.Add("k2"))
	require.True(t, s.Has("k1"))

	again, err := OpenSent(path)
	require.NoError(t, err)
	require.True(t, again.Has("k1"))
	require.True(t, again.Has("k2"))
	require.False(t, again.Has("k3"))
	require.Equal(t, 2, again.Len())

	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), `"version": 1`)
	require.Contains(t, string(b), `"k2": "`)
}

func TestSentErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "alerts-sent.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"version":1,"sent":`), 0o600))
	_, err := OpenSent(bad)
	require.EqualError(t, err, "alerts: "+bad+" is damaged (not valid JSON: cut short or edited): "+
		"restore it from a backup, or move it away: every alert of the days delivered next is then sent again")
	require.True(t, failure.IsPermanent(err))

	require.NoError(t, sumfile.Write(bad, map[string]any{"version": 2, "sent": map[string]any{}}, 0o600))
	_, err = OpenSent(bad)
	require.EqualError(t, err, "alerts: "+bad+": unknown version 2 (want 1)")

	// A directory that is gone: Add fails and records nothing.
	gone := filepath.Join(dir, "gone", "alerts-sent.json")
	s, err := OpenSent(gone)
	require.NoError(t, err)
	require.ErrorContains(t, s.Add("k"), "alerts: record a sent alert in "+gone+": ")
	require.False(t, s.Has("k"))
}

// TestNotifyBurstGrown: a burst sent, then grown at its start by an event
// published late (follow) or by a rerun over a wider range, is the same
// finding under another key: it is not sent again. A later burst of the
// actor is.
func TestNotifyBurstGrown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	cfg := Config{Rules: []Rule{thresholdRule(5, 10*time.Minute)}}
	cfg.Rules[0].Template = "{{.Count}} by {{.ActorID}} {{.Span}}"
	s := &fakeSender{}
	notify := func(e *Engine) int {
		sent, err := OpenSent(path)
		require.NoError(t, err)
		n, err := Notify(t.Context(), cfg, e.Findings(), sent, s, false, nil)
		require.NoError(t, err)
		return n
	}
	e, err := New(cfg)
	require.NoError(t, err)
	for i := range 5 {
		e.Observe(rec(fmt.Sprint("a", i), "user_2fa_fail", "1", time.Duration(i+2)*time.Minute))
	}
	require.Equal(t, 1, notify(e))

	e.Observe(rec("late", "user_2fa_fail", "1", time.Minute)) // published late, created before the burst
	require.Len(t, e.Findings(), 1)
	require.Equal(t, "late", e.Findings()[0].EventIDs[0])
	require.Zero(t, notify(e))

	// A rerun over a wider range: the burst starts the day before.
	wider, err := New(cfg)
	require.NoError(t, err)
	for i, at := range []time.Duration{-9 * time.Minute, -5 * time.Minute, time.Minute} {
		wider.Observe(rec(fmt.Sprint("w", i), "user_2fa_fail", "1", at))
	}
	for i := range 5 {
		wider.Observe(rec(fmt.Sprint("a", i), "user_2fa_fail", "1", time.Duration(i+2)*time.Minute))
	}
	// An hour later, another burst of the same actor.
	for i := range 5 {
		wider.Observe(rec(fmt.Sprint("b", i), "user_2fa_fail", "1", time.Hour+time.Duration(i)*time.Minute))
	}
	require.Len(t, wider.Findings(), 2)
	require.Equal(t, 1, notify(wider))
	require.Equal(t, []string{
		"10001: 5 by 1 between 2026-11-01T10:02:00Z and 10:06:00Z",
		"10001: 5 by 1 between 2026-11-01T11:00:00Z and 11:04:00Z",
	}, s.sent)
}

// TestNotifyBurstGoesOn: a burst that keeps going after its message (a
// follow loop's cycles read its next events) is said again each time it has
// doubled since its last message, with the count of that message, and only
// once per count across reruns. Was: one message with the first cycle's
// count, however long the attack went on.
func TestNotifyBurstGoesOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	cfg := Config{Rules: []Rule{thresholdRule(5, 10*time.Minute)}}
	cfg.Rules[0].Recipients = []string{"10001", "10002"}
	s := &fakeSender{}
	e, err := New(cfg)
	require.NoError(t, err)
	observed := 0
	upTo := func(n int) int { // one event a minute, as a cycle would add them
		for ; observed < n; observed++ {
			e.Observe(rec(fmt.Sprint("e", observed), "user_2fa_fail", "1", time.Duration(observed)*time.Minute))
		}
		sent, err := OpenSent(path)
		require.NoError(t, err)
		sends, err := Notify(t.Context(), cfg, e.Findings(), sent, s, false, nil)
		require.NoError(t, err)
		return sends
	}
	require.Equal(t, 2, upTo(5))
	require.Zero(t, upTo(9), "not yet doubled")
	require.Equal(t, 2, upTo(10))
	require.Zero(t, upTo(10), "a rerun over the same events")
	require.Zero(t, upTo(19))
	require.Equal(t, 2, upTo(20))
	require.Len(t, s.sent, 6)
	require.Equal(t, "10001: Suspicious logins: 5 user_2fa_fail events for actor 1 (User) between 2026-11-01T10:00:00Z and 10:04:00Z, last from IP 203.0.113[.]e4", s.sent[0])
	require.Equal(t, "10002: Suspicious logins: 10 user_2fa_fail events for actor 1 (User) between 2026-11-01T10:00:00Z and 10:09:00Z, last from IP 203.0.113[.]e9; still going (5 in the last message)", s.sent[3])
	require.Equal(t, "10001: Suspicious logins: 20 user_2fa_fail events for actor 1 (User) between 2026-11-01T10:00:00Z and 10:19:00Z, last from IP 203.0.113[.]e19; still going (10 in the last message)", s.sent[4])
}

// TestNotifyBurstAfterARefusedMessage: a burst whose message the API
// refused is said again once it has doubled, as one sent, but without
// "still going (N in the last message)" to the recipient who never got
// that message (was: it named the refused message's count).
func TestNotifyBurstAfterARefusedMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	cfg := Config{Rules: []Rule{thresholdRule(5, 10*time.Minute)}}
	cfg.Rules[0].Recipients = []string{"10001", "10002"}
	tooLong := fmt.Errorf("message to user 10001: %w", &extract.APIError{Status: 422, Code: "too_long", Message: "content is too long", Method: "POST", Path: "/messages"})
	s := &fakeSender{fail: map[string]error{"10001": tooLong}}
	e, err := New(cfg)
	require.NoError(t, err)
	observed := 0
	upTo := func(n int) error {
		for ; observed < n; observed++ {
			e.Observe(rec(fmt.Sprint("e", observed), "user_2fa_fail", "1", time.Duration(observed)*time.Minute))
		}
		sent, err := OpenSent(path)
		require.NoError(t, err)
		_, err = Notify(t.Context(), cfg, e.Findings(), sent, s, false, nil)
		return err
	}
	require.ErrorIs(t, upTo(5), tooLong)
	require.Equal(t, []string{"10002: Suspicious logins: 5 user_2fa_fail events for actor 1 (User) between 2026-11-01T10:00:00Z and 10:04:00Z, last from IP 203.0.113[.]e4"}, s.sent)
	delete(s.fail, "10001")
	require.NoError(t, upTo(9))
	require.Len(t, s.sent, 1, "the refused burst counts as said until it doubles")
	require.NoError(t, upTo(10))
	require.Equal(t, []string{
		"10001: Suspicious logins: 10 user_2fa_fail events for actor 1 (User) between 2026-11-01T10:00:00Z and 10:09:00Z, last from IP 203.0.113[.]e9",
		"10002: Suspicious logins: 10 user_2fa_fail events for actor 1 (User) between 2026-11-01T10:00:00Z and 10:09:00Z, last from IP 203.0.113[.]e9; still going (5 in the last message)",
	}, s.sent[1:])
	require.NoError(t, upTo(20))
	require.Equal(t, "10001: Suspicious logins: 20 user_2fa_fail events for actor 1 (User) between 2026-11-01T10:00:00Z and 10:19:00Z, last from IP 203.0.113[.]e19; still going (10 in the last message)", s.sent[3])
}

// TestNotifyPastARefusedRecipient: a recipient the API refuses (404: the
// user is gone) fails Notify, but the other recipients get every message
// (was: Notify stopped at the refusal, so one deleted account held back
// every later alert, run after run). The refused messages are reported
// once, one line each, and not tried again by the next run (was: tried and
// reported again at every run, for ever).
func TestNotifyPastARefusedRecipient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	sent, err := OpenSent(path)
	require.NoError(t, err)
	gone := fmt.Errorf("message to user 10001: %w", &extract.APIError{Status: 404, Code: "not_found", Message: "User not found", Method: "POST", Path: "/messages"})
	s := &fakeSender{fail: map[string]error{"10001": gone}}
	n, err := Notify(t.Context(), notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.ErrorIs(t, err, gone)
	require.Equal(t, `alerts: rule Suspicious logins: finding "threshold/Suspicious logins/User:1/a": message to user 10001: the API refused POST /messages (404 not_found: User not found) (not sent again)`+"\n"+
		`alerts: rule Suspicious logins: finding "threshold/Suspicious logins/User:2/b": message to user 10001: the API refused POST /messages (404 not_found: User not found) (not sent again)`, err.Error())
	require.Equal(t, 2, n)
	require.Equal(t, []string{"10002: 3 by 1", "10002: 4 by 2"}, s.sent)
	require.Equal(t, 4, s.tries)

	sent, err = OpenSent(path)
	require.NoError(t, err)
	n, err = Notify(t.Context(), notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.NoError(t, err, "reported by the run that was refused only")
	require.Zero(t, n)
	require.Equal(t, 4, s.tries, "not tried again")

	// A page that is not the API's (a proxy's 400) is no refusal of the
	// message: it stops at once, and the next run sends the message
	// (was: recorded as refused, never sent).
	sent, err = OpenSent(filepath.Join(t.TempDir(), "alerts-sent.json"))
	require.NoError(t, err)
	page := fmt.Errorf("message to user 10001: %w", &extract.APIError{Status: 400, Message: "<html>Bad Request</html>", Method: "POST", Path: "/messages", Foreign: true})
	s = &fakeSender{fail: map[string]error{"10001": page}}
	n, err = Notify(t.Context(), notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.ErrorIs(t, err, page)
	require.NotContains(t, err.Error(), "not sent again")
	require.Zero(t, n)
	require.False(t, sent.Has(sentKey(notifyFindings()[0], "10001")))

	// A failure of the API itself still stops at once.
	sent, err = OpenSent(filepath.Join(t.TempDir(), "alerts-sent.json"))
	require.NoError(t, err)
	s = &fakeSender{fail: map[string]error{"10001": errors.New("giving up after 3 retries: server error 503")}}
	n, err = Notify(t.Context(), notifyConfig(), notifyFindings(), sent, s, false, nil)
	require.EqualError(t, err, "alerts: rule Suspicious logins: giving up after 3 retries: server error 503")
	require.Zero(t, n)
	require.Empty(t, s.sent)
}

// TestSentForgets: messages sent before the time given to Forget, and
// bursts that ended before it, leave the file at its next write; later
// ones and a message a stopped process left on its way stay (was: the record only grew, and a
// loop running for months rewrote all of it, twice per message).
func TestSentForgets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	now := time.Now().UTC().Truncate(time.Second)
	old, recent := now.AddDate(0, 0, -200), now.AddDate(0, 0, -1)
	require.NoError(t, sumfile.Write(path, sentFile{Version: sentVersion,
		Sent:    map[string]time.Time{"old": old, "recent": recent},
		Bursts:  map[string][]span{"gone": {{First: old.UnixMilli(), Last: old.UnixMilli()}}, "kept": {{First: old.UnixMilli(), Last: old.UnixMilli()}, {First: recent.UnixMilli(), Last: recent.UnixMilli()}}},
		Sending: map[string]time.Time{"on its way": recent},
	}, 0o600))
	sent, err := OpenSent(path)
	require.NoError(t, err)
	sent.Forget(now.AddDate(0, 0, -100))
	require.NoError(t, sent.Add("new"))

	sent, err = OpenSent(path)
	require.NoError(t, err)
	require.False(t, sent.Has("old"))
	for _, k := range []string{"recent", "new", "on its way"} {
		require.True(t, sent.Has(k), k)
	}
	require.Equal(t, map[string][]span{"kept": {{First: recent.UnixMilli(), Last: recent.UnixMilli()}}}, sent.bursts)
}

// TestSentUsesItsClock: a message is recorded sent at the time of the
// clock given to UseClock, the one Forget's time is on: a record under a
// clock days ahead of the wall clock is forgotten when that clock's time
// passes (was: recorded by the wall clock, never forgotten by a session
// whose clock was behind it).
func TestSentUsesItsClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts-sent.json")
	sent, err := OpenSent(path)
	require.NoError(t, err)
	ahead := time.Now().AddDate(0, 0, 30)
	sent.UseClock(func() time.Time { return ahead })
	require.NoError(t, sent.Add("sent a month ahead"))
	sent.Forget(ahead.Add(time.Hour))
	require.NoError(t, sent.Add("later"))
	sent, err = OpenSent(path)
	require.NoError(t, err)
	require.False(t, sent.Has("sent a month ahead"))
	require.True(t, sent.Has("later"))
}

// TestNotifyDryRunEscapes: values of the events that a template names (an
// address, the details, where a workspace's member chooses a chat's name)
// are printed by a dry run with the characters a terminal acts on escaped,
// each alert on its lines (was: a carriage return, the C1 CSI of an escape
// sequence or a bidirectional override went to the terminal as they were).
func TestNotifyDryRunEscapes(t *testing.T) {
	sent, err := OpenSent(filepath.Join(t.TempDir(), "alerts-sent.json"))
	require.NoError(t, err)
	cfg := notifyConfig()
	cfg.Rules[0].Recipients = []string{"10001"}
	cfg.Rules[0].Template = "{{.IP}}\t{{.Details}}\nsee the log"
	f := notifyFindings()[0]
	f.IP, f.Details = "10.0.0.1\r\x1b[2Jforged", "{\"name\":\"a\u009b2Jb\u202ec\u2028d\"}"
	var out strings.Builder
	_, err = Notify(t.Context(), cfg, []Finding{f}, sent, &fakeSender{}, true, &out)
	require.NoError(t, err)
	require.Equal(t, "alert Suspicious logins -> 10001: 10.0.0.1\\r\\x1b［2Jforged\t{\"name\":\"a\\u009b2Jb\\u202ec\\u2028d\"}\n    see the log\n", out.String())
}
