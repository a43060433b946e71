// Package alerts evaluates alert rules over exported records and sends what
// they find as direct messages, at most once per finding across runs.
//
// The run loop gives every delivered record to an Engine (Observe), asks it
// for Findings once the days are delivered, and passes them to Notify with
// the record of what was already sent (Sent) and an APISender over the API client.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/template"

	"github.com/pachca-export/pachca-export/extract"
)

// regrowth is how many times the count of its last message a burst must
// reach to be said again.
const regrowth = 2

// Default message templates, used when a rule has no template.
const (
	DefaultThresholdTemplate = `{{with .Workspace}}[{{.}}] {{end}}{{.Rule}}: {{.Count}} {{.EventKey}} events for actor {{.ActorID}} ({{.ActorType}}) {{.Span}}{{with .IP}}, last from IP {{.}}{{end}}{{with .Before}}; still going ({{.}} in the last message){{end}}`
	DefaultWatchTemplate     = `{{with .Workspace}}[{{.}}] {{end}}{{.Rule}}: {{.EventKey}} by actor {{.ActorID}} ({{.ActorType}}) {{.Span}}{{with .IP}} from IP {{.}}{{end}}{{with .EntityID}}, entity {{.}}{{end}}{{with .EntityType}} ({{.}}){{end}}, event {{index .EventIDs 0}}`
)

// templateFuncs are the functions a template may call besides Finding's
// fields and methods (Key, Span): utc formats a time as 2026-11-01T10:00:00Z;
// join joins strings, as in {{join .EventIDs ", "}}.
func templateFuncs() template.FuncMap {
	return template.FuncMap{"utc": utc, "join": strings.Join}
}

// Render returns the message of finding f under rule r: r.Template, or the
// default of r.Kind, executed over f with the values of its events
// neutralised (neutralFinding: no markup, mention, link or line break of
// theirs), cut to maxMessageChars characters. An empty message is an
// error, since the API refuses one.
func Render(r Rule, f Finding) (string, error) {
	text := r.Template
	if text == "" {
		text = DefaultThresholdTemplate
		if r.Kind == KindWatch {
			text = DefaultWatchTemplate
		}
	}
	t, err := template.New(r.Name).Funcs(templateFuncs()).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, neutralFinding(f)); err != nil {
		return "", err
	}
	msg := strings.TrimSpace(b.String())
	if msg == "" {
		return "", errors.New("the template renders an empty message")
	}
	return cutMessage(msg), nil
}

// Sender sends one direct message to a Pachca user; APISender is one.
// An error means the message may not have arrived.
type Sender interface {
	PostMessage(ctx context.Context, userID, content string) error
}

// Notify sends each finding not sent before to every recipient of its rule,
// in order, and records each (finding, recipient) in sent once its message
// went out, so a run that failed half-way resends only what is missing.
// A burst that overlaps one sent before to the recipient (grown by events
// published late, read by a wider range, or still going) counts as sent
// until it has grown to twice the count of its last message: then it is
// said again, with Before set to that count, so that an attack that goes on
// is not left at the count of its first message. Each message is
// recorded on its way before it leaves, so that a process killed before
// the answer never sends it twice (see Sent.Settle).
// It stops at the first error, except a message the API refuses (a
// recipient that does not exist, a content it does not take): the others
// go out, and the refusals are returned at the end, one line each. A
// refused message is recorded like a sent one, so that it is reported
// once, not refused again at every run. With dryRun it prints
// "alert <rule> -> <recipient>: <message>" lines to out instead, and records
// nothing. n counts the messages sent (or printed). sent must not be nil;
// s may be nil in a dry run.
func Notify(ctx context.Context, cfg Config, findings []Finding, sent *Sent, s Sender, dryRun bool, out io.Writer) (n int, err error) {
	var refusals []error // messages the API refused, the others sent
	defer func() { err = errors.Join(append(refusals, err)...) }()
	rules := make(map[string]Rule, len(cfg.Rules))
	for _, r := range cfg.Rules {
		rules[r.Name] = r
	}
	for _, f := range findings {
		r, ok := rules[f.Rule]
		if !ok {
			return n, fmt.Errorf("alerts: finding %s: no rule named %q", f.Key(), f.Rule)
		}
		msgs := map[int]string{} // by Before
		for _, to := range r.Recipients {
			key, group := sentKey(f, to), burstGroup(f, to)
			g := f
			g.Workspace = cfg.Workspace
			if group != "" {
				if before, told, ok := sent.reported(group, f.First, f.Last); ok {
					if before == 0 || f.Count < regrowth*before {
						continue
					}
					// "still going" only after a message the recipient got.
					key, g.Before = fmt.Sprintf("%s grown to %d", key, f.Count), told
				}
			}
			if sent.Has(key) {
				continue
			}
			msg, ok := msgs[g.Before]
			if !ok {
				if msg, err = Render(r, g); err != nil {
					return n, fmt.Errorf("alerts: rule %s: template: %w", r.Name, err)
				}
				msgs[g.Before] = msg
			}
			if dryRun {
				// Written at once: a log takes one record per Write.
				if _, err := fmt.Fprintf(out, "alert %s -> %s: %s\n", r.Name, to, shown(msg)); err != nil {
					return n, err
				}
				n++
				continue
			}
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if err := sent.begin(key); err != nil {
				return n, err
			}
			sp := span{First: f.First.UnixMilli(), Last: f.Last.UnixMilli(), Count: f.Count}
			if err := s.PostMessage(ctx, to, msg); err != nil {
				if refusedMessage(err) {
					// Sent again, it would be refused again, run after run:
					// it is recorded, and reported by this run only.
					refusals = append(refusals, &RefusedError{fmt.Errorf("alerts: rule %s: finding %q: %w (not sent again)", r.Name, f.Key(), err)})
					sp.Refused = true
					if err := sent.add(key, group, sp); err != nil {
						return n, err
					}
					continue
				}
				err = fmt.Errorf("alerts: rule %s: %w", r.Name, err)
				if aerr := sent.abort(key); aerr != nil {
					return n, fmt.Errorf("%w (and %v: the next run counts the message as sent)", err, aerr)
				}
				return n, err
			}
			n++
			if err := sent.add(key, group, sp); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// shown is msg as a dry run prints it, often to a terminal: continuation
// lines indented, so that each alert stays one block, and every other
// character a terminal acts on (a carriage return, the ESC or CSI of an
// escape sequence, a bidirectional override, which the event's values a
// template names may carry) escaped as in a Go string.
func shown(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		switch {
		case r == '\n':
			b.WriteString("\n    ")
		case r == ' ' || r == '\t' || strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// RefusedError is a message the API refused for what it holds: Notify
// recorded it, and does not send it again.
type RefusedError struct{ err error }

func (e *RefusedError) Error() string { return e.err.Error() }
func (e *RefusedError) Unwrap() error { return e.err }

// Refused counts the messages the API refused in an error of Notify, for
// the run's summary.
func Refused(err error) int {
	switch e := err.(type) {
	case nil:
		return 0
	case *RefusedError:
		return 1
	case interface{ Unwrap() []error }:
		n := 0
		for _, err := range e.Unwrap() {
			n += Refused(err)
		}
		return n
	}
	return 0
}

// refusedMessage reports whether the API refused one message for what it
// holds, which it will refuse again (400, 422: a content it does not take;
// 404: no such user; any other 4xx), rather than for the token (401, 402,
// 403), for now (408, 429, 5xx), or with no answer. A page that is not the
// API's (Foreign: a proxy's, a gateway's) says nothing of the message: it
// is not recorded, and the next run sends it.
func refusedMessage(err error) bool {
	var ae *extract.APIError
	if !errors.As(err, &ae) || ae.Foreign || ae.Status < 400 || ae.Status > 499 {
		return false
	}
	switch ae.Status {
	case http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return true
}

// sentKey is the key Notify records in Sent once recipient got finding f.
func sentKey(f Finding, recipient string) string {
	return f.Key() + " -> " + recipient
}

// burstGroup is what the bursts recipient got of f's rule and actor are
// recorded under in Sent, with their spans; "" for a watch finding, which
// its key identifies for good.
func burstGroup(f Finding, recipient string) string {
	if f.Kind != KindThreshold {
		return ""
	}
	return f.Kind + "/" + f.Rule + "/" + f.ActorType + ":" + f.ActorID + " -> " + recipient
}
