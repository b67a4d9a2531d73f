package data

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// Event is an event as stored, with its log when read alone.
type Event struct {
	Code           string           `json:"code"`
	Class          string           `json:"class"`
	ClassName      string           `json:"class_name"`
	Status         grid.EventStatus `json:"status"`
	Lon            float64          `json:"-"` // the API answers a GeoJSON Feature: these are its geometry
	Lat            float64          `json:"-"`
	CRS            string           `json:"crs"`
	InputLon       float64          `json:"input_lon"`
	InputLat       float64          `json:"input_lat"`
	GridCode       string           `json:"grid_code"`
	Location       json.RawMessage  `json:"location"`
	Department     string           `json:"department"`
	DepartmentName string           `json:"department_name"`
	Description    string           `json:"description"`
	Source         string           `json:"source"`
	Reporter       string           `json:"reporter"`
	Media          []string         `json:"media"`
	OccurredAt     *time.Time       `json:"occurred_at"`
	ReportedAt     time.Time        `json:"reported_at"`
	Deadline       time.Time        `json:"deadline"`
	HandledAt      *time.Time       `json:"handled_at"`
	ClosedAt       *time.Time       `json:"closed_at"`
	UpdatedAt      time.Time        `json:"updated_at"`
	Version        int              `json:"version"`
	Overdue        bool             `json:"overdue"`
	// The people of the event (issue 16): who reported it (their
	// credential's person), who verifies it (the grid's worker when it was
	// reported), who handles it for the department, who verified it.
	ReporterID *int64     `json:"reporter_id"`
	Verifier   *PersonRef `json:"verifier"`
	Handler    *PersonRef `json:"handler"`
	VerifyDue  *time.Time `json:"verify_due"`
	VerifiedBy *PersonRef `json:"verified_by"`
	VerifiedAt *time.Time `json:"verified_at"`
	// SuspendedAt is when the suspension in force began (挂起), and
	// SuspendedFrom the status lifting it returns to.
	SuspendedAt   *time.Time       `json:"suspended_at"`
	SuspendedFrom grid.EventStatus `json:"suspended_from,omitempty"`
	// Extensions counts the approved extensions (延期) of the deadline.
	Extensions int        `json:"extensions"`
	Log        []LogEntry `json:"log,omitempty"`
}

// ETag is the event's strong entity tag.
func (e *Event) ETag() string { return versionETag(e.Version) }

// LogEntry is one step of an event's life; the report is entry 1.
type LogEntry struct {
	N          int              `json:"n"`
	From       grid.EventStatus `json:"from,omitempty"`
	To         grid.EventStatus `json:"to"`
	Actor      string           `json:"actor"`
	Note       string           `json:"note"`
	Department string           `json:"department,omitempty"`
	At         time.Time        `json:"at"`
	// Kind is "transition" for a move, or what an entry that moves no
	// status records: extension_requested, extension_approved,
	// extension_refused (and regrid, from a boundary import).
	Kind string `json:"kind,omitempty"`
	// PersonID is the person of the credential that made the entry (who
	// verified, who approved), when it names one.
	PersonID *int64 `json:"person_id,omitempty"`
	// Handler is the handler a dispatch named.
	Handler *int64 `json:"handler,omitempty"`
}

// cityTime is the calendar's time zone, in which events show their times
// (Asia/Shanghai until the configuration has been read).
func (s *Store) cityTime() *time.Location {
	if c := s.eventCfg.Load(); c != nil {
		return c.Calendar.Location()
	}
	return shanghai
}

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err) // grid embeds time/tzdata
	}
	return l
}()

// eventColumns read an Event (with a join on event_classes c and departments d).
const eventColumns = `e.code, e.class_code, c.name, e.status, ST_X(e.geom), ST_Y(e.geom), e.crs, e.input_lon, e.input_lat,
	e.grid_code, e.location, e.department_code, d.name, e.description, e.source, e.reporter, e.media, e.occurred_at,
	e.reported_at, e.deadline, e.handled_at, e.closed_at, e.updated_at, e.version,
	e.reporter_id, e.verifier_id, (SELECT name FROM people WHERE id = e.verifier_id), e.handler_id, (SELECT name FROM people WHERE id = e.handler_id),
	e.verify_due, e.verified_by, (SELECT name FROM people WHERE id = e.verified_by), e.verified_at,
	e.suspended_at, coalesce(e.suspended_from, ''), e.extensions`

const eventFrom = ` FROM events e JOIN event_classes c ON c.code = e.class_code JOIN departments d ON d.code = e.department_code`

// scanEvent reads an event, its times in loc.
func scanEvent(row pgx.Row, now time.Time, loc *time.Location) (*Event, error) {
	var e Event
	var status string
	var locJSON []byte
	var verifier, handler, verifiedBy personCols
	var suspendedFrom string
	if err := row.Scan(&e.Code, &e.Class, &e.ClassName, &status, &e.Lon, &e.Lat, &e.CRS, &e.InputLon, &e.InputLat,
		&e.GridCode, &locJSON, &e.Department, &e.DepartmentName, &e.Description, &e.Source, &e.Reporter, &e.Media, &e.OccurredAt,
		&e.ReportedAt, &e.Deadline, &e.HandledAt, &e.ClosedAt, &e.UpdatedAt, &e.Version,
		&e.ReporterID, &verifier.id, &verifier.name, &handler.id, &handler.name,
		&e.VerifyDue, &verifiedBy.id, &verifiedBy.name, &e.VerifiedAt,
		&e.SuspendedAt, &suspendedFrom, &e.Extensions); err != nil {
		return nil, err
	}
	e.Status, e.SuspendedFrom = grid.EventStatus(status), grid.EventStatus(suspendedFrom)
	e.Verifier, e.Handler, e.VerifiedBy = verifier.ref(grid.RoleWorker), handler.ref(grid.RoleHandler), verifiedBy.ref("")
	e.Location = locJSON
	e.Overdue = grid.Overdue(e.Status, e.Deadline, now)
	for _, t := range []*time.Time{&e.ReportedAt, &e.Deadline, &e.UpdatedAt} {
		*t = t.In(loc)
	}
	for _, t := range []**time.Time{&e.OccurredAt, &e.HandledAt, &e.ClosedAt, &e.VerifyDue, &e.VerifiedAt, &e.SuspendedAt} {
		if *t != nil {
			v := (*t).In(loc)
			*t = &v
		}
	}
	return &e, nil
}

// personCols are a person's id and name as an event row has them.
type personCols struct {
	id   *int64
	name *string
}

func (p personCols) ref(role grid.PersonRole) *PersonRef {
	if p.id == nil {
		return nil
	}
	r := &PersonRef{ID: *p.id, Role: role}
	if p.name != nil {
		r.Name = *p.name
	}
	return r
}

// GetEvent reads an event, with its log when withLog; ErrNotFound when
// there is none.
func (s *Store) GetEvent(ctx context.Context, code string, withLog bool) (*Event, error) {
	now := time.Now()
	var ev *Event
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		var err error
		ev, err = scanEvent(tx.QueryRow(ctx, `SELECT `+eventColumns+eventFrom+` WHERE e.code = $1`, code), now, s.cityTime())
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || !withLog {
			return err
		}
		ev.Log, err = readLog(ctx, tx, code, s.cityTime())
		return err
	})
	return ev, err
}

func readLog(ctx context.Context, q pgx.Tx, code string, loc *time.Location) ([]LogEntry, error) {
	rows, err := q.Query(ctx, `SELECT n, coalesce(from_status, ''), to_status, actor, note, coalesce(department_code, ''), at, kind, person_id
		FROM event_log WHERE event_code = $1 ORDER BY n`, code)
	if err != nil {
		return nil, err
	}
	var out []LogEntry
	err = forEach(rows, func() error {
		var l LogEntry
		var from, to string
		if err := rows.Scan(&l.N, &from, &to, &l.Actor, &l.Note, &l.Department, &l.At, &l.Kind, &l.PersonID); err != nil {
			return err
		}
		l.From, l.To, l.At = grid.EventStatus(from), grid.EventStatus(to), l.At.In(loc)
		out = append(out, l)
		return nil
	})
	return out, err
}

// EventFilter selects events; all set members must hold.
type EventFilter struct {
	Statuses    []grid.EventStatus
	Classes     []string
	Departments []string
	Unit        string      // a base unit: its events (by grid code prefix)
	BBox        *[4]float64 // lon/lat
	Overdue     *bool       // derived at the time of the query
	From, To    *time.Time  // reported_at in [From, To)
	Limit       int         // default 100, at most 1000
	Cursor      string      // EventPage.Next of the previous page
	// Scopes, when not nil, keep the events whose grid lies in one of
	// these units' subtrees (a scoped reader's, auth.Identity.ReadScopes).
	Scopes []string
}

// EventPage is one page, newest first.
type EventPage struct {
	Events []*Event
	Next   string
}

// ListEvents lists events newest first (reported_at, then code, both
// descending), in pages joined by a keyset cursor.
func (s *Store) ListEvents(ctx context.Context, f EventFilter) (*EventPage, error) {
	now := time.Now()
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		return nil, filterErr("limit", "limit %d: at most 1000", f.Limit)
	}
	q := &sqlQuery{}
	if err := f.where(q, now); err != nil {
		return nil, err
	}
	sql := `SELECT ` + eventColumns + eventFrom + q.whereSQL() + eventsNewestFirst.orderLimit(q, f.Limit+1)
	rows, err := s.Pool.Query(ctx, sql, q.args...)
	if err != nil {
		return nil, err
	}
	events := []*Event{}
	err = forEach(rows, func() error {
		e, err := scanEvent(rows, now, s.cityTime())
		if err != nil {
			return err
		}
		events = append(events, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	p := &EventPage{}
	p.Events, p.Next = nextPage(events, f.Limit, func(last *Event) cursor {
		at := last.ReportedAt
		return cursor{Order: orderReported, Code: last.Code, At: &at}
	})
	return p, nil
}

// where adds the filter's conditions to q: the events it selects as of
// now (overdue is a matter of time), after the cursor.
func (f *EventFilter) where(q *sqlQuery, now time.Time) error {
	q.whereInScopes("e.grid_code", f.Scopes)
	if len(f.Statuses) > 0 {
		ss := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			ss[i] = string(st)
		}
		q.where("e.status = ANY(" + q.arg(ss) + ")")
	}
	if len(f.Classes) > 0 {
		q.where("e.class_code = ANY(" + q.arg(f.Classes) + ")")
	}
	if len(f.Departments) > 0 {
		q.where("e.department_code = ANY(" + q.arg(f.Departments) + ")")
	}
	if f.Unit != "" {
		u := q.arg(f.Unit)
		q.where("e.grid_code >= " + u + " AND e.grid_code < gridmap_code_upper(" + u + ")")
	}
	if f.BBox != nil {
		q.where("e.geom && " + q.envelope(*f.BBox))
	}
	if f.Overdue != nil {
		n := q.arg(now)
		if *f.Overdue {
			q.where(openStatusSQL + " AND e.deadline < " + n)
		} else {
			q.where("NOT (" + openStatusSQL + " AND e.deadline < " + n + ")")
		}
	}
	if f.From != nil {
		q.where("e.reported_at >= " + q.arg(*f.From))
	}
	if f.To != nil {
		q.where("e.reported_at < " + q.arg(*f.To))
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor, orderReported)
		if err != nil {
			return err
		}
		q.where(eventsNewestFirst.after(q, c.At, c.Code))
	}
	return nil
}

// eventsNewestFirst is the order of event lists.
var eventsNewestFirst = keyset{cols: []string{"e.reported_at", "e.code"}, desc: true}

// openStatusSQL is the predicate of the partial index events_open_deadline,
// built from grid's open states. It must read as the index's predicate
// (migration 005) or the planner cannot use the index; a test holds it to
// the migration's text.
var openStatusSQL = "e.status IN " + openStatusList()

func openStatusList() string {
	var open []string
	for _, st := range grid.EventStatuses {
		if st.Open() {
			open = append(open, string(st))
		}
	}
	return "('" + strings.Join(open, "', '") + "')"
}
