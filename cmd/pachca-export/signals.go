package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// stopSignals stop a command cleanly: SIGINT (Ctrl-C), SIGTERM (systemd,
// Kubernetes, timeout) and SIGHUP (the terminal or ssh session closed).
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// exitForced is what a shell reports of a process a second interrupt
// ended: 128 + SIGINT, the process dying of the signal (dieOfInterrupt).
const exitForced = 130

// forcedLineWait bounds the writing of forcedLine before the exit.
const forcedLineWait = time.Second

// Lines of watchSignals, after "pachca-export: " in text.
const (
	stopHint   = "interrupt: stopping cleanly; interrupt again (Ctrl-C) to exit at once"
	forcedLine = "second interrupt: exiting at once (by SIGINT, status 130 in a shell) without finishing the stop; what was under way is left as after a kill (SIGKILL), and the same command started again resumes it"
)

// watchSignals cancels the command at the first stop signal, and ends the
// process with exitForced at a SIGINT after it: a user whose stop waits on
// a hung sink (a stdout pipe nobody reads, a file sink on a hung mount) or
// a slow API had no way out but kill -9 from another terminal. A second
// SIGTERM or SIGHUP does not force: systemd and Kubernetes send SIGTERM
// once, then SIGKILL at the end of their own grace, and a supervisor that
// repeats it should not cut the stop short; a closed terminal after a
// Ctrl-C leaves the stop to finish. The run and follow are built to be
// killed at any moment, so the exit loses no delivered work. It returns
// when sigs is closed, its lines written, or after exit.
func (e *env) watchSignals(sigs <-chan os.Signal, cancel func(), exit func(int)) {
	// The lines are written by a goroutine of their own, in order: a
	// stderr that blocks (a pipe into a pager nobody reads, which holds the
	// command's own logs too) must not keep the second interrupt from
	// being seen, and delays the exit by forcedLineWait at most.
	lines := make(chan func(), 2) // the hint and the forced line, no more
	done := make(chan struct{})
	go func() {
		defer close(done)
		for write := range lines {
			write()
		}
	}()
	stopping := false
	for sig := range sigs {
		switch {
		case !stopping:
			stopping = true
			cancel()
			if sig == os.Interrupt {
				lines <- func() { e.signalLine(slog.LevelWarn, stopHint, 0) }
			}
		case sig == os.Interrupt:
			written := make(chan struct{})
			lines <- func() {
				e.signalLine(slog.LevelError, forcedLine, exitForced)
				close(written)
			}
			select {
			case <-written:
			case <-time.After(forcedLineWait):
			}
			close(lines)
			exit(exitForced)
			return
		}
	}
	close(lines)
	<-done
}

// signalLine writes msg as report writes an error: "pachca-export: msg",
// or with --log-format json one object, with exit_code when code is not 0.
// It runs beside the command, so it takes no lock but the status line's
// and the workspace's.
func (e *env) signalLine(level slog.Level, msg string, code int) {
	if e.progress != nil {
		e.progress.Done() // the process may end here: no status line after it
	}
	if !e.jsonLog {
		e.stderr.Write([]byte("pachca-export: " + msg + "\n"))
		return
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, nil))
	if ws := e.workspaceName(); ws != "" {
		log = log.With("workspace", ws)
	}
	if code != 0 {
		log.Log(context.Background(), level, msg, "exit_code", code)
		return
	}
	log.Log(context.Background(), level, msg)
}

// dieOfInterrupt ends the process by SIGINT's own default action, as if
// it had never been caught: a shell running it in a script or a loop then
// stops too, where an exit status, even 130, tells it the command ended
// by itself and it goes on to the next one (a shell that got the same
// Ctrl-C waits to see how its child ended). Should the signal not end it
// (ignored where it started), the exit status is code.
func dieOfInterrupt(code int) {
	signal.Reset(os.Interrupt)
	_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
	time.Sleep(time.Second)
	os.Exit(code)
}
