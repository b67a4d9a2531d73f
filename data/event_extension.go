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

// Extension is a request for more time on an event (延期申请) and its
// decision.
type Extension struct {
	EventCode   string     `json:"event_code"`
	N           int        `json:"n"`
	Limit       grid.Limit `json:"limit"`
	Reason      string     `json:"reason"`
	Status      string     `json:"status"` // pending, approved, refused
	RequestedBy string     `json:"requested_by"`
	RequesterID *int64     `json:"requester_id"`
	RequestedAt time.Time  `json:"requested_at"`
	DecidedBy   *string    `json:"decided_by"`
	DeciderID   *int64     `json:"decider_id"`
	DecidedAt   *time.Time `json:"decided_at"`
	Note        string     `json:"note"`
	OldDeadline time.Time  `json:"old_deadline"`
	NewDeadline *time.Time `json:"new_deadline"`
}

const extensionColumns = `event_code, n, amount, unit, reason, status, requested_by, requester_id, requested_at,
	decided_by, decider_id, decided_at, note, old_deadline, new_deadline`

func scanExtension(row pgx.Row, loc *time.Location) (*Extension, error) {
	var x Extension
	var unit string
	if err := row.Scan(&x.EventCode, &x.N, &x.Limit.Amount, &unit, &x.Reason, &x.Status, &x.RequestedBy, &x.RequesterID, &x.RequestedAt,
		&x.DecidedBy, &x.DeciderID, &x.DecidedAt, &x.Note, &x.OldDeadline, &x.NewDeadline); err != nil {
		return nil, err
	}
	x.Limit.Unit = grid.LimitUnit(unit)
	x.RequestedAt, x.OldDeadline = x.RequestedAt.In(loc), x.OldDeadline.In(loc)
	for _, t := range []**time.Time{&x.DecidedAt, &x.NewDeadline} {
		if *t != nil {
			v := (*t).In(loc)
			*t = &v
		}
	}
	return &x, nil
}

// Extensions lists an event's extension requests, oldest first.
func (s *Store) Extensions(ctx context.Context, code string) ([]Extension, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+extensionColumns+` FROM event_extensions WHERE event_code = $1 ORDER BY n`, code)
	if err != nil {
		return nil, err
	}
	out := []Extension{}
	err = forEach(rows, func() error {
		x, err := scanExtension(rows, s.cityTime())
		if err == nil {
			out = append(out, *x)
		}
		return err
	})
	return out, err
}

// ExtensionRequest is a handler's request for more time.
type ExtensionRequest struct {
	Limit     grid.Limit
	Reason    string
	Actor     string
	Person    *PersonRow
	IfVersion int
	// MayDispatch: the credential may move the event (the command centre
	// files a request for a handler); otherwise only the event's handler
	// may ask.
	MayDispatch bool
}

// ExtensionDecision is a supervisor's answer to the pending request.
type ExtensionDecision struct {
	N         int
	Approve   bool
	Note      string
	Actor     string
	Person    *PersonRow
	IfVersion int
}

// lockEvent reads an event for update, checked against the context's
// guard and the If-Match version.
func (s *Store) lockEvent(ctx context.Context, tx pgx.Tx, code string, ifVersion int, now time.Time, loc *time.Location) (*Event, error) {
	ev, err := scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+eventFrom+` WHERE e.code = $1 FOR UPDATE OF e`, code), now, loc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := checkUnits(ctx, ev.GridCode); err != nil {
		return nil, err
	}
	if ifVersion > 0 && ifVersion != ev.Version {
		return nil, &StaleError{Resource: "event", Code: code, Current: ev.ETag()}
	}
	return ev, nil
}

// logNote appends a log entry that moves no status, bumps the event's
// version and feeds the change to live subscribers.
func logNote(ctx context.Context, tx pgx.Tx, ev *Event, kind, actor, note string, person *PersonRow, now time.Time) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(n), 0) + 1 FROM event_log WHERE event_code = $1`, ev.Code).Scan(&n); err != nil {
		return err
	}
	var pid *int64
	if person != nil {
		pid = &person.ID
	}
	ev.Version++
	ev.UpdatedAt = now
	entry := LogEntry{N: n, From: ev.Status, To: ev.Status, Actor: actor, Note: note, At: now, Kind: kind, PersonID: pid}
	b := &pgx.Batch{}
	b.Queue(`UPDATE events SET deadline = $2, extensions = $3, updated_at = $4, version = $5 WHERE code = $1`,
		ev.Code, ev.Deadline, ev.Extensions, now, ev.Version)
	b.Queue(`INSERT INTO event_log (event_code, n, from_status, to_status, actor, note, at, kind, person_id)
		VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8)`, ev.Code, n, string(ev.Status), actor, note, now, kind, pid)
	if err := queueFeed(b, "transition", ev.Status, []FeedBody{feedBody("transition", ev, ev.Status, entry)}); err != nil {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// RequestExtension files a request for more time on an event whose
// department still works on it. One request waits for its decision at a
// time (a second is a *ConflictError).
func (s *Store) RequestExtension(ctx context.Context, code string, r ExtensionRequest) (*Extension, *Event, error) {
	if err := r.Limit.Validate(); err != nil {
		return nil, nil, invalid("limit", "%v", err)
	}
	r.Reason = strings.TrimSpace(r.Reason)
	if r.Reason == "" {
		return nil, nil, invalid("reason", "an extension request gives its reason")
	}
	var x *Extension
	var ev *Event
	err := retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			cfg, err := s.eventConfig(ctx, tx)
			if err != nil {
				return err
			}
			loc := cfg.Calendar.Location()
			now := time.Now().Round(time.Microsecond).In(loc)
			if ev, err = s.lockEvent(ctx, tx, code, r.IfVersion, now, loc); err != nil {
				return err
			}
			if !grid.ExtensionAllowed(ev.Status) {
				return &grid.TransitionError{From: ev.Status, To: ev.Status, Allowed: grid.Transitions(ev.Status),
					Reason: "more time is asked for while the department works on the event (dispatched, handling or returned)"}
			}
			if !r.MayDispatch && (ev.Handler == nil || r.Person == nil || r.Person.ID != ev.Handler.ID) {
				return notYours("asking for more time on event %s is the work of its handler (%s) or the command centre; this credential speaks for %s", code, handlerText(ev), personText(r.Person))
			}
			var n int
			var pending bool
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(n), 0) + 1, bool_or(status = 'pending') IS TRUE FROM event_extensions WHERE event_code = $1`, code).Scan(&n, &pending); err != nil {
				return err
			}
			if pending {
				return &ConflictError{Msg: fmt.Sprintf("event %s already has an extension request waiting for a supervisor's decision (GET /v1/events/%s/extensions)", code, code)}
			}
			var pid *int64
			if r.Person != nil {
				pid = &r.Person.ID
			}
			x, err = scanExtension(tx.QueryRow(ctx, `INSERT INTO event_extensions (event_code, n, amount, unit, reason, requested_by, requester_id, requested_at, old_deadline)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+extensionColumns,
				code, n, r.Limit.Amount, string(r.Limit.Unit), r.Reason, r.Actor, pid, now, ev.Deadline), loc)
			if err != nil {
				return err
			}
			return logNote(ctx, tx, ev, "extension_requested", r.Actor, fmt.Sprintf("extension %d: %s asked: %s", n, r.Limit, r.Reason), r.Person, now)
		})
	})
	if err != nil {
		return nil, nil, err
	}
	ev, err = s.GetEvent(ctx, code, true)
	return x, ev, err
}

// DecideExtension approves or refuses the pending request n: a
// supervisor's decision (over the event's grid). Approval moves the
// deadline by the amount asked, from the deadline the event has, on the
// working calendar.
func (s *Store) DecideExtension(ctx context.Context, code string, d ExtensionDecision) (*Extension, *Event, error) {
	var x *Extension
	err := retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			cfg, err := s.eventConfig(ctx, tx)
			if err != nil {
				return err
			}
			loc := cfg.Calendar.Location()
			now := time.Now().Round(time.Microsecond).In(loc)
			ev, err := s.lockEvent(ctx, tx, code, d.IfVersion, now, loc)
			if err != nil {
				return err
			}
			x, err = scanExtension(tx.QueryRow(ctx, `SELECT `+extensionColumns+` FROM event_extensions WHERE event_code = $1 AND n = $2 FOR UPDATE`, code, d.N), loc)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("extension %d of event %s: %w", d.N, code, ErrNotFound)
			}
			if err != nil {
				return err
			}
			if !supervises(d.Person, ev.GridCode) {
				return notYours("deciding an extension of event %s is the work of a supervisor of grid %s; this credential speaks for %s", code, ev.GridCode, personText(d.Person))
			}
			if x.Status != "pending" {
				return &ConflictError{Msg: fmt.Sprintf("extension %d of event %s was %s already", d.N, code, x.Status)}
			}
			status, kind := "refused", "extension_refused"
			var newDeadline *time.Time
			if d.Approve {
				if !grid.ExtensionAllowed(ev.Status) {
					return &grid.TransitionError{From: ev.Status, To: ev.Status, Allowed: grid.Transitions(ev.Status),
						Reason: "an extension is approved while the department works on the event; refuse it instead"}
				}
				nd, err := cfg.Calendar.Deadline(ev.Deadline, x.Limit)
				if err != nil {
					return err
				}
				nd = nd.Round(time.Microsecond)
				newDeadline = &nd
				status, kind = "approved", "extension_approved"
				ev.Deadline = nd
				ev.Extensions++
			}
			var pid *int64
			if d.Person != nil {
				pid = &d.Person.ID
			}
			x, err = scanExtension(tx.QueryRow(ctx, `UPDATE event_extensions SET status = $3, decided_by = $4, decider_id = $5, decided_at = $6,
					note = $7, new_deadline = $8
				WHERE event_code = $1 AND n = $2 RETURNING `+extensionColumns, code, d.N, status, d.Actor, pid, now, d.Note, newDeadline), loc)
			if err != nil {
				return err
			}
			note := fmt.Sprintf("extension %d %s", d.N, status)
			if d.Note != "" {
				note += ": " + d.Note
			}
			return logNote(ctx, tx, ev, kind, d.Actor, note, d.Person, now)
		})
	})
	if err != nil {
		return nil, nil, err
	}
	ev, err := s.GetEvent(ctx, code, true)
	return x, ev, err
}
