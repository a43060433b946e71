package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
)

// Refusal is one day a run did not deliver, to keep what the sinks hold.
type Refusal struct {
	Day    string
	Reason string
	// Replaceable is true when run --replace would deliver the day (fewer
	// events than the files hold); false for another identity's day, or
	// part of a day held whole.
	Replaceable bool
}

// RefusedError ends a run that refused days: every other day was
// delivered, the refused ones were left as they were and are not recorded
// as exported. It is permanent: running again changes nothing until
// someone decides (--replace, or another location).
type RefusedError struct{ Days []Refusal }

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d day(s) refused, their files left as they were: ", len(e.Days))
	hint := false
	for i, r := range e.Days {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", r.Day, r.Reason)
		hint = hint || r.Replaceable
	}
	if hint {
		b.WriteString("; if the smaller files are what you want (the API lost events, a deliberate re-export), run again with --replace")
	}
	return b.String()
}

// FailureKind implements the failure taxonomy.
func (e *RefusedError) FailureKind() failure.Kind { return failure.Permanent }

func (s *Summary) refuse(r Refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Refused = append(s.Refused, r)
}

// refusal decides, before any sink commits p, whether delivering total
// records would replace a file or object that holds more (unless the run
// may replace), a day written for another identity, or part of a day a
// sink holds whole. It asks every sink
// that keeps what it committed (sinks.Holder).
func (r *runner) refusal(ctx context.Context, p sinks.Partition, total int64) (*Refusal, error) {
	for _, s := range r.sinks {
		h, ok := s.(sinks.Holder)
		if !ok {
			continue
		}
		cctx, done := r.sinkCall(ctx, s.Name(), "read", p.Date())
		had, found, err := h.Existing(cctx, p)
		err = done(err)
		var foreign *sinks.ForeignDayError
		var whole *sinks.WholeDayError
		switch {
		case errors.As(err, &foreign):
			return &Refusal{Day: p.Date(), Reason: fmt.Sprintf("%s: %v", s.Name(), foreign)}, nil
		case errors.As(err, &whole):
			return &Refusal{Day: p.Date(), Reason: fmt.Sprintf("%s: %v", s.Name(), whole)}, nil
		case err != nil:
			return nil, fmt.Errorf("%s: %s: %w", s.Name(), p.Date(), err)
		case found && had > total && !r.s.opts.Replace:
			return &Refusal{Day: p.Date(), Replaceable: true, Reason: fmt.Sprintf(
				"%s holds %d events for %s, this run has %d", s.Name(), had, p.BaseName(), total)}, nil
		}
	}
	return nil, nil
}
