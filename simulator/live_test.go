package simulator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLive: a live server writes events at about its rate, at its clock
// (moved by ClockOffset), and publishes the late share with created_at in
// the past, between MinLate and MaxLate.
func TestLive(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events = 0
	cfg.ClockOffset = -36 * time.Hour
	cfg.Live = Live{Rate: 400, LateShare: 0.25, MinLate: 2 * time.Second, MaxLate: 4 * time.Second}
	s, err := New(cfg)
	require.NoError(t, err)
	start := time.Now()
	_, err = s.Start("127.0.0.1:0")
	require.NoError(t, err)
	time.Sleep(time.Second)
	require.NoError(t, s.Close())
	elapsed := time.Since(start)
	evs := s.Events()
	require.InDelta(t, 400*elapsed.Seconds(), float64(len(evs)), 150, "about the rate")
	late := 0
	for _, ev := range evs {
		behind := start.Add(cfg.ClockOffset).Sub(ev.CreatedAt)
		switch {
		case behind > 0:
			late++
			require.GreaterOrEqual(t, behind, cfg.Live.MinLate-elapsed, "late by at least MinLate")
			require.LessOrEqual(t, behind, cfg.Live.MaxLate, "late by at most MaxLate")
		default:
			require.Less(t, -behind, elapsed+time.Second, "at the server's clock")
		}
	}
	require.InDelta(t, 0.25, float64(late)/float64(len(evs)), 0.1)
	require.Len(t, s.Events(), len(evs), "nothing written after Close")
	s.StopLive()
	s.StopLive()
}

func TestWriteEvent(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events = 10
	s, err := New(cfg)
	require.NoError(t, err)
	at := cfg.From.Add(time.Hour)
	ev := s.WriteEvent("user_2fa_fail", at, 12345)
	require.Equal(t, "user_2fa_fail", ev.Key)
	require.True(t, ev.CreatedAt.Equal(at))
	require.Contains(t, string(ev.Raw), `"actor_id":"12345"`)
	require.Len(t, s.Events(), 11)
	require.Contains(t, s.Events(), ev)
}

// TestWriteEventActor: an event WriteEvent writes by a given user names
// that user wherever the key's events name who acted: the entity of a
// user_login (the user themself), the initiator_id of a role change.
func TestWriteEventActor(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events = 10
	s, err := New(cfg)
	require.NoError(t, err)
	at := cfg.From.Add(time.Hour)
	login := s.WriteEvent("user_login", at, 12345)
	require.Contains(t, string(login.Raw), `"entity_id":"12345","entity_type":"User","actor_id":"12345"`)
	role := s.WriteEvent("user_role_changed", at, 12345)
	require.Contains(t, string(role.Raw), `"initiator_id":12345}`)
}

// TestWriteEventSpec: what the spec gives is the event's; the rest is
// drawn for the key.
func TestWriteEventSpec(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Events = 10
	s, err := New(cfg)
	require.NoError(t, err)
	at := cfg.From.Add(time.Hour)
	ev := s.WriteEventSpec(EventSpec{Key: "user_role_changed", At: at, Actor: 42, Entity: 77, IP: "198.51.100.23", UserAgent: "curl/8.5.0",
		Details: `{"new_company_role":"admin","previous_company_role":"user","initiator_id":42}`})
	require.Equal(t, "user_role_changed", ev.Key)
	require.True(t, ev.CreatedAt.Equal(at))
	require.Contains(t, string(ev.Raw), `"entity_id":"77","entity_type":"User","actor_id":"42","actor_type":"User",`+
		`"details":{"new_company_role":"admin","previous_company_role":"user","initiator_id":42},"ip_address":"198.51.100.23","user_agent":"curl/8.5.0"}`)
	srv := s.WriteEventSpec(EventSpec{Key: "kms_decrypt", At: at, Actor: 42})
	require.Contains(t, string(srv.Raw), `"ip_address":null,"user_agent":null}`)
	require.Regexp(t, `"details":\{"chat_id":\d+,"message_id":\d+,"reason":"[a-z_]+"\}`, string(srv.Raw))
	require.Len(t, s.Events(), 12)
}

func TestLiveValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Live = Live{Rate: -1, LateShare: 2, MinLate: time.Second}
	_, err := New(cfg)
	require.ErrorContains(t, err, "live-rate: -1 is negative")
	require.ErrorContains(t, err, "late-share: 2 is not in [0, 1]")
	require.ErrorContains(t, err, "min-late (1s) <= max-late (0s)")
}
