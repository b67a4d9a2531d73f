package data

import (
	"errors"
	"fmt"
)

// The errors the store returns to its callers. Each says which HTTP status
// the API answers it with; anything else a store call returns is a failure
// of the database or the server (500, without detail). grid's
// *TransitionError (an illegal move of an event, 409) also comes through
// the store unchanged.

// ErrNotFound is a code that names nothing: no current unit, object,
// event or event class. The API answers 404.
var ErrNotFound = errors.New("not found")

// ErrGone is a unit code that was retired: it has versions, none of them
// current, and is never given again. The API answers 410.
var ErrGone = errors.New("retired")

// ErrExists is a class or object code that is taken. The API answers 409.
var ErrExists = errors.New("already exists")

// InvalidError is input that breaks a rule of the domain: an unknown class,
// a code that does not fit it, a geometry its class does not allow, a
// position outside every grid. The API answers 422 naming Field.
type InvalidError struct {
	Field string // the member at fault: code, class, geometry, attrs
	Msg   string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// FilterError is a query that cannot run: no or several selections, a
// value out of range, a cursor this store did not issue. The API answers
// 400 naming Param.
type FilterError struct{ Param, Msg string }

func (e *FilterError) Error() string { return e.Param + ": " + e.Msg }

func filterErr(param, format string, args ...any) error {
	return &FilterError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// ErrStale is the error of a write whose precondition failed: the object,
// event or event class changed since the client read it. The API answers
// 412.
var ErrStale = errors.New("stale version")

// StaleError is a failed precondition: the resource's ETag is not one the
// writer named. It unwraps to ErrStale. The API answers 412 with Current
// as the problem's etag.
type StaleError struct {
	Resource string // "object" when empty, "event", "event class"
	Code     string // the resource's code
	Current  string // its current ETag
}

func (e *StaleError) Error() string {
	what := e.Resource
	if what == "" {
		what = "object"
	}
	return fmt.Sprintf("%s %s has changed: its current ETag is %s", what, e.Code, e.Current)
}

func (e *StaleError) Unwrap() error { return ErrStale }

// IdempotencyError is an Idempotency-Key reused with another request body.
// The API answers 422 naming the event the key created.
type IdempotencyError struct {
	Key   string
	Event string // the event the key created
}

func (e *IdempotencyError) Error() string {
	return fmt.Sprintf("Idempotency-Key %q was used for another request body (it created event %s); use a new key for a new report", e.Key, e.Event)
}

// FatalImportError is an object stream that cannot be read to its end
// (malformed or truncated document). Nothing is written. The API answers
// 400 (413 when the body was too large).
type FatalImportError struct{ Err error }

func (e *FatalImportError) Error() string { return e.Err.Error() }
func (e *FatalImportError) Unwrap() error { return e.Err }

// ErrReporterClosed is a report sent to a Reporter after Close: the server
// is shutting down. The API answers 500.
var ErrReporterClosed = errors.New("event reporter is closed")

// NotYoursError is a move or decision reserved to certain people that the
// caller's person is not (or the credential names no person): verifying
// an event is its verifier's or a supervisor's, approving an extension a
// supervisor's, moving a task its handler's. The API answers 403.
type NotYoursError struct{ Msg string }

func (e *NotYoursError) Error() string { return e.Msg }

func notYours(format string, args ...any) error {
	return &NotYoursError{Msg: fmt.Sprintf(format, args...)}
}

// ConflictError is a write the resource's state refuses (an extension
// asked while another one waits for its decision). The API answers 409.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }
