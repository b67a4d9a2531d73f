package data

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// Transition is a move of an event through the workflow.
type Transition struct {
	To         grid.EventStatus
	Actor      string
	Note       string
	Department string // re-dispatch to this department
	IfVersion  int    // > 0: the version the actor saw (If-Match)
	// Handler names the handler a dispatch sends the event to: an active
	// handler of the department it goes to (0: none).
	Handler int64
	// Person is the caller's person (nil: the credential names none).
	// Verifying an event that has a verifier is theirs or a supervisor's.
	Person *PersonRow
	// OwnWork: the caller moves their own task (POST …/work), which only
	// the event's handler (to handling, handled) or its verifier or a
	// supervisor (to verified, returned) may.
	OwnWork bool
}

// DefaultVerifyLimit is the time a worker has to verify a handled event
// on site (核查时限), on the working calendar.
var DefaultVerifyLimit = grid.Limit{Amount: 1, Unit: grid.WorkingDays}

// supervises says whether p is an active supervisor over grid code (” unit:
// the whole city).
func supervises(p *PersonRow, code string) bool {
	return p != nil && p.Role == grid.RoleSupervisor && p.Status == grid.PersonActive && strings.HasPrefix(code, p.UnitCode)
}

// checkPeople applies the rules of issue 16 on who may make a move.
func checkPeople(ev *Event, t Transition) error {
	p := t.Person
	verifying := t.To == grid.StatusVerified || t.To == grid.StatusReturned
	if verifying && ev.Verifier != nil {
		if (p == nil || p.ID != ev.Verifier.ID) && !supervises(p, ev.GridCode) {
			return notYours("verifying event %s is the work of its verifier, %s (person %d), or of a supervisor of grid %s; this credential speaks for %s",
				ev.Code, ev.Verifier.Name, ev.Verifier.ID, ev.GridCode, personText(p))
		}
	}
	if !t.OwnWork {
		return nil
	}
	switch {
	case verifying:
		if ev.Verifier == nil && !supervises(p, ev.GridCode) {
			return notYours("event %s has no verifier: only a supervisor of grid %s verifies it as their own work; this credential speaks for %s", ev.Code, ev.GridCode, personText(p))
		}
	case t.To == grid.StatusHandling || t.To == grid.StatusHandled:
		if ev.Handler == nil || p == nil || p.ID != ev.Handler.ID {
			return notYours("moving event %s to %s is the work of its handler (%s); this credential speaks for %s", ev.Code, t.To, handlerText(ev), personText(p))
		}
	default:
		return notYours("a person's own work moves an event to handling or handled (its handler) or verified or returned (its verifier); %s is the command centre's move (POST /v1/events/%s/transitions)", t.To, ev.Code)
	}
	return nil
}

func personText(p *PersonRow) string {
	if p == nil {
		return "no person"
	}
	return fmt.Sprintf("%s (person %d, %s)", p.Name, p.ID, p.Role)
}

func handlerText(ev *Event) string {
	if ev.Handler == nil {
		return "none was named at dispatch"
	}
	return fmt.Sprintf("%s, person %d", ev.Handler.Name, ev.Handler.ID)
}

// TransitionEvent moves an event, appends the move to its log and to the
// live feed, in one transaction under the event's row lock. An illegal
// move is a *grid.TransitionError, a stale precondition a *StaleError, an
// unknown department an *InvalidError; nothing is written then.
func (s *Store) TransitionEvent(ctx context.Context, code string, t Transition) (*Event, error) {
	return s.TransitionEventAt(ctx, code, t, time.Now())
}

// TransitionEventAt is TransitionEvent with the clock given.
func (s *Store) TransitionEventAt(ctx context.Context, code string, t Transition, now time.Time) (*Event, error) {
	now = now.Round(time.Microsecond).In(s.cityTime())
	if t.Actor == "" {
		return nil, invalid("actor", "a transition names its actor")
	}
	var ev *Event
	err := retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			cfg, err := s.eventConfig(ctx, tx)
			if err != nil {
				return err
			}
			ev, err = scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+eventFrom+` WHERE e.code = $1 FOR UPDATE OF e`, code), now, cfg.Calendar.Location())
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			// Before the precondition: a caller out of scope learns nothing
			// of the event's version.
			if err := checkUnits(ctx, ev.GridCode); err != nil {
				return err
			}
			if t.IfVersion > 0 && t.IfVersion != ev.Version {
				return &StaleError{Resource: "event", Code: code, Current: ev.ETag()}
			}
			if err := grid.CheckTransition(ev.Status, t.To, ev.Department, t.Department); err != nil {
				var te *grid.TransitionError
				if errors.As(err, &te) {
					return err
				}
				return invalid("department", "%v", err)
			}
			if ev.Status == grid.StatusSuspended {
				if err := grid.CheckResume(ev.SuspendedFrom, t.To); err != nil {
					return err
				}
			}
			if t.Department != "" {
				d, ok := cfg.Departments[t.Department]
				if !ok {
					return invalid("department", "unknown department %q (GET /v1/departments lists them)", t.Department)
				}
				ev.Department, ev.DepartmentName = d.Code, d.Name
			}
			if err := checkPeople(ev, t); err != nil {
				return err
			}
			if err := s.moveSideEffects(ctx, tx, cfg, ev, t, now); err != nil {
				return err
			}
			from := ev.Status
			ev.Status, ev.UpdatedAt, ev.Version = t.To, now, ev.Version+1
			if t.To == grid.StatusHandled && ev.HandledAt == nil {
				ev.HandledAt = &now
			}
			if t.To.Final() {
				ev.ClosedAt = &now
			}
			ev.Overdue = grid.Overdue(ev.Status, ev.Deadline, now)
			var n int
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(n), 0) + 1 FROM event_log WHERE event_code = $1`, code).Scan(&n); err != nil {
				return err
			}
			var personID, handlerID *int64
			if t.Person != nil {
				personID = &t.Person.ID
			}
			if t.Handler != 0 {
				handlerID = &t.Handler
			}
			entry := LogEntry{N: n, From: from, To: t.To, Actor: t.Actor, Note: t.Note, Department: t.Department, At: now,
				Kind: "transition", PersonID: personID, Handler: handlerID}
			b := &pgx.Batch{}
			b.Queue(`UPDATE events SET status = $2, department_code = $3, handled_at = $4, closed_at = $5, updated_at = $6, version = $7,
					handler_id = $8, verify_due = $9, verified_by = $10, verified_at = $11, suspended_at = $12, suspended_from = nullif($13, ''),
					deadline = $14
				WHERE code = $1`, code, string(ev.Status), ev.Department, ev.HandledAt, ev.ClosedAt, now, ev.Version,
				refID(ev.Handler), ev.VerifyDue, refID(ev.VerifiedBy), ev.VerifiedAt, ev.SuspendedAt, string(ev.SuspendedFrom), ev.Deadline)
			b.Queue(`INSERT INTO event_log (event_code, n, from_status, to_status, actor, note, department_code, at, person_id)
				VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8, $9)`, code, n, string(from), string(t.To), t.Actor, t.Note, t.Department, now, personID)
			if err := queueFeed(b, "transition", from, []FeedBody{feedBody("transition", ev, from, entry)}); err != nil {
				return err
			}
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
			ev.Log, err = readLog(ctx, tx, code, s.cityTime())
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func refID(p *PersonRef) *int64 {
	if p == nil {
		return nil
	}
	return &p.ID
}

// moveSideEffects sets what a move changes of an event besides its
// status: the handler a dispatch names, the verification due time, who
// verified, the suspension and the deadline a lifted one moves.
func (s *Store) moveSideEffects(ctx context.Context, tx pgx.Tx, cfg *EventConfig, ev *Event, t Transition, now time.Time) error {
	if t.Handler != 0 && t.To != grid.StatusDispatched {
		return invalid("handler", "a handler is named only when dispatching")
	}
	switch t.To {
	case grid.StatusDispatched:
		if t.Department != "" {
			ev.Handler = nil // another department: its own handler, if named
		}
		if t.Handler != 0 {
			h, err := getPerson(ctx, tx, t.Handler)
			if errors.Is(err, ErrNotFound) {
				return invalid("handler", "no person %d", t.Handler)
			}
			if err != nil {
				return err
			}
			if h.Role != grid.RoleHandler || h.Status != grid.PersonActive || h.Department != ev.Department {
				return invalid("handler", "person %d (%s) is an %s %s of department %q: the handler must be an active handler of department %s",
					h.ID, h.Name, h.Status, h.Role, h.Department, ev.Department)
			}
			ev.Handler = &PersonRef{ID: h.ID, Name: h.Name, Role: h.Role}
		}
	case grid.StatusHandled:
		due, err := cfg.Calendar.Deadline(now, DefaultVerifyLimit)
		if err != nil {
			return err
		}
		due = due.Round(time.Microsecond)
		ev.VerifyDue = &due
	case grid.StatusVerified:
		ev.VerifiedAt = &now
		ev.VerifiedBy = nil
		if t.Person != nil {
			ev.VerifiedBy = &PersonRef{ID: t.Person.ID, Name: t.Person.Name, Role: t.Person.Role}
		}
	case grid.StatusSuspended:
		if strings.TrimSpace(t.Note) == "" {
			return invalid("note", "a suspension gives its reason in note")
		}
		ev.SuspendedAt, ev.SuspendedFrom = &now, ev.Status
	}
	if ev.Status == grid.StatusSuspended && ev.SuspendedAt != nil {
		// The clock stood still for the working time suspended.
		stood := cfg.Calendar.WorkingTime(*ev.SuspendedAt, now)
		d, err := cfg.Calendar.AddWorkingTime(ev.Deadline, stood)
		if err != nil {
			return err
		}
		ev.Deadline = d.Round(time.Microsecond)
		ev.SuspendedAt, ev.SuspendedFrom = nil, ""
	}
	return nil
}
