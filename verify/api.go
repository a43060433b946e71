package verify

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/transform"
)

// apiIDs reads the given days (YYYY-MM-DD) from the API as a run would (the
// same streams, filters and dropped keys) and returns, per day, the ids of
// the events a run would export: events that do not parse (dead letters)
// and dropped keys are left out; letters counts, per day, the events a
// run sends to its dead-letter files instead. A day of parts (a day not
// over) is read over those ranges only.
func apiIDs(ctx context.Context, cfg *config.Config, client *extract.Client, drop transform.Drop, days []string, parts map[string][]span) (ids map[string]*idSet, letters map[string]deadLetters, err error) {
	streams := []string{""}
	if keys := cfg.Source.Filters.EventKeys; len(keys) > 0 {
		streams = keys
	}
	c := &collector{out: map[string]*idSet{}, letters: map[string]deadLetters{}, drop: drop, workspace: cfg.Source.Workspace}
	var windows []extract.Window
	for _, d := range days {
		c.out[d] = newIDSet()
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, nil, err
		}
		spans, ok := parts[d]
		if !ok {
			spans = []span{{t, t.AddDate(0, 0, 1)}}
		}
		for _, s := range streams {
			for _, sp := range spans {
				windows = append(windows, extract.Window{Stream: s, Start: sp.from.UnixMilli(), End: sp.to.UnixMilli()})
			}
		}
	}
	f := extract.NewFetcher(extract.FetcherConfig{
		Client:  client,
		Workers: cfg.Source.Concurrency,
		Open:    func(w extract.Window) (extract.WindowWriter, error) { return &idWindow{c: c, day: dayOf(w.Start)}, nil },
	})
	f.Add(windows...)
	f.CloseInput()
	if err := f.Run(ctx); err != nil {
		return nil, nil, err
	}
	return c.out, c.letters, nil
}

// deadLetters counts the events of a day that a run does not export but
// dead-letters: those that do not parse, and those with the id of
// another, different event of the day.
type deadLetters struct{ unparsed, twins int }

func (d deadLetters) n() int { return d.unparsed + d.twins }

func dayOf(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.DateOnly) }

// collector gathers the ids of committed windows; windows are fetched in
// parallel.
type collector struct {
	mu        sync.Mutex
	out       map[string]*idSet
	letters   map[string]deadLetters
	drop      transform.Drop
	workspace string
}

// idWindow keeps the ids of one window until it commits: a window that is
// given up (split, failed) counts for nothing.
type idWindow struct {
	c    *collector
	day  string
	norm transform.Normalizer
	rec  transform.Record
	ids  []string
	bad  int // events that do not parse
}

func (w *idWindow) Add(ev extract.Event) error {
	if w.norm.NormalizeInto(ev.Raw, w.c.workspace, &w.rec) != nil {
		w.bad++ // a dead letter: not in the output by design
		return nil
	}
	if w.c.drop.Dropped(&w.rec) {
		return nil // a dropped key: not in the output by design
	}
	w.ids = append(w.ids, strings.Clone(w.rec.ID)) // not the whole record's text
	return nil
}

func (w *idWindow) Commit(extract.Window) error {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	for _, id := range w.ids {
		if w.c.out[w.day].add(id) {
			// The fetcher keeps back an event the API repeats (same
			// id, same bytes): this is another event with the id of
			// one before it. In one part of a window a run dead-letters
			// it; in two, it delivers both, and the day fails for an
			// id twice.
			n := w.c.letters[w.day]
			n.twins++
			w.c.letters[w.day] = n
		}
	}
	n := w.c.letters[w.day]
	n.unparsed += w.bad
	w.c.letters[w.day] = n
	return nil
}

func (w *idWindow) Abort() {}
