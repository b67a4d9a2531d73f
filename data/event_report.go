package data

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"gridmap/geo"
	"gridmap/grid"
)

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
	// Actor is who reports, from the credential; the first log entry
	// names it (else the reporter, else the source).
	Actor string
	// ReporterID is the person the credential names (0: none).
	ReporterID int64
	Media      []string
	OccurredAt *time.Time
	// IdempotencyKey, when set, makes the report idempotent: the same key
	// with the same BodyHash answers the event the first report created.
	IdempotencyKey string
	BodyHash       []byte
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

// reportTx is one attempt at storing a batch of reports.
func (s *Store) reportTx(ctx context.Context, evs []NewEvent, now time.Time) ([]ReportResult, error) {
	// One connection, with BEGIN and COMMIT of our own rather than a
	// pgx.Tx, so that COMMIT goes in the same round trip as the feed rows:
	// the feed lock they take is then held for no client round trip.
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	// The rules in force (a report racing a configuration edit gets the
	// rules of just before it).
	cfg, err := s.eventConfig(ctx, conn)
	if err != nil {
		return nil, err
	}
	b := newReportBatch(conn, cfg, evs, now)
	b.route()
	// Keys answered before: replays are known before any number is given,
	// so a retried report leaves no gap in the numbering.
	if err := b.settle(ctx, b.keys); err != nil {
		return nil, err
	}
	if err := b.reserveCodes(ctx); err != nil {
		return nil, err
	}
	// The transaction: the keys first (a twin of a report in flight waits
	// here on the key's row, then answers its event), then the events,
	// their first log entries, the keys' codes and the feed.
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			conn.Exec(context.Background(), "ROLLBACK")
		}
	}()
	if err := b.claimKeys(ctx); err != nil {
		return nil, err
	}
	if err := b.findVerifiers(ctx); err != nil {
		return nil, err
	}
	rows, err := b.newEvents()
	if err != nil {
		return nil, err
	}
	if err := b.insertAndCommit(ctx, rows); err != nil {
		return nil, err
	}
	committed = true
	b.answerFollowers()
	return b.res, nil
}

// reportBatch is what one transaction of ReportEvents knows of its
// reports: each one's result so far, which are still to be written, and
// which report leads each idempotency key (a key twice in one batch: the
// first report leads, the others follow it).
type reportBatch struct {
	conn   *pgxpool.Conn
	cfg    *EventConfig
	now    time.Time // what timestamptz keeps, in the city's time
	evs    []NewEvent
	res    []ReportResult
	live   []bool         // not answered yet
	leader map[string]int // idempotency key → the report leading it
	keys   []string       // the keys of the live reports, sorted
	next   map[string]int // district → the next number of the day
	// verifiers: grid → its worker, who verifies the grid's events (the
	// first active person by rank: a backup stands in for an inactive
	// worker).
	verifiers map[string]PersonRef
}

// findVerifiers reads the workers of the grids the batch reports in.
func (b *reportBatch) findVerifiers(ctx context.Context) error {
	var grids []string
	for i, e := range b.evs {
		if b.writes(i) {
			grids = append(grids, e.Location.Grid.Code)
		}
	}
	b.verifiers = map[string]PersonRef{}
	if len(grids) == 0 {
		return nil
	}
	rows, err := b.conn.Query(ctx, `SELECT DISTINCT ON (g.grid_code) g.grid_code, p.id, p.name FROM grid_workers g
		JOIN people p ON p.id = g.person_id AND p.status = 'active'
		WHERE g.grid_code = ANY($1) ORDER BY g.grid_code, g.rank`, grids)
	if err != nil {
		return err
	}
	return forEach(rows, func() error {
		var code string
		p := PersonRef{Role: grid.RoleWorker}
		if err := rows.Scan(&code, &p.ID, &p.Name); err != nil {
			return err
		}
		b.verifiers[code] = p
		return nil
	})
}

func newReportBatch(conn *pgxpool.Conn, cfg *EventConfig, evs []NewEvent, now time.Time) *reportBatch {
	return &reportBatch{conn: conn, cfg: cfg, now: now.Round(time.Microsecond).In(cfg.Calendar.Location()), evs: evs,
		res: make([]ReportResult, len(evs)), live: make([]bool, len(evs)), leader: map[string]int{}, next: map[string]int{}}
}

// writes reports whether report i makes an event: it is live and leads
// its key, if it has one.
func (b *reportBatch) writes(i int) bool {
	k := b.evs[i].IdempotencyKey
	return b.live[i] && (k == "" || b.leader[k] == i)
}

// route answers the reports that cannot be stored (outside every grid, an
// unknown class: the class routes the event to its department) and elects
// the leaders of the keys, which are sorted so that two batches sharing
// keys lock them in the same order.
func (b *reportBatch) route() {
	for i, e := range b.evs {
		switch {
		case e.Location.Grid == nil:
			b.res[i].Err = invalid("position", "(%g, %g) is outside every grid", e.Lon, e.Lat)
		case b.cfg.Classes[e.Class].Code == "":
			b.res[i].Err = invalid("class", "unknown event class %q (GET /v1/event-classes lists them)", e.Class)
		default:
			b.live[i] = true
		}
	}
	for i, e := range b.evs {
		if !b.live[i] || e.IdempotencyKey == "" {
			continue
		}
		if _, ok := b.leader[e.IdempotencyKey]; ok {
			continue
		}
		b.leader[e.IdempotencyKey] = i
		b.keys = append(b.keys, e.IdempotencyKey)
	}
	sort.Strings(b.keys)
}

// settle answers the reports whose key is taken: the same body is a
// replay of the key's event, another body an error.
func (b *reportBatch) settle(ctx context.Context, taken []string) error {
	if len(taken) == 0 {
		return nil
	}
	rows, err := b.conn.Query(ctx, `SELECT key, body_hash, event_code FROM event_idempotency WHERE key = ANY($1) AND event_code IS NOT NULL`, taken)
	if err != nil {
		return err
	}
	return forEach(rows, func() error {
		var k, code string
		var h []byte
		if err := rows.Scan(&k, &h, &code); err != nil {
			return err
		}
		i := b.leader[k]
		b.live[i] = false
		if bytes.Equal(h, b.evs[i].BodyHash) {
			b.res[i] = ReportResult{Event: &Event{Code: code}, Replayed: true}
		} else {
			b.res[i].Err = &IdempotencyError{Key: k, Event: code}
		}
		return nil
	})
}

// reserveCodes takes, per district and local date, the next numbers, in
// a statement of its own, committed at once: holding the district's
// counter row to the end of the transaction would queue every batch
// behind the previous one. A batch that fails after this, or a twin sent
// at the same moment as its original, leaves a gap.
func (b *reportBatch) reserveCodes(ctx context.Context) error {
	day := b.now.In(b.cfg.Calendar.Location()).Format(time.DateOnly)
	perDistrict := map[string]int{}
	for i, e := range b.evs {
		if b.writes(i) {
			perDistrict[e.Location.Grid.Code[:6]]++
		}
	}
	if len(perDistrict) == 0 {
		return nil
	}
	var districts []string
	var counts []int32
	for d := range perDistrict {
		districts = append(districts, d)
	}
	sort.Strings(districts)
	for _, d := range districts {
		counts = append(counts, int32(perDistrict[d]))
	}
	rows, err := b.conn.Query(ctx, `INSERT INTO event_code_seq (district, day, last)
		SELECT d, $2::date, n FROM unnest($1::text[], $3::int[]) AS t(d, n) ORDER BY d
		ON CONFLICT (district, day) DO UPDATE SET last = event_code_seq.last + EXCLUDED.last
		RETURNING district, last`, districts, day, counts)
	if err != nil {
		return err
	}
	return forEach(rows, func() error {
		var d string
		var last int
		if err := rows.Scan(&d, &last); err != nil {
			return err
		}
		b.next[d] = last - perDistrict[d] + 1
		return nil
	})
}

// claimKeys inserts the keys of the reports still to be written, in key
// order. A key a concurrent batch inserted first is waited for (its row
// is locked until that batch ends) and then settled.
func (b *reportBatch) claimKeys(ctx context.Context) error {
	var fresh []string
	var hashes [][]byte
	for _, k := range b.keys {
		if b.live[b.leader[k]] {
			fresh = append(fresh, k)
			hashes = append(hashes, b.evs[b.leader[k]].BodyHash)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	rows, err := b.conn.Query(ctx, `INSERT INTO event_idempotency (key, body_hash)
		SELECT k, h FROM unnest($1::text[], $2::bytea[]) AS t(k, h) ORDER BY k
		ON CONFLICT (key) DO NOTHING RETURNING key`, fresh, hashes)
	if err != nil {
		return err
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
		return err
	}
	var taken []string
	for _, k := range fresh {
		if !inserted[k] {
			taken = append(taken, k)
		}
	}
	return b.settle(ctx, taken)
}

// reportRow is an event a batch inserts and the idempotency key of its
// report ("" for none).
type reportRow struct {
	event *Event
	key   string
}

// newEvents numbers, routes and dates the events of the reports to be
// written; a report whose code cannot be made is answered with the error.
func (b *reportBatch) newEvents() ([]reportRow, error) {
	var rows []reportRow
	for i, e := range b.evs {
		if !b.writes(i) {
			continue
		}
		district := e.Location.Grid.Code[:6]
		code, err := grid.EventCode(district, b.now.In(b.cfg.Calendar.Location()), b.next[district])
		if err != nil {
			b.res[i].Err = invalid("position", "%v", err)
			continue
		}
		b.next[district]++
		ev, err := b.newEvent(code, e)
		if err != nil {
			return nil, err
		}
		b.res[i].Event = ev
		rows = append(rows, reportRow{event: ev, key: e.IdempotencyKey})
	}
	return rows, nil
}

// newEvent is the event a report makes under code: routed to its class's
// department, due by the working-time deadline, with its first log entry.
func (b *reportBatch) newEvent(code string, e NewEvent) (*Event, error) {
	class := b.cfg.Classes[e.Class]
	deadline, err := b.cfg.Calendar.Deadline(b.now, class.Limit)
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
	crs := e.CRS
	if crs == "" {
		crs = geo.WGS84
	}
	now := b.now
	var verifier *PersonRef
	if v, ok := b.verifiers[e.Location.Grid.Code]; ok {
		verifier = &v
	}
	var reporterID *int64
	if e.ReporterID != 0 {
		reporterID = &e.ReporterID
	}
	return &Event{ReporterID: reporterID, Verifier: verifier, Code: code, Class: class.Code, ClassName: class.Name, Status: grid.StatusReported,
		Lon: e.Lon, Lat: e.Lat, CRS: string(crs), InputLon: e.InputLon, InputLat: e.InputLat,
		GridCode: e.Location.Grid.Code, Location: loc, Department: class.Department,
		DepartmentName: b.cfg.Departments[class.Department].Name, Description: e.Description,
		Source: string(e.Source), Reporter: e.Reporter, Media: media, OccurredAt: e.OccurredAt,
		ReportedAt: now, Deadline: deadline, UpdatedAt: now, Version: 1,
		Overdue: grid.Overdue(grid.StatusReported, deadline, now),
		Log:     []LogEntry{{N: 1, To: grid.StatusReported, Actor: reportActor(e), Note: "", At: now, Kind: "transition", PersonID: reporterID}}}, nil
}

// insertAndCommit writes the events, their first log entries, the keys'
// codes and the feed rows, and commits, in one round trip.
func (b *reportBatch) insertAndCommit(ctx context.Context, rows []reportRow) error {
	if len(rows) == 0 {
		_, err := b.conn.Exec(ctx, "COMMIT")
		return err
	}
	evs := column(rows, func(r reportRow) *Event { return r.event })
	str := func(f func(*Event) string) []string { return column(evs, f) }
	num := func(f func(*Event) float64) []float64 { return column(evs, f) }
	codes := str(func(e *Event) string { return e.Code })
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO events (code, class_code, status, geom, crs, input_lon, input_lat, grid_code, location,
			department_code, description, source, reporter, media, occurred_at, reported_at, deadline, updated_at, reporter_id, verifier_id)
		SELECT c, cl, st, ST_SetSRID(ST_MakePoint(lon, lat), 4326), crs, ilon, ilat, g, l,
			d, de, so, re, ARRAY(SELECT jsonb_array_elements_text(m)), o, $18, dl, $18, nullif(rid, 0), nullif(vid, 0)
		FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::float8[], $8::float8[],
			$9::text[], $10::jsonb[], $11::text[], $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::timestamptz[], $17::timestamptz[],
			$19::bigint[], $20::bigint[])
			AS t(c, cl, st, lon, lat, crs, ilon, ilat, g, l, d, de, so, re, m, o, dl, rid, vid)`,
		codes,
		str(func(e *Event) string { return e.Class }),
		str(func(e *Event) string { return string(e.Status) }),
		num(func(e *Event) float64 { return e.Lon }),
		num(func(e *Event) float64 { return e.Lat }),
		str(func(e *Event) string { return e.CRS }),
		num(func(e *Event) float64 { return e.InputLon }),
		num(func(e *Event) float64 { return e.InputLat }),
		str(func(e *Event) string { return e.GridCode }),
		column(evs, func(e *Event) []byte { return e.Location }),
		str(func(e *Event) string { return e.Department }),
		str(func(e *Event) string { return e.Description }),
		str(func(e *Event) string { return e.Source }),
		str(func(e *Event) string { return e.Reporter }),
		str(func(e *Event) string { m, _ := json.Marshal(e.Media); return string(m) }), // JSON arrays
		column(evs, func(e *Event) *time.Time { return e.OccurredAt }),
		column(evs, func(e *Event) time.Time { return e.Deadline }),
		b.now,
		column(evs, func(e *Event) int64 { return derefID(e.ReporterID) }),
		column(evs, func(e *Event) int64 {
			if e.Verifier == nil {
				return 0
			}
			return e.Verifier.ID
		}))
	batch.Queue(`INSERT INTO event_log (event_code, n, to_status, actor, at, person_id)
		SELECT c, 1, 'reported', a, $3, nullif(p, 0) FROM unnest($1::text[], $2::text[], $4::bigint[]) AS t(c, a, p)`,
		codes, str(func(e *Event) string { return e.Log[0].Actor }), b.now, column(evs, func(e *Event) int64 { return derefID(e.ReporterID) }))
	var keyNames, keyCodes []string
	for _, r := range rows {
		if r.key != "" {
			keyNames, keyCodes = append(keyNames, r.key), append(keyCodes, r.event.Code)
		}
	}
	if len(keyNames) > 0 {
		batch.Queue(`UPDATE event_idempotency k SET event_code = t.c FROM unnest($1::text[], $2::text[]) AS t(k, c) WHERE k.key = t.k`, keyNames, keyCodes)
	}
	feed := column(evs, func(e *Event) FeedBody { return feedBody("created", e, "", e.Log[0]) })
	if err := queueFeed(batch, "created", "", feed); err != nil {
		return err
	}
	batch.Queue("COMMIT")
	return b.conn.SendBatch(ctx, batch).Close()
}

// answerFollowers answers the followers of a key in this batch as their
// leader was answered.
func (b *reportBatch) answerFollowers() {
	for i, e := range b.evs {
		if !b.live[i] || e.IdempotencyKey == "" || b.leader[e.IdempotencyKey] == i {
			continue
		}
		l := b.leader[e.IdempotencyKey]
		switch {
		case b.res[l].Err != nil:
			b.res[i].Err = b.res[l].Err
		case !bytes.Equal(b.evs[l].BodyHash, e.BodyHash):
			b.res[i].Err = &IdempotencyError{Key: e.IdempotencyKey, Event: b.res[l].Event.Code}
		default:
			b.res[i] = ReportResult{Event: &Event{Code: b.res[l].Event.Code}, Replayed: true}
		}
	}
}

// reportActor names who reported in the log: the credential's actor,
// else the reporter, else the source.
func reportActor(e NewEvent) string {
	if e.Actor != "" {
		return e.Actor
	}
	if e.Reporter != "" {
		return e.Reporter
	}
	return string(e.Source)
}

func derefID(id *int64) int64 {
	if id == nil {
		return 0
	}
	return *id
}
