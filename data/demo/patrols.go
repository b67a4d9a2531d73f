package demo

import (
	"context"
	"time"

	"gridmap/data"
)

// PatrolsResult says what Patrols wrote.
type PatrolsResult struct {
	Workers, Days, Points int
	// Seconds in all, InsertSeconds of them writing the points (the rest
	// computing the days).
	Seconds, InsertSeconds float64
}

// Patrols gives up to maxWorkers grid workers a walk through their grid on
// each of the last days (today's up to now): 16 random waypoints inside
// the grid (ST_GeneratePoints, seeded by worker and day) visited in order
// of their bearing from the grid's centre, the path cut every 60 m
// (ST_Segmentize on the geography), a fix every 45 s (1.3 m/s) from 9:00
// plus a few minutes per worker. One INSERT … SELECT; then the days are
// computed (tracks, coverage), so the wall and the figures have them at
// once. Days that hold points already are left alone.
func Patrols(ctx context.Context, s *data.Store, days, maxWorkers int) (PatrolsResult, error) {
	start := time.Now()
	var res PatrolsResult
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		return res, err
	}
	zone := cfg.Calendar.Location().String()
	err = s.Pool.QueryRow(ctx, `
		WITH w AS (
			SELECT DISTINCT ON (g.person_id) g.person_id AS worker, u.code, u.geom
			FROM grid_workers g JOIN people p ON p.id = g.person_id AND p.status = 'active' AND p.role = 'worker'
			JOIN units u ON u.code = g.grid_code AND u.layer = 'base' AND u.valid_to IS NULL
			WHERE g.rank = 0 ORDER BY g.person_id, u.code LIMIT $2),
		d AS (SELECT back, ((now() AT TIME ZONE $3)::date - back) AS day FROM generate_series(0, $1 - 1) back),
		todo AS (
			SELECT w.*, d.back, d.day FROM w CROSS JOIN d
			WHERE NOT EXISTS (SELECT 1 FROM patrol_days x WHERE x.worker = w.worker AND x.day = d.day)),
		wp AS (
			SELECT worker, code, back, day, (ST_Dump(ST_GeneratePoints(geom, 16, (worker * 37 + back + 1)::int))).geom AS p,
				ST_PointOnSurface(geom) AS c
			FROM todo),
		path AS (
			SELECT worker, code, day, ST_MakeLine(p ORDER BY ST_Azimuth(c, p)) AS line FROM wp GROUP BY worker, code, day),
		pts AS (
			SELECT worker, code, day, (ST_DumpPoints(ST_Segmentize(line::geography, 60)::geometry)) AS dp FROM path),
		ins AS (
			INSERT INTO patrol_points (worker, t, geom, accuracy_m, grid_code)
			SELECT worker, (day + time '09:00') AT TIME ZONE $3 + ((dp).path[1] * 45 + (worker % 90) * 60) * interval '1 second',
				(dp).geom, 8, code
			FROM pts
			WHERE (day + time '09:00') AT TIME ZONE $3 + ((dp).path[1] * 45 + (worker % 90) * 60) * interval '1 second' < now()
			ON CONFLICT (worker, t) DO NOTHING
			RETURNING worker, t, geom, grid_code),
		last AS (
			INSERT INTO patrol_last AS l (worker, t, geom, grid_code)
			SELECT DISTINCT ON (worker) worker, t, geom, grid_code FROM ins ORDER BY worker, t DESC
			ON CONFLICT (worker) DO UPDATE SET t = EXCLUDED.t, geom = EXCLUDED.geom, grid_code = EXCLUDED.grid_code WHERE l.t < EXCLUDED.t),
		marked AS (
			INSERT INTO patrol_days (worker, day)
			SELECT DISTINCT worker, (t AT TIME ZONE $3)::date FROM ins
			ON CONFLICT (worker, day) DO UPDATE SET stale = true
			RETURNING 1)
		SELECT (SELECT count(DISTINCT worker) FROM ins), (SELECT count(*) FROM marked), (SELECT count(*) FROM ins)`,
		days, maxWorkers, zone).Scan(&res.Workers, &res.Days, &res.Points)
	if err != nil {
		return res, err
	}
	inserted := time.Since(start)
	today := time.Now().In(cfg.Calendar.Location())
	if err := s.RefreshPatrols(ctx, today.AddDate(0, 0, -days), today); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	res.InsertSeconds = inserted.Seconds()
	return res, nil
}
