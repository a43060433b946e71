package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Live makes the server write new events at the wall clock while it runs, as
// a workspace in use does, and publish a share of them late: an event is
// late when it appears in the log some time after its created_at, as audit
// APIs sometimes do. The zero value writes nothing.
type Live struct {
	Rate float64 // events per second (0: no live events)
	// LateShare is the share of events that are published late, in [0, 1];
	// each of those appears with a created_at up to MaxLate in the past,
	// uniformly, and Late events at least MinLate in the past.
	LateShare        float64
	MinLate, MaxLate time.Duration
}

func (l Live) validate() error {
	var errs []error
	if l.Rate < 0 {
		errs = append(errs, fmt.Errorf("live-rate: %g is negative", l.Rate))
	}
	if l.LateShare < 0 || l.LateShare > 1 {
		errs = append(errs, fmt.Errorf("late-share: %g is not in [0, 1]", l.LateShare))
	}
	if l.MinLate < 0 || l.MaxLate < l.MinLate {
		errs = append(errs, fmt.Errorf("late delays: want 0 <= min-late (%s) <= max-late (%s)", l.MinLate, l.MaxLate))
	}
	return errors.Join(errs...)
}

// now is the server's clock: the wall clock moved by Config.ClockOffset, so
// that tests can put a day boundary a few seconds away.
func (s *Server) now() time.Time { return time.Now().Add(time.Duration(s.offset.Load())) }

// SetClockOffset moves the server's clock to the wall clock plus d from now
// on, e.g. a day ahead while the exporter under test is stopped, as if it
// had been down that long.
func (s *Server) SetClockOffset(d time.Duration) { s.offset.Store(int64(d)) }

// live writes Config.Live's events until the server closes, in ticks of
// 50 ms; each tick writes the events due since the last one.
func (s *Server) live() {
	defer s.serving.Done()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	g := newGen(s.cfg)
	g.rng = rand.New(rand.NewPCG(uint64(s.cfg.Seed), uint64(time.Now().UnixNano())))
	due, last := 0.0, time.Now()
	for {
		select {
		case <-s.done:
			return
		case <-s.liveStop:
			return
		case t := <-tick.C:
			l := s.liveConfig()
			due += t.Sub(last).Seconds() * l.Rate
			last = t
			for ; due >= 1; due-- {
				at := s.now()
				if l.LateShare > 0 && g.rng.Float64() < l.LateShare {
					at = at.Add(-l.MinLate - time.Duration(g.rng.Int64N(int64(l.MaxLate-l.MinLate)+1)))
				}
				d := g.draft(g.key())
				ip, ua := g.client(d.serverSide)
				s.write(at, d, ip, ua, g)
			}
		}
	}
}

// SetLive changes how live events are written from now on (a benchmark
// that starts with events on time and goes on with late ones); it cannot
// start live events on a server started without them, and an invalid l
// is refused.
func (s *Server) SetLive(l Live) error {
	if err := l.validate(); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	s.cfg.Live = l
	return nil
}

func (s *Server) liveConfig() Live {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	return s.cfg.Live
}

// StopLive stops writing live events; the server goes on answering. Safe
// to call twice.
func (s *Server) StopLive() { s.liveOnce.Do(func() { close(s.liveStop) }) }

// WriteEvent stores one generated event of key with created_at at, now: the
// next request sees it. For tests that need a given event at a given time (a
// burst of failed logins, an event published after an export); actor picks
// the actor's user id (0: any).
func (s *Server) WriteEvent(key string, at time.Time, actor uint64) Event {
	g, d := s.writeDraft(key, at, actor)
	ip, ua := g.client(d.serverSide)
	return s.write(at, d, ip, ua, g)
}

// EventSpec is an event a test writes with the facts a query must find
// in it given (who, from where, what details), as an investigation's
// story among the generated events; the rest is drawn as WriteEvent
// draws it.
type EventSpec struct {
	Key    string
	At     time.Time
	Actor  uint64 // the acting user; 0: drawn
	Entity uint64 // the entity's id, of the type the key's events have; 0: drawn
	// IP and UserAgent are the client's; "" is null, as in the events
	// the server writes itself.
	IP, UserAgent string
	// Details is the details object as the API sends it (identifiers as
	// numbers); "": drawn for Key.
	Details string
}

// WriteEventSpec stores the event e describes, now: the next request
// sees it.
func (s *Server) WriteEventSpec(e EventSpec) Event {
	g, d := s.writeDraft(e.Key, e.At, e.Actor)
	if e.Entity != 0 {
		d.entityID = e.Entity
	}
	if e.Details != "" {
		d.details = []byte(e.Details)
	}
	return s.write(e.At, d, e.IP, e.UserAgent, g)
}

// writeDraft drafts an event of key at at by actor (0: any user) from a
// source seeded by both, as WriteEvent does.
func (s *Server) writeDraft(key string, at time.Time, actor uint64) (*gen, draft) {
	g := newGen(s.cfg)
	g.rng = rand.New(rand.NewPCG(uint64(at.UnixNano()), uint64(actor)))
	drawn := g.user() // drawn whether used or not, so that the rest is drawn alike
	if actor == 0 {
		return g, g.draftBy(key, drawn)
	}
	d := g.draftBy(key, actor)
	d.actorID, d.actorType = actor, "User"
	return g, d
}

// write renders and stores d at at, sent from ip with user agent ua ("":
// null).
func (s *Server) write(at time.Time, d draft, ip, ua string, g *gen) Event {
	us := s.cfg.micros(at)
	raw := renderEvent(nil, g.uuid(), us/1000, d, ip, ua)
	ord := us
	if s.cfg.Disorder > 0 {
		// A log in the order of writing: an event written now, late or
		// not, takes its place at the top.
		ord = max(us, s.cfg.micros(s.now()))
	}
	s.mu.Lock()
	s.st.add(ord, us, raw, d)
	s.mu.Unlock()
	return Event{ID: eventID(raw), CreatedAt: time.UnixMilli(us / 1000).UTC(), Key: d.key, Raw: raw}
}
