package data

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Patrol rules (issue 16): a point reached faster than MaxPatrolSpeedKmh
// from the one before it is flagged and left out of tracks; the area within
// PatrolRadiusM of a track counts as covered; a gap longer than
// PatrolGap between two points is not time on patrol.
const (
	MaxPatrolSpeedKmh = 200
	// MaxPatrolAccuracyM: a fix whose accuracy radius is larger says
	// little about where the worker walked; it is kept, flagged.
	MaxPatrolAccuracyM = 100
	PatrolRadiusM      = 30
	PatrolGap          = 5 * time.Minute
)

// PatrolPoint is one GPS fix of a worker, in WGS-84, its grid located by
// the caller ("" outside every grid).
type PatrolPoint struct {
	Worker    int64
	T         time.Time
	Lon, Lat  float64
	AccuracyM *float64
	GridCode  string
}

// PatrolFlag is a point kept but left out of tracks, and why.
type PatrolFlag struct {
	Index    int     `json:"index"`
	Reason   string  `json:"reason"`
	SpeedKmh float64 `json:"speed_kmh,omitempty"`
}

// PatrolIngest is what a batch did.
type PatrolIngest struct {
	Received   int          `json:"received"`
	Stored     int          `json:"stored"`
	Duplicates int          `json:"duplicates"` // a (worker, t) stored before: a phone's retry
	Flagged    []PatrolFlag `json:"flagged"`
}

// IngestPatrolPoints stores a batch in one transaction. Each worker must be
// a person (else an *InvalidError naming points[i].worker and nothing is
// written). Points are judged in time order per worker against the last
// unflagged point before them (stored, or earlier in the batch): faster
// than MaxPatrolSpeedKmh is flagged 'jump'. A point arriving later than
// points after it in time is judged against the one before it only.
// Inserting only marks the worker's days stale; reads compute them.
func (s *Store) IngestPatrolPoints(ctx context.Context, pts []PatrolPoint) (*PatrolIngest, error) {
	res := &PatrolIngest{Received: len(pts), Flagged: []PatrolFlag{}}
	if len(pts) == 0 {
		return res, nil
	}
	order := make([]int, len(pts))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		pa, pb := &pts[order[a]], &pts[order[b]]
		if pa.Worker != pb.Worker {
			return pa.Worker < pb.Worker
		}
		return pa.T.Before(pb.T)
	})
	var workers []int64
	var firsts []time.Time
	for _, i := range order {
		if n := len(workers); n == 0 || workers[n-1] != pts[i].Worker {
			workers = append(workers, pts[i].Worker)
			firsts = append(firsts, pts[i].T)
		}
	}
	loc := s.cityTime()
	err := pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT w.id, p.id IS NOT NULL, l.t, ST_X(l.geom), ST_Y(l.geom)
			FROM unnest($1::bigint[], $2::timestamptz[]) w(id, first)
			LEFT JOIN people p ON p.id = w.id
			LEFT JOIN LATERAL (SELECT t, geom FROM patrol_points x
				WHERE x.worker = w.id AND x.t < w.first AND x.flag IS NULL ORDER BY x.t DESC LIMIT 1) l ON true`, workers, firsts)
		if err != nil {
			return err
		}
		type last struct {
			t        time.Time
			lon, lat float64
			ok       bool
		}
		prev := map[int64]last{}
		known := map[int64]bool{}
		err = forEach(rows, func() error {
			var id int64
			var exists bool
			var t *time.Time
			var lon, lat *float64
			if err := rows.Scan(&id, &exists, &t, &lon, &lat); err != nil {
				return err
			}
			known[id] = exists
			if t != nil {
				prev[id] = last{*t, *lon, *lat, true}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, p := range pts {
			if !known[p.Worker] {
				return invalid(fmt.Sprintf("points[%d].worker", i), "no person with id %d (POST /v1/people makes one)", p.Worker)
			}
		}
		n := len(pts)
		ws, ts := make([]int64, n), make([]time.Time, n)
		lons, lats := make([]float64, n), make([]float64, n)
		accs := make([]*float64, n)
		grids := make([]*string, n)
		flags := make([]*string, n)
		jump := "jump"
		for k, i := range order {
			p := pts[i]
			ws[k], ts[k], lons[k], lats[k], accs[k] = p.Worker, p.T, p.Lon, p.Lat, p.AccuracyM
			if p.GridCode != "" {
				g := p.GridCode
				grids[k] = &g
			}
			if p.AccuracyM != nil && *p.AccuracyM > MaxPatrolAccuracyM {
				f := "inaccurate"
				flags[k] = &f
				res.Flagged = append(res.Flagged, PatrolFlag{Index: i, Reason: f})
				continue
			}
			if l := prev[p.Worker]; l.ok {
				dt := p.T.Sub(l.t).Hours()
				d := haversineM(l.lon, l.lat, p.Lon, p.Lat) / 1000
				if dt > 0 && d/dt > MaxPatrolSpeedKmh {
					flags[k] = &jump
					res.Flagged = append(res.Flagged, PatrolFlag{Index: i, Reason: jump, SpeedKmh: math.Round(d/dt*10) / 10})
					continue
				}
			}
			prev[p.Worker] = last{p.T, p.Lon, p.Lat, true}
		}
		sort.Slice(res.Flagged, func(a, b int) bool { return res.Flagged[a].Index < res.Flagged[b].Index })
		return tx.QueryRow(ctx, `
			WITH ins AS (
				INSERT INTO patrol_points (worker, t, geom, accuracy_m, grid_code, flag)
				SELECT w, t, ST_SetSRID(ST_MakePoint(x, y), 4326), a, g, f
				FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::text[], $7::text[]) u(w, t, x, y, a, g, f)
				ON CONFLICT (worker, t) DO NOTHING
				RETURNING worker, t, geom, grid_code, flag),
			latest AS (
				INSERT INTO patrol_last AS l (worker, t, geom, grid_code)
				SELECT DISTINCT ON (worker) worker, t, geom, grid_code FROM ins WHERE flag IS NULL ORDER BY worker, t DESC
				ON CONFLICT (worker) DO UPDATE SET t = EXCLUDED.t, geom = EXCLUDED.geom, grid_code = EXCLUDED.grid_code
				WHERE l.t < EXCLUDED.t),
			days AS (
				INSERT INTO patrol_days (worker, day)
				SELECT DISTINCT worker, (t AT TIME ZONE $8)::date FROM ins
				ON CONFLICT (worker, day) DO UPDATE SET stale = true)
			SELECT count(*) FROM ins`,
			ws, ts, lons, lats, accs, grids, flags, loc.String()).Scan(&res.Stored)
	})
	if err != nil {
		return nil, err
	}
	res.Duplicates = res.Received - res.Stored
	return res, nil
}

// haversineM is the great-circle distance in metres (the speed check needs
// no better: 200 km/h is far above a walking or cycling worker).
func haversineM(lon1, lat1, lon2, lat2 float64) float64 {
	const r = 6371008.8
	rad := math.Pi / 180
	dlat, dlon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}

// refreshPatrolDaySQL recomputes one worker's day from its unflagged
// points: the track, its length, the time on patrol, and per base grid the
// covered part (the track buffered by the radius in the UTM zone of the
// track, intersected with the grid there, back in WGS-84), its share of
// the grid's area (both areas in that zone: the zone's scale error is the
// same on both and cancels in the share), and the time between
// consecutive points both in the grid. $1 worker, $2 day, $3 zone name,
// $4 radius m, $5 gap.
const refreshPatrolDaySQL = `
WITH p AS (
	SELECT t, geom, grid_code, lag(t) OVER w AS pt, lag(grid_code) OVER w AS pg
	FROM patrol_points
	WHERE worker = $1 AND flag IS NULL
	  AND t >= ($2::date)::timestamp AT TIME ZONE $3 AND t < ($2::date + 1)::timestamp AT TIME ZONE $3
	WINDOW w AS (ORDER BY t)),
agg AS (
	SELECT count(*) AS n, min(t) AS first_t, max(t) AS last_t,
	       CASE WHEN count(*) >= 2 THEN ST_MakeLine(geom ORDER BY t) END AS track,
	       ST_Collect(geom) AS pts,
	       coalesce(sum(extract(epoch FROM t - pt)) FILTER (WHERE t - pt <= $5), 0) AS secs
	FROM p),
day AS (
	UPDATE patrol_days d SET stale = false, track = agg.track, points = agg.n,
		flagged = (SELECT count(*) FROM patrol_points f WHERE f.worker = $1 AND f.flag IS NOT NULL
			AND f.t >= ($2::date)::timestamp AT TIME ZONE $3 AND f.t < ($2::date + 1)::timestamp AT TIME ZONE $3),
		length_m = coalesce(ST_Length(agg.track::geography), 0), seconds = agg.secs,
		first_t = agg.first_t, last_t = agg.last_t
	FROM agg WHERE d.worker = $1 AND d.day = $2
	RETURNING d.worker),
shape AS MATERIALIZED (
	SELECT srid, buf, ST_Transform(buf, 4326) AS buf4326
	FROM (SELECT z.srid, ST_Buffer(ST_Transform(coalesce(agg.track, agg.pts), z.srid), $4) AS buf
		FROM agg, LATERAL (SELECT gridmap_utm_srid(coalesce(agg.track, agg.pts)) AS srid) z WHERE agg.n > 0) b),
hit AS MATERIALIZED (
	SELECT u.code, ST_Transform(u.geom, s.srid) AS g, s.buf
	FROM shape s JOIN units u ON u.geom && s.buf4326 AND ST_Intersects(u.geom, s.buf4326)
	WHERE u.layer = 'base' AND u.level = 'grid' AND u.valid_to IS NULL),
cut AS MATERIALIZED (
	SELECT code, ST_Intersection(buf, g) AS part, ST_Area(g) AS area FROM hit),
cov AS (
	SELECT code, ST_Area(part) / nullif(area, 0) AS share,
	       ST_Multi(ST_CollectionExtract(ST_Transform(part, 4326), 3)) AS covered
	FROM cut),
secs AS (
	SELECT grid_code AS code, sum(extract(epoch FROM t - pt)) AS s FROM p
	WHERE grid_code IS NOT NULL AND pg = grid_code AND t - pt <= $5 GROUP BY grid_code)
INSERT INTO patrol_day_grids (worker, day, grid_code, share, seconds, covered)
SELECT $1, $2, coalesce(c.code, s.code), least(1, greatest(0, coalesce(c.share, 0))), coalesce(s.s, 0), c.covered
FROM cov c FULL JOIN secs s ON s.code = c.code
WHERE coalesce(c.share, 0) > 0 OR coalesce(s.s, 0) > 0`

// refreshPatrolDays computes the stale days of the workers given (all
// when nil) between from and to (inclusive), each in a transaction of its
// own that holds the day's row: an ingest marking the day stale meanwhile
// waits for it, then marks it again.
func (s *Store) refreshPatrolDays(ctx context.Context, workers []int64, from, to time.Time) error {
	rows, err := s.Pool.Query(ctx, `SELECT worker, day FROM patrol_days
		WHERE stale AND day BETWEEN $1 AND $2 AND ($3::bigint[] IS NULL OR worker = ANY($3)) ORDER BY day, worker`,
		from, to, workers)
	if err != nil {
		return err
	}
	type key struct {
		w int64
		d time.Time
	}
	var stale []key
	if err := forEach(rows, func() error {
		var k key
		err := rows.Scan(&k.w, &k.d)
		stale = append(stale, k)
		return err
	}); err != nil {
		return err
	}
	zone := s.cityTime().String()
	for _, k := range stale {
		err := pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
			var still bool
			err := tx.QueryRow(ctx, `SELECT stale FROM patrol_days WHERE worker = $1 AND day = $2 FOR UPDATE`, k.w, k.d).Scan(&still)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && !still) {
				return nil // another reader computed it
			}
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM patrol_day_grids WHERE worker = $1 AND day = $2`, k.w, k.d); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, refreshPatrolDaySQL, k.w, k.d, zone, PatrolRadiusM, PatrolGap)
			return err
		})
		if err != nil {
			return fmt.Errorf("patrol day %d %s: %w", k.w, k.d.Format(time.DateOnly), err)
		}
	}
	return nil
}

// RefreshPatrols computes every stale day between from and to (demos, and
// anyone who wants reads to find them done).
func (s *Store) RefreshPatrols(ctx context.Context, from, to time.Time) error {
	return s.refreshPatrolDays(ctx, nil, from, to)
}

// PatrolGrid is a worker's day in one grid.
type PatrolGrid struct {
	Code    string  `json:"code"`
	Share   float64 `json:"share"`
	Seconds float64 `json:"seconds"`
}

// PatrolDay is a worker's day of patrol.
type PatrolDay struct {
	Worker  int64        `json:"worker"`
	Date    string       `json:"date"`
	Points  int          `json:"points"`
	Flagged int          `json:"flagged"`
	LengthM float64      `json:"length_m"`
	Seconds float64      `json:"seconds"`
	First   *time.Time   `json:"first,omitempty"`
	Last    *time.Time   `json:"last,omitempty"`
	Track   []byte       `json:"-"` // WKB LineString (WGS-84), nil with fewer than 2 points
	Grids   []PatrolGrid `json:"grids"`
	// Assigned are the grids the worker answers for (first those where
	// they are the responsible worker, then backups); AssignedShare the
	// mean share of them this worker covered that day (nil without any).
	Assigned      []string `json:"assigned"`
	AssignedShare *float64 `json:"assigned_share"`
}

// PatrolDay reads (computing it first when stale) a worker's day;
// ErrNotFound when the worker is no person. A day without points is a day
// of zeros.
func (s *Store) PatrolDay(ctx context.Context, worker int64, day time.Time) (*PatrolDay, error) {
	var one int
	if err := s.Pool.QueryRow(ctx, `SELECT 1 FROM people WHERE id = $1`, worker).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	if err := s.refreshPatrolDays(ctx, []int64{worker}, day, day); err != nil {
		return nil, err
	}
	d := &PatrolDay{Worker: worker, Date: day.Format(time.DateOnly), Grids: []PatrolGrid{}}
	err := s.readSnapshot(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT points, flagged, length_m, seconds, first_t, last_t, ST_AsBinary(track)
			FROM patrol_days WHERE worker = $1 AND day = $2`, worker, day).
			Scan(&d.Points, &d.Flagged, &d.LengthM, &d.Seconds, &d.First, &d.Last, &d.Track)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT grid_code, share, seconds FROM patrol_day_grids WHERE worker = $1 AND day = $2 ORDER BY grid_code`, worker, day)
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			var g PatrolGrid
			err := rows.Scan(&g.Code, &g.Share, &g.Seconds)
			d.Grids = append(d.Grids, g)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	d.Assigned = []string{}
	rows, err := s.Pool.Query(ctx, `SELECT grid_code FROM grid_workers WHERE person_id = $1 ORDER BY rank > 0, grid_code`, worker)
	if err != nil {
		return nil, err
	}
	if err := forEach(rows, func() error {
		var g string
		err := rows.Scan(&g)
		d.Assigned = append(d.Assigned, g)
		return err
	}); err != nil {
		return nil, err
	}
	if len(d.Assigned) > 0 {
		shares := map[string]float64{}
		for _, g := range d.Grids {
			shares[g.Code] = g.Share
		}
		sum := 0.0
		for _, g := range d.Assigned {
			sum += shares[g]
		}
		m := sum / float64(len(d.Assigned))
		d.AssignedShare = &m
	}
	for _, t := range []**time.Time{&d.First, &d.Last} {
		if *t != nil {
			v := (*t).In(s.cityTime())
			*t = &v
		}
	}
	return d, err
}

// GridCoverage is a day's patrol of one grid by every worker: the share
// of its area within the radius of any track, the time workers spent in
// it (added over workers) and who.
type GridCoverage struct {
	Code    string  `json:"code"`
	Share   float64 `json:"share"`
	Seconds float64 `json:"seconds"`
	Workers []int64 `json:"workers"`
}

// PatrolCoverage lists the base grids under unit (its code's subtree;
// every grid when "") with their coverage on day, grids never walked
// included (share 0), by code.
func (s *Store) PatrolCoverage(ctx context.Context, unit string, day time.Time) ([]GridCoverage, error) {
	if err := s.refreshPatrolDays(ctx, nil, day, day); err != nil {
		return nil, err
	}
	rows, err := s.Pool.Query(ctx, `
		WITH g AS (SELECT code, geom FROM units WHERE layer = 'base' AND level = 'grid' AND valid_to IS NULL AND starts_with(code, $1)),
		c AS (SELECT grid_code, ST_Union(covered) AS covered, sum(seconds) AS secs, array_agg(DISTINCT worker ORDER BY worker) AS workers
			FROM patrol_day_grids WHERE day = $2 AND starts_with(grid_code, $1) GROUP BY grid_code)
		SELECT g.code,
			least(1, coalesce(ST_Area(ST_Transform(c.covered, z.srid)) / nullif(ST_Area(ST_Transform(g.geom, z.srid)), 0), 0)),
			coalesce(c.secs, 0), coalesce(c.workers, '{}')
		FROM g LEFT JOIN c ON c.grid_code = g.code, LATERAL (SELECT gridmap_utm_srid(g.geom) AS srid) z
		ORDER BY g.code`, unit, day)
	if err != nil {
		return nil, err
	}
	out := []GridCoverage{}
	err = forEach(rows, func() error {
		var c GridCoverage
		err := rows.Scan(&c.Code, &c.Share, &c.Seconds, &c.Workers)
		out = append(out, c)
		return err
	})
	return out, err
}

// Position is a worker's latest unflagged point.
type Position struct {
	Worker   int64     `json:"worker"`
	T        time.Time `json:"t"`
	Lon      float64   `json:"lon"`
	Lat      float64   `json:"lat"`
	GridCode string    `json:"grid,omitempty"`
}

// LatestPositions are the workers' latest points newer than since.
func (s *Store) LatestPositions(ctx context.Context, since time.Time) ([]Position, error) {
	rows, err := s.Pool.Query(ctx, `SELECT worker, t, ST_X(geom), ST_Y(geom), coalesce(grid_code, '') FROM patrol_last WHERE t > $1 ORDER BY worker`, since)
	if err != nil {
		return nil, err
	}
	var out []Position
	err = forEach(rows, func() error {
		var p Position
		err := rows.Scan(&p.Worker, &p.T, &p.Lon, &p.Lat, &p.GridCode)
		out = append(out, p)
		return err
	})
	return out, err
}

// Walker is a worker and a grid they are responsible for (rank 0).
type Walker struct {
	Worker int64
	Grid   string
}

// PatrolWalkers lists up to n active workers with the first grid each is
// responsible for (simulations walk them there), by id.
func (s *Store) PatrolWalkers(ctx context.Context, n int) ([]Walker, error) {
	rows, err := s.Pool.Query(ctx, `SELECT DISTINCT ON (p.id) p.id, g.grid_code FROM people p
		JOIN grid_workers g ON g.person_id = p.id AND g.rank = 0
		JOIN units u ON u.code = g.grid_code AND u.layer = 'base' AND u.valid_to IS NULL
		WHERE p.role = 'worker' AND p.status = 'active' ORDER BY p.id, g.grid_code LIMIT $1`, n)
	if err != nil {
		return nil, err
	}
	var out []Walker
	err = forEach(rows, func() error {
		var w Walker
		err := rows.Scan(&w.Worker, &w.Grid)
		out = append(out, w)
		return err
	})
	return out, err
}

// patrolFigures fills the patrol columns of figures rows computed by
// FiguresOf (level worker, community or street; n the code length of the
// units) over [from, to) (nil: unbounded), after computing the stale days
// of the period. PatrolHours adds the time on patrol of the row's workers
// (a unit's: of every worker, by the grids walked). PatrolCoverage is the
// mean, over the row's grids (a worker's: those they are responsible for)
// and the period's days, of the grid's share covered that day: a worker by
// their own tracks, a unit by all workers' (the union of their covered
// parts). The days are the city's calendar days from from to to; an
// unbounded side stops at the first or last day with patrols. Rows without
// grids or without days keep null.
func (s *Store) patrolFigures(ctx context.Context, f *Figures, n int, from, to *time.Time) error {
	loc := s.cityTime()
	var first, last *time.Time
	if err := s.Pool.QueryRow(ctx, `SELECT min(day), max(day) FROM patrol_days`).Scan(&first, &last); err != nil || first == nil {
		return err
	}
	d0, d1 := *first, *last
	if from != nil {
		y, m, d := from.In(loc).Date()
		d0 = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	if to != nil {
		y, m, d := to.In(loc).Add(-time.Nanosecond).Date() // to is exclusive
		d1 = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	if d1.Before(d0) {
		return nil
	}
	if err := s.refreshPatrolDays(ctx, nil, d0, d1); err != nil {
		return err
	}
	days := int(d1.Sub(d0).Hours()/24) + 1
	var rows pgx.Rows
	var err error
	if n == 0 {
		rows, err = s.Pool.Query(ctx, `
			WITH a AS (SELECT person_id, grid_code FROM grid_workers WHERE rank = 0),
			cov AS (
				SELECT a.person_id AS id, sum(g.share) AS s FROM a
				JOIN patrol_day_grids g ON g.worker = a.person_id AND g.grid_code = a.grid_code AND g.day BETWEEN $1 AND $2
				GROUP BY 1),
			n AS (SELECT person_id AS id, count(*) AS grids FROM a GROUP BY 1),
			h AS (SELECT worker AS id, sum(seconds) AS secs FROM patrol_days WHERE day BETWEEN $1 AND $2 GROUP BY 1)
			SELECT p.id::text, CASE WHEN n.grids > 0 THEN coalesce(cov.s, 0) / (n.grids * $3) END, coalesce(h.secs, 0) / 3600
			FROM people p LEFT JOIN n ON n.id = p.id LEFT JOIN cov ON cov.id = p.id LEFT JOIN h ON h.id = p.id
			WHERE p.role = 'worker'`, d0, d1, days)
	} else {
		rows, err = s.Pool.Query(ctx, `
			WITH g AS (
				SELECT code, geom FROM units WHERE layer = 'base' AND level = 'grid' AND valid_to IS NULL),
			u AS (
				SELECT grid_code, day, ST_Union(covered) AS covered, sum(seconds) AS secs
				FROM patrol_day_grids WHERE day BETWEEN $1 AND $2 GROUP BY 1, 2),
			share AS (
				SELECT left(g.code, $4) AS k, sum(coalesce(ST_Area(ST_Transform(u.covered, z.srid)) / nullif(ST_Area(ST_Transform(g.geom, z.srid)), 0), 0)) AS s,
					sum(u.secs) AS secs
				FROM u JOIN g ON g.code = u.grid_code, LATERAL (SELECT gridmap_utm_srid(g.geom) AS srid) z
				GROUP BY 1),
			n AS (SELECT left(code, $4) AS k, count(*) AS grids FROM g GROUP BY 1)
			SELECT n.k, least(1, coalesce(share.s, 0) / (n.grids * $3)), coalesce(share.secs, 0) / 3600
			FROM n LEFT JOIN share ON share.k = n.k`, d0, d1, days, n)
	}
	if err != nil {
		return err
	}
	type fig struct{ cov, hours *float64 }
	by := map[string]fig{}
	if err := forEach(rows, func() error {
		var k string
		var x fig
		err := rows.Scan(&k, &x.cov, &x.hours)
		by[k] = x
		return err
	}); err != nil {
		return err
	}
	var covSum, hours float64
	var covN int
	for i := range f.Rows {
		r := &f.Rows[i]
		if x, ok := by[r.Code]; ok {
			r.PatrolCoverage, r.PatrolHours = x.cov, x.hours
			if x.cov != nil {
				covSum += *x.cov * float64(r.Grids)
				covN += r.Grids
			}
			if x.hours != nil {
				hours += *x.hours
			}
		}
	}
	if covN > 0 {
		c := covSum / float64(covN)
		f.Total.PatrolCoverage = &c
	}
	f.Total.PatrolHours = &hours
	return nil
}
