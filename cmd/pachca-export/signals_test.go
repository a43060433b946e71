package main

import (
	"bytes"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSignalsForce: only a SIGINT after the first stop signal forces the
// exit; a repeated SIGTERM (a supervisor's) or SIGHUP (the terminal closed
// after a Ctrl-C) leaves the stop to finish.
func TestSignalsForce(t *testing.T) {
	for _, c := range []struct {
		name   string
		sigs   []os.Signal
		forced bool
		hint   bool
	}{
		{name: "one interrupt", sigs: []os.Signal{os.Interrupt}, hint: true},
		{name: "two interrupts", sigs: []os.Signal{os.Interrupt, os.Interrupt}, hint: true, forced: true},
		{name: "term then interrupt", sigs: []os.Signal{syscall.SIGTERM, os.Interrupt}, forced: true},
		{name: "two terms", sigs: []os.Signal{syscall.SIGTERM, syscall.SIGTERM}},
		{name: "interrupt then hangup", sigs: []os.Signal{os.Interrupt, syscall.SIGHUP}, hint: true},
		{name: "hangup then term", sigs: []os.Signal{syscall.SIGHUP, syscall.SIGTERM}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			e := newEnv(nil, &bytes.Buffer{}, &stderr)
			sigs := make(chan os.Signal, len(c.sigs))
			for _, s := range c.sigs {
				sigs <- s
			}
			close(sigs)
			cancels, code := 0, -1
			e.watchSignals(sigs, func() { cancels++ }, func(c int) { code = c })
			require.Equal(t, 1, cancels)
			var want []string
			if c.hint {
				want = append(want, "pachca-export: "+stopHint)
			}
			if c.forced {
				want = append(want, "pachca-export: "+forcedLine)
				require.Equal(t, exitForced, code)
			} else {
				require.Equal(t, -1, code, "no exit")
			}
			require.Equal(t, strings.Join(want, "\n"), strings.TrimRight(stderr.String(), "\n"))
		})
	}
}

// TestForcedExitWithStderrBlocked: a second interrupt exits even when
// its line cannot be written (stderr a pipe nobody reads, which holds the
// command's own logs too).
func TestForcedExitWithStderrBlocked(t *testing.T) {
	blocked := make(chan struct{})
	defer close(blocked)
	e := newEnv(nil, &bytes.Buffer{}, blockingWriter(blocked))
	sigs := make(chan os.Signal, 2)
	sigs <- os.Interrupt
	sigs <- os.Interrupt
	close(sigs)
	code := -1
	e.watchSignals(sigs, func() {}, func(c int) { code = c })
	require.Equal(t, exitForced, code)
}

// blockingWriter is a writer whose writes wait until release is closed.
type blockingWriter chan struct{}

func (b blockingWriter) Write(p []byte) (int, error) {
	<-b
	return len(p), nil
}
