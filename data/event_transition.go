package data

import (
	"context"
	"errors"
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
	day, ok := eventDay(code)
	if !ok {
		return nil, ErrNotFound
	}
	var ev *Event
	err := retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			cfg, err := s.eventConfig(ctx, tx)
			if err != nil {
				return err
			}
			ev, err = scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+eventFrom+` WHERE e.code = $1 AND e.reported_on = $2 FOR UPDATE OF e`, code, day), now, cfg.Calendar.Location())
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
			if t.Department != "" {
				d, ok := cfg.Departments[t.Department]
				if !ok {
					return invalid("department", "unknown department %q (GET /v1/departments lists them)", t.Department)
				}
				ev.Department, ev.DepartmentName = d.Code, d.Name
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
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(n), 0) + 1 FROM event_log WHERE event_code = $1 AND reported_on = $2`, code, day).Scan(&n); err != nil {
				return err
			}
			entry := LogEntry{N: n, From: from, To: t.To, Actor: t.Actor, Note: t.Note, Department: t.Department, At: now}
			b := &pgx.Batch{}
			b.Queue(`UPDATE events SET status = $2, department_code = $3, handled_at = $4, closed_at = $5, updated_at = $6, version = $7
				WHERE code = $1 AND reported_on = $8`, code, string(ev.Status), ev.Department, ev.HandledAt, ev.ClosedAt, now, ev.Version, day)
			b.Queue(`INSERT INTO event_log (event_code, reported_on, n, from_status, to_status, actor, note, department_code, at)
				VALUES ($1, $9, $2, $3, $4, $5, $6, nullif($7, ''), $8)`, code, n, string(from), string(t.To), t.Actor, t.Note, t.Department, now, day)
			if err := queueFeed(b, "transition", from, []FeedBody{feedBody("transition", ev, from, entry)}); err != nil {
				return err
			}
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
			ev.Log, err = readLog(ctx, tx, code, day, s.cityTime())
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}
