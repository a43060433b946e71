package main

import (
	"errors"
	"fmt"
	"io/fs"
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
	var pe *fs.PathError
	if !errors.As(err, &pe) || strings.Contains(err.Error(), "temp_dir") {
		return err
	}
	return fmt.Errorf("%w (the systemd units and the Kubernetes pods write only under /var/lib/pachca-export and /tmp: give state.dir and each file sink's dir an absolute path there; relative ones resolve against the configuration file's directory)", err)
}

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
