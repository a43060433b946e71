package main

import (
	"context"
	"time"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/pipeline"
)

// clockOffsetEnv moves the command's clock, for tests that need a UTC
// midnight a few seconds away (the simulator has the same offset).
const clockOffsetEnv = "PACHCA_EXPORT_CLOCK_OFFSET"

// now is the command's clock: the wall clock, moved by clockOffsetEnv.
func (e *env) now() (func() time.Time, error) {
	v, ok := e.lookup(clockOffsetEnv)
	if !ok || v == "" {
		return time.Now, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, usageErr("%s: %v", clockOffsetEnv, err)
	}
	return func() time.Time { return time.Now().Add(d) }, nil
}

// follow runs the follow mode until SIGTERM or SIGINT (exit 0), a permanent
// failure, or failures that last longer than follow.give_up_after (exit 1).
func (e *env) follow(ctx context.Context, args []string) error {
	fs := newFlagSet("follow", e)
	cfgPath := fs.String("c", "", "path of pipeline.yaml")
	from := fs.String("from", "", "where a state that was never followed starts (RFC 3339 or YYYY-MM-DD)")
	listen := fs.String("listen", "", "address of /metrics, /healthz and /readyz (overrides follow.listen)")
	token := fs.String("token", "", "API token (prefer PACHCA_TOKEN or token_file: flags show in ps)")
	var lf logFlags
	lf.register(fs)
	log, err := lf.parse(fs, args, e)
	if err != nil {
		return err
	}
	f, err := parseTimeFlag("from", *from)
	if err != nil {
		return err
	}
	cfg, err := e.loadConfig(*cfgPath, *token)
	if err != nil {
		return err
	}
	now, err := e.now()
	if err != nil {
		return err
	}
	return follow.Run(ctx, pipeline.Options{Config: cfg, Logger: log, Now: now, Stdout: e.stdout, AlertsOut: e.stdout},
		follow.Options{From: f, Listen: *listen, Ready: func(addr string) {
			if addr != "" {
				log.Info("follow: serving /metrics, /healthz, /readyz", "addr", addr)
			}
		}})
}

