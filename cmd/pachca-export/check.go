package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/netproxy"
	"github.com/pachca-export/pachca-export/internal/secret"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/state"
)

func checkCommand() *command {
	return &command{
		name:     "check",
		synopsis: "-c FILE [--token TOKEN] [--format text|json]",
		summary:  "check the configuration, the token and every sink, as OK/FAIL lines",
		about: `Loads FILE, shows the proxy HTTPS_PROXY and HTTP_PROXY name (failing a value
Go would ignore or misread), sends one request to tell whether the API accepts the token
(scope audit_events:read, Corporation plan), checks the state directory
(writable, its files whole; a process holding it now is named), reads the signing keys as a run does, and probes every sink (directory
writable, bucket writable, Kafka topic present, a file or S3 location that
holds this configuration's data or none yet). With alerts: rules, it reads the
token's scopes for the messages:create they need. Prints one OK or FAIL line per
item and exits 1 if any failed, 2 if one failed for what run refuses as a
configuration error (a token missing or refused with 401, 402, 403, an event
key the API refuses, a signing key others may read, a sink holding another
configuration's data, a state of another owner's token); a missing token is a
FAIL line, and the rest is checked all the same. --format json prints each line
as a JSON object instead, for a script or monitoring: {"status","item","detail"}.`,
		setup: func(fs *flags, e *env) func(context.Context, []string) error {
			cfgPath := fs.String("c", "", "the pipeline configuration `FILE` (pipeline.yaml)")
			token := fs.String("token", "", "the API `TOKEN` (prefer PACHCA_TOKEN or token_file)")
			format := fs.String("format", "text", "the lines' `FORMAT`: text (aligned lines) or json (one object a line)")
			var lf logFlags
			lf.register(fs)
			return func(ctx context.Context, _ []string) error {
				if _, err := lf.logger(e); err != nil {
					return err
				}
				if *format != "text" && *format != "json" {
					return usageErr("check: --format %q: want text or json", *format)
				}
				return e.check(ctx, *cfgPath, *token, *format == "json")
			}
		},
	}
}

// check checks what a run needs and prints one line per item, as JSON
// objects with asJSON.
func (e *env) check(ctx context.Context, cfgPath, token string, asJSON bool) error {
	cfg, err := e.loadConfig(cfgPath, token, nil)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	enc := json.NewEncoder(e.stdout)
	failed := 0
	// usage names the items that failed for what run and follow refuse
	// as configuration errors, with exit status 2: no token or one the
	// API refuses (401, 402, 403), a signing key others may read, a sink
	// holding another configuration's data. check ends on exit status 2
	// with any of them too, so that a script or an init container stops
	// there rather than retry what no retry fixes.
	var usage []string
	line := func(ok bool, what, detail string) {
		status := "OK"
		if !ok {
			status = "FAIL"
			failed++
		}
		if asJSON {
			// As verify's: the text as it is, JSON-escaped, not shown.
			enc.Encode(struct {
				Status string `json:"status"`
				Item   string `json:"item"`
				Detail string `json:"detail"`
			}{status, what, e.redact(detail)})
			return
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", status, e.shown(what), e.shown(detail))
	}
	// fail is line for an item that failed with err.
	fail := func(what string, err error) {
		if failure.IsUsage(err) && !slices.Contains(usage, what) {
			usage = append(usage, what)
		}
		line(false, what, readOnlyHint(permissionHint(err, osOwners())).Error())
	}
	detail := fmt.Sprintf("%s: %d sink(s)", cfg.File, len(cfg.Sinks))
	if w := cfg.SecretsExposed; w != "" {
		detail += "; warning: " + w
	}
	line(true, "config", detail)
	e.checkProxies(line)
	// What GET /oauth/token/info tells of a token the API accepts: its
	// owner and scopes; infoErr says why not.
	var info extract.TokenInfo
	infoErr := errors.New("no token the API accepts")
	if err := cfg.Source.RequireToken(cfg.File); err != nil {
		fail("token", failure.AsUsage(err))
	} else {
		cc := cfg.Source.ClientConfig(nil)
		cc.MaxRetries = 2
		// The probe reads the log: under the state's reader id, when a
		// run made one, it is the exporter's own read
		// (transform.drop_own_reads).
		if v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg), pipeline.FormerIdentities(cfg)...); err == nil {
			if reader, err := v.ReaderID(); err == nil {
				cc.UserAgent = extract.Agent(reader)
			}
		}
		c := extract.NewClient(cc)
		start := time.Now()
		if err := probe(ctx, cfg.Source.Timeout, c.Probe); err != nil {
			fail("token", err)
		} else {
			answer := time.Since(start)
			start = time.Now()
			infoErr = probe(ctx, cfg.Source.Timeout, func(ctx context.Context) (err error) {
				info, err = c.TokenInfo(ctx)
				return err
			})
			detail := "accepted by " + secret.URL(cfg.Source.BaseURL) + " with scope audit_events:read"
			if infoErr == nil {
				detail += fmt.Sprintf(", owner user %d", info.UserID)
				// The second request, on the first one's connection:
				// the time an answer takes without the connection's.
				answer = min(answer, time.Since(start))
			}
			if w := distanceWarning(cfg.Source, answer); w != "" {
				detail += "; warning: " + w
			}
			if w := cfg.Source.TokenFileExposed; w != "" {
				detail += "; warning: " + w
			}
			line(true, "token", detail)
			checkEventKeys(ctx, c, cfg.Source.Filters.EventKeys, cfg.Source.Timeout, line, fail)
		}
	}
	if rules := cfg.Alerts.Rules; len(rules) > 0 {
		checkAlertScope(len(rules), info.Scopes, infoErr, line)
	}
	if cfg.Signing.PrivateKeyFile != "" || len(cfg.Signing.PreviousPublicKeyFiles) > 0 {
		checkSigning(cfg, line, fail)
	}
	if v, err := state.Check(cfg.State.Dir, pipeline.Identity(cfg), pipeline.FormerIdentities(cfg)...); err != nil {
		fail("state", err)
	} else {
		detail := v.Dir() + " writable"
		if who := v.InUse(); who != "" {
			detail += "; " + who
		}
		if w := state.Exposed(cfg.State.Dir); w != "" {
			detail += "; warning: " + w
		}
		if err := pipeline.CheckOwner(v, info.UserID); infoErr == nil && err != nil {
			fail("state", err)
		} else {
			line(true, "state", detail)
		}
	}
	if d := cfg.Output.DeadLetterDir; d != "" {
		if err := pipeline.CheckDeadLetterDir(cfg.Output); err != nil {
			fail("dead letters", err)
		} else {
			line(true, "dead letters", d+" writable")
		}
	}
	set, err := sinkset.Build(ctx, cfg.Sinks, e.stdout)
	if err != nil {
		fail("sinks", err)
	} else {
		claims, claimErrs := set.Claim(ctx, sinks.Claim{Identity: pipeline.DataIdentity(cfg)})
		for i, err := range set.Check(ctx) {
			name := set.Sinks[i].Name()
			if err == nil && claimErrs[i] != nil {
				err = fmt.Errorf("%s: %w", name, claimErrs[i])
			}
			if err != nil {
				fail(fmt.Sprintf("sinks[%d]", i), err)
			} else if _, probed := set.Sinks[i].(sinks.Checker); !probed {
				line(true, fmt.Sprintf("sinks[%d]", i), name)
			} else if _, stream := set.Sinks[i].(sinks.Streamer); stream {
				// Kafka: metadata only. A probe message would reach every
				// consumer, so the brokers' ACLs are first tried by a delivery.
				line(true, fmt.Sprintf("sinks[%d]", i), name+" reachable; writing to the topic not tested: the brokers' ACLs are tried by the first delivery")
			} else {
				detail := name + " reachable and writable" + claimNote(set.Sinks[i], claims[i])
				if g, ok := set.Sinks[i].(interface{ GroupWarning() string }); ok {
					if w := g.GroupWarning(); w != "" {
						detail += "; warning: " + w
					}
				}
				line(true, fmt.Sprintf("sinks[%d]", i), detail)
			}
		}
		if err := set.Close(ctx); err != nil {
			line(false, "sinks", err.Error())
		}
	}
	w.Flush()
	if err := ctx.Err(); err != nil {
		// Stopped (SIGINT, SIGTERM: a timeout around it): what failed
		// failed for the stop, "context canceled", not for a problem of
		// its own (was: "check: 1 problem(s)", the token's line FAIL).
		return err
	}
	switch {
	case failed == 0:
	case slices.Equal(usage, []string{"token"}):
		return failure.Usagef("check: %d problem(s), the token's among them", failed)
	case len(usage) > 0:
		return failure.Usagef("check: %d problem(s), of the configuration: %s", failed, strings.Join(usage, ", "))
	}
	if failed > 0 {
		return fmt.Errorf("check: %d problem(s)", failed)
	}
	return nil
}

// checkProxies shows the proxy variables that are set as net/http reads
// them, so that a value it would ignore or misread is a FAIL line rather
// than a connection that goes another way (was: not checked; a password's
// unencoded % made every request go directly, failing as "lookup ...: no
// such host").
func (e *env) checkProxies(line func(ok bool, what, detail string)) {
	for _, p := range e.proxies() {
		if p.err != nil {
			line(false, "proxy", p.name+": "+p.err.Error())
			continue
		}
		noProxy, _ := e.lookup("NO_PROXY")
		if noProxy == "" {
			noProxy, _ = e.lookup("no_proxy")
		}
		line(true, "proxy", fmt.Sprintf("%s %s, except for loopback and NO_PROXY %q", p.name, p.proxy, noProxy))
	}
}

// proxyVar is a proxy variable net/http uses: its name, the proxy it names
// (without user info), or why net/http would ignore or misread it.
type proxyVar struct {
	name, proxy string
	err         error
}

// proxies are the proxy variables net/http uses, HTTPS_PROXY's then
// HTTP_PROXY's: of each pair, the upper-case name if set and not empty,
// as it prefers.
func (e *env) proxies() []proxyVar {
	var out []proxyVar
	for _, names := range [][]string{{"HTTPS_PROXY", "https_proxy"}, {"HTTP_PROXY", "http_proxy"}} {
		for _, name := range names {
			if v, ok := e.lookup(name); ok && v != "" {
				proxy, err := netproxy.Parse(v)
				out = append(out, proxyVar{name, proxy, err})
				break
			}
		}
	}
	return out
}

// checkSigning reads the signing keys as a run does, so that a key a run
// would refuse (unreadable, not Ed25519, open to other users) is a FAIL
// line here rather than the run's first error.
func checkSigning(cfg *config.Config, line func(ok bool, what, detail string), fail func(what string, err error)) {
	key, err := pipeline.Signer(cfg)
	if err == nil {
		_, err = pipeline.PreviousKeys(cfg)
	}
	switch {
	case err != nil:
		fail("signing", err)
	case key == nil:
		line(true, "signing", fmt.Sprintf("%d previous public key(s); no signing.private_key_file: manifests are not signed", len(cfg.Signing.PreviousPublicKeyFiles)))
	default:
		line(true, "signing", fmt.Sprintf("%s: key %s (Ed25519), %d previous public key(s)", cfg.Signing.PrivateKeyFile, sinks.KeyID(key.Public().(ed25519.PublicKey)), len(cfg.Signing.PreviousPublicKeyFiles)))
	}
}

// claimNote says whose data a file-like sink holds, for check.
func claimNote(s sinks.Sink, c sinks.ClaimResult) string {
	switch _, ok := s.(sinks.Claimer); {
	case !ok:
		return ""
	case c.Within != "":
		return fmt.Sprintf("; holds this configuration's data, inside another sink's location (%s): readers and verify of that one read it too; give the sink a location outside it", c.Within)
	case len(c.Others) > 0:
		return fmt.Sprintf("; holds other data (%s) and no marker: readers of the location would read it too, and verify reports it; give the sink a location of its own",
			strings.Join(c.Others, ", "))
	case c.Marked:
		return "; holds this configuration's data"
	case c.Adopted:
		return "; holds data without a marker, which the first run adopts"
	}
	return "; empty: the first run marks it as this configuration's"
}

// checkAlertScope tells whether the token may send the rules' messages:
// its scopes, from GET /oauth/token/info, must hold messages:create.
// Without them (infoErr: no token the API accepts, or no answer) it says
// what is not checked rather than let the first finding fail a run.
func checkAlertScope(rules int, scopes []string, infoErr error, line func(ok bool, what, detail string)) {
	const scope = "messages:create"
	switch {
	case infoErr != nil:
		line(true, "alerts", fmt.Sprintf("%d rule(s); not checked: sending needs the token's scope %s, which the API did not tell: %v", rules, scope, infoErr))
	case slices.Contains(scopes, scope):
		line(true, "alerts", fmt.Sprintf("%d rule(s); the token has scope %s", rules, scope))
	default:
		line(false, "alerts", fmt.Sprintf("%d rule(s), but the token lacks scope %s (it has %s): every finding would fail the run; give the token that scope", rules, scope, strings.Join(scopes, ", ")))
	}
}

// checkEventKeys asks the API for a minute of each filtered event key: one
// it does not know is refused (422) here rather than in the middle of a run.
// Each refused key gets its line, a configuration error as in run; any
// other error ends the check at the first key, since the next ones would
// meet it too.
func checkEventKeys(ctx context.Context, c *extract.Client, keys []string, timeout time.Duration, line func(ok bool, what, detail string), fail func(what string, err error)) {
	if len(keys) == 0 {
		return
	}
	now := time.Now().UTC()
	refused := 0
	for _, k := range keys {
		err := probe(ctx, timeout, func(ctx context.Context) error {
			_, err := c.Page(ctx, extract.Query{Start: now.Add(-time.Minute), End: now, EventKey: k}, "")
			return err
		})
		if err == nil {
			continue
		}
		fail("filters", fmt.Errorf("event key %q: %w", k, err))
		var ae *extract.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
			return
		}
		refused++
	}
	if refused == 0 {
		line(true, "filters", fmt.Sprintf("the API accepts the %d event key(s)", len(keys)))
	}
}

// probe runs one of check's requests within about twice timeout
// (source.timeout): a retry, or the wait for a 429's Retry-After, starts
// only within the first timeout, so that the line names what the API last
// did (no answer within source.timeout, the Retry-After it asked for)
// rather than "context deadline exceeded" (was: every retry until the
// whole was cut).
func probe(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	err := f(extract.WithRetryDeadline(cctx, time.Now().Add(timeout)))
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("the API did not answer within %s (twice source.timeout)", 2*timeout)
	}
	return err
}

// distanceWarning tells when an API that answers in answer needs more
// requests under way at once than source.concurrency allows to keep
// requests_per_second (was: check said nothing, and a run 275 ms away sent
// 28 of its 50 requests a second); "" when the workers suffice.
func distanceWarning(src config.Source, answer time.Duration) string {
	need := src.RequestsPerSecond * answer.Seconds()
	suggest, ok := pipeline.SuggestedConcurrency(src.Concurrency, need)
	if !ok {
		return ""
	}
	return fmt.Sprintf("the API answered in %s: %g requests per second need %.1f under way at once, and source.concurrency %d reaches about %.0f per second; set source.concurrency to %d",
		answer.Round(time.Millisecond), src.RequestsPerSecond, need, src.Concurrency, float64(src.Concurrency)/answer.Seconds(), suggest)
}
