package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"syscall"
)

// readOnlyHint adds to an error of a read-only file system (EROFS) where
// this process may write: the systemd units and the Kubernetes pods give it
// /var/lib/pachca-export and /tmp only, and the shipped pipeline.yaml's
// relative state.dir and sink dirs, copied to /etc/pachca-export, resolve
// there, read-only ("state: mkdir /etc/pachca-export/.pachca-export:
// read-only file system", with nothing on what to change). The S3 sink's
// error of its temporary directory names what to set (temp_dir) itself. An
// error of several (errors.Join: two sinks) gets the hint on each line.
func readOnlyHint(err error) error {
	if err == nil || !errors.Is(err, syscall.EROFS) {
		return err
	}
	if joined, ok := eachJoined(err, readOnlyHint); ok {
		return joined
	}
	// Not only a *fs.PathError: a state or sink directory that exists
	// already fails its probe ("directory ... is not writable: read-only
	// file system"), which names it without one.
	var fp flagPathError
	if strings.Contains(err.Error(), "temp_dir") || errors.As(err, &fp) {
		return err
	}
	// Already where the units write: that advice would send the operator
	// where they are (was: "give state.dir ... an absolute path there" for
	// /var/lib/pachca-export remounted read-only after disk errors).
	if unitPaths.MatchString(err.Error()) {
		return fmt.Errorf("%w (/var/lib/pachca-export, where the systemd units and the Kubernetes pods write, is on a file system mounted read-only: after disk errors the kernel remounts one so (see findmnt and the kernel log), or the volume is mounted read-only)", err)
	}
	return fmt.Errorf("%w (the systemd units and the Kubernetes pods write only under /var/lib/pachca-export and /tmp: give state.dir and each file sink's dir an absolute path there; relative ones resolve against the configuration file's directory)", err)
}

// unitPaths finds, in an error's text, a path under the directory the
// systemd units and the Kubernetes pods keep the state and the files in
// (their /tmp holds neither).
var unitPaths = regexp.MustCompile(`(?:^|[ '"])/var/lib/pachca-export(?:[/ :'"]|$)`)

// eachJoined is err, an errors.Join of several (two sinks), with f applied
// to each of them, so that a hint goes on each line; false when err is not
// such a join (its text is not its errors' one a line).
func eachJoined(err error, f func(error) error) (error, bool) {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil, false
	}
	errs := j.Unwrap()
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	if strings.Join(msgs, "\n") != err.Error() {
		return nil, false
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = f(e)
	}
	return errors.Join(out...), true
}

// flagPathError is an error of a path a flag names (report's -o, demo's
// --out), which resolves against the working directory: on a read-only
// file system (a cron job's or a container's working directory) it says
// so, and readOnlyHint, whose hint is of the configuration's paths, leaves
// it as it is (was: "give state.dir and each file sink's dir an absolute
// path ...; relative ones resolve against the configuration file's
// directory", for a report.html written to the working directory).
type flagPathError struct{ error }

func (e flagPathError) Unwrap() error { return e.error }

// flagPathHint is err, and when it is of a read-only file system, what to
// give the flag instead.
func flagPathHint(err error, flag, instead string) error {
	if !errors.Is(err, syscall.EROFS) {
		return err
	}
	return flagPathError{fmt.Errorf("%w (%s names a path on a read-only file system, relative ones resolving against the working directory: give it one where this process may write%s)", err, flag, instead)}
}
