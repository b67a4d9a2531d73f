package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/geo"
	"gridmap/grid"
)

// EventsChannel is the NOTIFY channel of the event feed: one notice per
// committed transaction that wrote to event_feed.
const EventsChannel = "gridmap_events"

// feedLock is the advisory lock that orders event_feed.seq by commit: it
// is taken just before the feed rows are written and held to commit.
const feedLock = 0x67726964_6576 // "gridev"

// NewEvent is a report, located and in WGS-84.
type NewEvent struct {
	Class       string
	Lon, Lat    float64       // WGS-84
	CRS         geo.CRS       // what the reporter sent
	InputLon    float64       // the position as sent, in CRS
	InputLat    float64       //
	Location    grid.Location // from the locator; Location.Grid must be set
	Description string
	Source      grid.EventSource
	Reporter    string
	Media       []string
	OccurredAt  *time.Time
	// IdempotencyKey, when set, makes the report idempotent: the same key
	// with the same BodyHash answers the event the first report created.
	IdempotencyKey string
	BodyHash       []byte
}

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
	Log            []LogEntry       `json:"log,omitempty"`
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
}

// FeedBody is what live subscribers receive for a creation or a
// transition (stored in event_feed.body; seq is added when read).
type FeedBody struct {
	Type       string           `json:"type"` // created or transition
	At         time.Time        `json:"at"`
	Code       string           `json:"code"`
	Class      string           `json:"class"`
	ClassName  string           `json:"class_name"`
	Status     grid.EventStatus `json:"status"`
	From       grid.EventStatus `json:"from,omitempty"`
	Lon        float64          `json:"lon"`
	Lat        float64          `json:"lat"`
	GridCode   string           `json:"grid_code"`
	Department string           `json:"department"`
	ReportedAt time.Time        `json:"reported_at"`
	Deadline   time.Time        `json:"deadline"`
	Actor      string           `json:"actor,omitempty"`
	Note       string           `json:"note,omitempty"`
	Version    int              `json:"version"`
}

// ReportResult is the outcome of one report of a batch: the event, whether
// it was created by an earlier report with the same Idempotency-Key, or the
// error of this report alone (*InvalidError, *IdempotencyError).
type ReportResult struct {
	Event    *Event
	Replayed bool
	Err      error
}

// ReportEvents stores reports in one transaction: idempotency keys first
// (a concurrent twin waits on the key's row and then answers the same
// event), then per district and date the next codes, the events with their
// department and working-time deadline, their first log entries, and the
// feed rows for live subscribers. Per-report problems are in the results;
// err is a failure of the whole batch, which then wrote nothing.
func (s *Store) ReportEvents(ctx context.Context, evs []NewEvent) ([]ReportResult, error) {
	return s.ReportEventsAt(ctx, evs, time.Now())
}

// ReportEventsAt is ReportEvents with the clock given (demos, tests).
func (s *Store) ReportEventsAt(ctx context.Context, evs []NewEvent, now time.Time) ([]ReportResult, error) {
	var res []ReportResult
	err := retryTx(ctx, func() error {
		var err error
		res, err = s.reportTx(ctx, evs, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	// Replays answer the event as it is now.
	for i := range res {
		if res[i].Replayed && res[i].Err == nil {
			res[i].Event, res[i].Err = s.GetEvent(ctx, res[i].Event.Code, false)
		}
	}
	return res, nil
}

func (s *Store) reportTx(ctx context.Context, evs []NewEvent, now time.Time) ([]ReportResult, error) {
	res := make([]ReportResult, len(evs))
	// One connection, with BEGIN and COMMIT of our own rather than a
	// pgx.Tx, so that COMMIT goes in the same round trip as the feed rows:
	// the feed lock they take is then held for no client round trip.
	tx, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Release()
	// 1. The rules in force (a report racing a configuration edit gets the
	// rules of just before it).
	cfg, err := s.eventConfig(ctx, tx)
	if err != nil {
		return nil, err
	}
	now = now.Round(time.Microsecond).In(cfg.Calendar.Location()) // what timestamptz keeps, in the city's time
	live := make([]bool, len(evs))
	for i, e := range evs {
		switch {
		case e.Location.Grid == nil:
			res[i].Err = invalid("position", "(%g, %g) is outside every grid", e.Lon, e.Lat)
		case cfg.Classes[e.Class].Code == "":
			res[i].Err = invalid("class", "unknown event class %q (GET /v1/event-classes lists them)", e.Class)
		default:
			live[i] = true
		}
	}
	// Idempotency keys, in key order so that two batches sharing keys
	// lock them in the same order. A key twice in one batch: the first
	// report leads, the others follow it.
	leader := map[string]int{}
	var keys []string
	for i, e := range evs {
		if !live[i] || e.IdempotencyKey == "" {
			continue
		}
		if _, ok := leader[e.IdempotencyKey]; ok {
			continue
		}
		leader[e.IdempotencyKey] = i
		keys = append(keys, e.IdempotencyKey)
	}
	sort.Strings(keys)
	// settle answers the reports whose key is taken: the same body is a
	// replay of the key's event, another body an error.
	settle := func(taken []string) error {
		rows, err := tx.Query(ctx, `SELECT key, body_hash, event_code FROM event_idempotency WHERE key = ANY($1) AND event_code IS NOT NULL`, taken)
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			var k, code string
			var h []byte
			if err := rows.Scan(&k, &h, &code); err != nil {
				return err
			}
			i := leader[k]
			live[i] = false
			if bytes.Equal(h, evs[i].BodyHash) {
				res[i] = ReportResult{Event: &Event{Code: code}, Replayed: true}
			} else {
				res[i].Err = &IdempotencyError{Key: k, Event: code}
			}
			return nil
		})
	}
	// 2. Keys answered before: replays are known before any number is
	// given, so a retried report leaves no gap in the numbering.
	if len(keys) > 0 {
		if err := settle(keys); err != nil {
			return nil, err
		}
	}
	// 3. Codes: per district and local date, the next numbers, in a
	// statement of its own, committed at once: holding the district's
	// counter row to the end of the transaction would queue every batch
	// behind the previous one. A batch that fails after this, or a twin
	// sent at the same moment as its original, leaves a gap.
	loc := cfg.Calendar.Location()
	day := now.In(loc).Format(time.DateOnly)
	perDistrict := map[string]int{}
	for i, e := range evs {
		if live[i] && (e.IdempotencyKey == "" || leader[e.IdempotencyKey] == i) {
			perDistrict[e.Location.Grid.Code[:6]]++
		}
	}
	next := map[string]int{} // district → first number of this batch
	if len(perDistrict) > 0 {
		var districts []string
		var counts []int32
		for d := range perDistrict {
			districts = append(districts, d)
		}
		sort.Strings(districts)
		for _, d := range districts {
			counts = append(counts, int32(perDistrict[d]))
		}
		rows, err := tx.Query(ctx, `INSERT INTO event_code_seq (district, day, last)
			SELECT d, $2::date, n FROM unnest($1::text[], $3::int[]) AS t(d, n) ORDER BY d
			ON CONFLICT (district, day) DO UPDATE SET last = event_code_seq.last + EXCLUDED.last
			RETURNING district, last`, districts, day, counts)
		if err != nil {
			return nil, err
		}
		if err := forEach(rows, func() error {
			var d string
			var last int
			if err := rows.Scan(&d, &last); err != nil {
				return err
			}
			next[d] = last - perDistrict[d] + 1
			return nil
		}); err != nil {
			return nil, err
		}
	}
	// 4. The transaction: the keys first (a twin of a report in flight
	// waits here on the key's row, then answers its event), then the
	// events, their first log entries, the keys' codes and the feed.
	if _, err := tx.Exec(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			tx.Exec(context.Background(), "ROLLBACK") //nolint:errcheck
		}
	}()
	var hashes [][]byte
	var freshKeys []string
	for _, k := range keys {
		if live[leader[k]] {
			freshKeys = append(freshKeys, k)
			hashes = append(hashes, evs[leader[k]].BodyHash)
		}
	}
	if len(freshKeys) > 0 {
		rows, err := tx.Query(ctx, `INSERT INTO event_idempotency (key, body_hash)
			SELECT k, h FROM unnest($1::text[], $2::bytea[]) AS t(k, h) ORDER BY k
			ON CONFLICT (key) DO NOTHING RETURNING key`, freshKeys, hashes)
		if err != nil {
			return nil, err
		}
		inserted := map[string]bool{}
		if err := forEach(rows, func() error {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			inserted[k] = true
			return nil
		}); err != nil {
			return nil, err
		}
		var taken []string
		for _, k := range freshKeys {
			if !inserted[k] {
				taken = append(taken, k)
			}
		}
		if len(taken) > 0 {
			if err := settle(taken); err != nil {
				return nil, err
			}
		}
	}
	// The events, their first log entries, the keys' codes, the feed.
	var (
		codes, classes, statuses, crss, grids, depts, descs, sources, reporters []string
		lons, lats, ilons, ilats                                                []float64
		locs                                                                    [][]byte
		medias                                                                  []string // JSON arrays
		occurred                                                                []*time.Time
		deadlines                                                               []time.Time
		keyCodes, keyNames, actors                                              []string
		feedBodies                                                              [][]byte
	)
	for i, e := range evs {
		if !live[i] || (e.IdempotencyKey != "" && leader[e.IdempotencyKey] != i) {
			continue
		}
		class := cfg.Classes[e.Class]
		district := e.Location.Grid.Code[:6]
		code, err := grid.EventCode(district, now.In(loc), next[district])
		if err != nil {
			res[i].Err = invalid("position", "%v", err)
			continue
		}
		next[district]++
		deadline, err := cfg.Calendar.Deadline(now, class.Limit)
		if err != nil {
			return nil, fmt.Errorf("deadline of class %s: %w", class.Code, err)
		}
		deadline = deadline.Round(time.Microsecond)
		loc, err := json.Marshal(e.Location)
		if err != nil {
			return nil, err
		}
		media := e.Media
		if media == nil {
			media = []string{}
		}
		mj, _ := json.Marshal(media)
		crs := e.CRS
		if crs == "" {
			crs = geo.WGS84
		}
		ev := &Event{Code: code, Class: class.Code, ClassName: class.Name, Status: grid.StatusReported,
			Lon: e.Lon, Lat: e.Lat, CRS: string(crs), InputLon: e.InputLon, InputLat: e.InputLat,
			GridCode: e.Location.Grid.Code, Location: loc, Department: class.Department,
			DepartmentName: cfg.Departments[class.Department].Name, Description: e.Description,
			Source: string(e.Source), Reporter: e.Reporter, Media: media, OccurredAt: e.OccurredAt,
			ReportedAt: now, Deadline: deadline, UpdatedAt: now, Version: 1,
			Overdue: grid.Overdue(grid.StatusReported, deadline, now),
			Log:     []LogEntry{{N: 1, To: grid.StatusReported, Actor: reportActor(e), Note: "", At: now}}}
		res[i].Event = ev
		actors = append(actors, ev.Log[0].Actor)
		codes, classes, statuses = append(codes, code), append(classes, class.Code), append(statuses, string(grid.StatusReported))
		crss, grids, depts = append(crss, string(crs)), append(grids, ev.GridCode), append(depts, class.Department)
		descs, sources, reporters = append(descs, e.Description), append(sources, string(e.Source)), append(reporters, e.Reporter)
		lons, lats, ilons, ilats = append(lons, e.Lon), append(lats, e.Lat), append(ilons, e.InputLon), append(ilats, e.InputLat)
		locs, medias, occurred, deadlines = append(locs, loc), append(medias, string(mj)), append(occurred, e.OccurredAt), append(deadlines, deadline)
		if e.IdempotencyKey != "" {
			keyNames, keyCodes = append(keyNames, e.IdempotencyKey), append(keyCodes, code)
		}
		body, err := json.Marshal(feedBody("created", ev, "", ev.Log[0]))
		if err != nil {
			return nil, err
		}
		feedBodies = append(feedBodies, body)
	}
	if len(codes) > 0 {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO events (code, class_code, status, geom, crs, input_lon, input_lat, grid_code, location,
				department_code, description, source, reporter, media, occurred_at, reported_at, deadline, updated_at)
			SELECT c, cl, st, ST_SetSRID(ST_MakePoint(lon, lat), 4326), crs, ilon, ilat, g, l,
				d, de, so, re, ARRAY(SELECT jsonb_array_elements_text(m)), o, $18, dl, $18
			FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::float8[], $8::float8[],
				$9::text[], $10::jsonb[], $11::text[], $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::timestamptz[], $17::timestamptz[])
				AS t(c, cl, st, lon, lat, crs, ilon, ilat, g, l, d, de, so, re, m, o, dl)`,
			codes, classes, statuses, lons, lats, crss, ilons, ilats, grids, locs, depts, descs, sources, reporters, medias, occurred, deadlines, now)
		b.Queue(`INSERT INTO event_log (event_code, n, to_status, actor, at)
			SELECT c, 1, 'reported', a, $3 FROM unnest($1::text[], $2::text[]) AS t(c, a)`, codes, actors, now)
		if len(keyNames) > 0 {
			b.Queue(`UPDATE event_idempotency k SET event_code = t.c FROM unnest($1::text[], $2::text[]) AS t(k, c) WHERE k.key = t.k`, keyNames, keyCodes)
		}
		queueFeed(b, "created", "", codes, statuses, classes, grids, lons, lats, feedBodies)
		b.Queue("COMMIT")
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, err
		}
	} else if _, err := tx.Exec(ctx, "COMMIT"); err != nil {
		return nil, err
	}
	committed = true
	// Followers of a key in this batch answer as their leader did.
	for i, e := range evs {
		if !live[i] || e.IdempotencyKey == "" || leader[e.IdempotencyKey] == i {
			continue
		}
		l := leader[e.IdempotencyKey]
		switch {
		case res[l].Err != nil:
			res[i].Err = res[l].Err
		case !bytes.Equal(evs[l].BodyHash, e.BodyHash):
			res[i].Err = &IdempotencyError{Key: e.IdempotencyKey, Event: res[l].Event.Code}
		default:
			res[i] = ReportResult{Event: &Event{Code: res[l].Event.Code}, Replayed: true}
		}
	}
	return res, nil
}

// reportActor names the reporter in the log: who, else the source.
func reportActor(e NewEvent) string {
	if e.Reporter != "" {
		return e.Reporter
	}
	return string(e.Source)
}

func feedBody(kind string, ev *Event, from grid.EventStatus, l LogEntry) FeedBody {
	return FeedBody{Type: kind, At: l.At, Code: ev.Code, Class: ev.Class, ClassName: ev.ClassName, Status: ev.Status, From: from,
		Lon: ev.Lon, Lat: ev.Lat, GridCode: ev.GridCode, Department: ev.Department, ReportedAt: ev.ReportedAt, Deadline: ev.Deadline,
		Actor: l.Actor, Note: l.Note, Version: ev.Version}
}

// queueFeed appends to b: the feed lock, the feed rows and the notice. It
// must be the last work of the transaction: the lock is held to commit,
// and what runs under it serialises every writer of the feed.
func queueFeed(b *pgx.Batch, kind string, from grid.EventStatus, codes, statuses, classes, grids []string, lons, lats []float64, bodies [][]byte) {
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(feedLock))
	b.Queue(`INSERT INTO event_feed (seq, kind, from_status, event_code, status, class_code, grid_code, lon, lat, body)
		SELECT nextval('event_feed_seq'), $1, nullif($9, ''), c, st, cl, g, lon, lat, b
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::jsonb[]) AS t(c, st, cl, g, lon, lat, b)`,
		kind, codes, statuses, classes, grids, lons, lats, bodies, string(from))
	b.Queue(`SELECT pg_notify($1, '')`, EventsChannel)
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
	e.reported_at, e.deadline, e.handled_at, e.closed_at, e.updated_at, e.version`

const eventFrom = ` FROM events e JOIN event_classes c ON c.code = e.class_code JOIN departments d ON d.code = e.department_code`

// scanEvent reads an event, its times in loc.
func scanEvent(row pgx.Row, now time.Time, loc *time.Location) (*Event, error) {
	var e Event
	var status string
	var locJSON []byte
	if err := row.Scan(&e.Code, &e.Class, &e.ClassName, &status, &e.Lon, &e.Lat, &e.CRS, &e.InputLon, &e.InputLat,
		&e.GridCode, &locJSON, &e.Department, &e.DepartmentName, &e.Description, &e.Source, &e.Reporter, &e.Media, &e.OccurredAt,
		&e.ReportedAt, &e.Deadline, &e.HandledAt, &e.ClosedAt, &e.UpdatedAt, &e.Version); err != nil {
		return nil, err
	}
	e.Status = grid.EventStatus(status)
	e.Location = locJSON
	e.Overdue = grid.Overdue(e.Status, e.Deadline, now)
	for _, t := range []*time.Time{&e.ReportedAt, &e.Deadline, &e.UpdatedAt} {
		*t = t.In(loc)
	}
	for _, t := range []**time.Time{&e.OccurredAt, &e.HandledAt, &e.ClosedAt} {
		if *t != nil {
			v := (*t).In(loc)
			*t = &v
		}
	}
	return &e, nil
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
	rows, err := q.Query(ctx, `SELECT n, coalesce(from_status, ''), to_status, actor, note, coalesce(department_code, ''), at
		FROM event_log WHERE event_code = $1 ORDER BY n`, code)
	if err != nil {
		return nil, err
	}
	var out []LogEntry
	err = forEach(rows, func() error {
		var l LogEntry
		var from, to string
		if err := rows.Scan(&l.N, &from, &to, &l.Actor, &l.Note, &l.Department, &l.At); err != nil {
			return err
		}
		l.From, l.To, l.At = grid.EventStatus(from), grid.EventStatus(to), l.At.In(loc)
		out = append(out, l)
		return nil
	})
	return out, err
}

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
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(n), 0) + 1 FROM event_log WHERE event_code = $1`, code).Scan(&n); err != nil {
				return err
			}
			entry := LogEntry{N: n, From: from, To: t.To, Actor: t.Actor, Note: t.Note, Department: t.Department, At: now}
			body, err := json.Marshal(feedBody("transition", ev, from, entry))
			if err != nil {
				return err
			}
			b := &pgx.Batch{}
			b.Queue(`UPDATE events SET status = $2, department_code = $3, handled_at = $4, closed_at = $5, updated_at = $6, version = $7
				WHERE code = $1`, code, string(ev.Status), ev.Department, ev.HandledAt, ev.ClosedAt, now, ev.Version)
			b.Queue(`INSERT INTO event_log (event_code, n, from_status, to_status, actor, note, department_code, at)
				VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8)`, code, n, string(from), string(t.To), t.Actor, t.Note, t.Department, now)
			queueFeed(b, "transition", from, []string{code}, []string{string(ev.Status)}, []string{ev.Class}, []string{ev.GridCode},
				[]float64{ev.Lon}, []float64{ev.Lat}, [][]byte{body})
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
			return nil, err
		}
		q.where(eventsNewestFirst.after(q, c.At, c.Code))
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

// eventsNewestFirst is the order of event lists.
var eventsNewestFirst = keyset{cols: []string{"e.reported_at", "e.code"}, desc: true}

// openStatusSQL is the predicate of the partial index events_open_deadline.
const openStatusSQL = `e.status IN ('reported', 'registered', 'dispatched', 'handling', 'returned')`

// NearestGrid is the current base grid closest to a point and its
// distance in metres (on the sphere); ErrNotFound when there are no grids.
// It tells a reporter whose point fell outside every grid how far off it is.
func (s *Store) NearestGrid(ctx context.Context, lon, lat float64) (code, name string, metres float64, err error) {
	err = s.Pool.QueryRow(ctx, `
		SELECT code, name, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography)
		FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'
		ORDER BY geom <-> ST_SetSRID(ST_MakePoint($1, $2), 4326) LIMIT 1`, lon, lat).Scan(&code, &name, &metres)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", 0, ErrNotFound
	}
	return code, name, metres, err
}
