package data

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

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
	Media       []string
	OccurredAt  *time.Time
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
