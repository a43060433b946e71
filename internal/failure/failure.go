// Package failure is the project's one error taxonomy. Callers branch on it
// in two places only: the command maps a usage error to exit status 2 (any
// other error is a failed run, exit 1), and a loop that runs for long (the
// follow mode) waits and tries again after a transient error but stops at a
// permanent one.
//
// An error is classified by the first error in its chain that says what it
// is (a *Error of this package, or any error with a FailureKind method);
// an error that says nothing is transient: the next attempt may succeed.
package failure

import (
	"errors"
	"fmt"
)

// Kind is what an error means for the caller.
type Kind uint8

const (
	// Transient: the same request may succeed later (a 5xx, a network
	// failure, a full disk, a broker that is down).
	Transient Kind = iota
	// Permanent: trying again cannot help until someone changes something
	// (a rejected token, a plan without the audit log, damaged state).
	Permanent
	// Usage: what was asked is wrong (a bad flag, a bad configuration, a
	// range that cannot be exported); exit status 2.
	Usage
)

func (k Kind) String() string {
	switch k {
	case Permanent:
		return "permanent"
	case Usage:
		return "usage"
	}
	return "transient"
}

// Error gives an error its kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the classified error.
func (e *Error) Unwrap() error { return e.Err }

// FailureKind implements the classification.
func (e *Error) FailureKind() Kind { return e.Kind }

// Usagef returns a usage error with a formatted message (%w allowed).
func Usagef(format string, args ...any) error {
	return &Error{Kind: Usage, Err: fmt.Errorf(format, args...)}
}

// AsUsage marks err as a usage error; nil stays nil.
func AsUsage(err error) error { return mark(Usage, err) }

// AsPermanent marks err as permanent; nil stays nil.
func AsPermanent(err error) error { return mark(Permanent, err) }

// Permanentf returns a permanent error with a formatted message (%w allowed).
func Permanentf(format string, args ...any) error {
	return &Error{Kind: Permanent, Err: fmt.Errorf(format, args...)}
}

func mark(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err}
}

// KindOf classifies err: the kind of the first error in its chain (joined
// errors included) that has one; Transient when none has. For joined errors
// the most severe kind wins (Usage, then Permanent).
func KindOf(err error) Kind {
	var k interface{ FailureKind() Kind }
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		worst := Transient
		for _, e := range j.Unwrap() {
			worst = max(worst, KindOf(e))
		}
		return worst
	}
	if errors.As(err, &k) {
		return k.FailureKind()
	}
	return Transient
}

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool { return err != nil && KindOf(err) == Usage }

// IsPermanent reports whether err is permanent (a usage error is too: it
// will not go away by waiting).
func IsPermanent(err error) bool { return err != nil && KindOf(err) >= Permanent }
