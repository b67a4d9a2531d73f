package demo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gridmap/data/demo"
	"gridmap/data/pgtest"
)

// TestDemoPatrols: every worker walks in their grid on each day, no fix is
// a jump, the days are computed, and a second run adds no point to a day
// already walked.
func TestDemoPatrols(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := pgtest.NewDemo(t)
	if _, err := demo.People(ctx, s); err != nil {
		t.Fatal(err)
	}
	res, err := demo.Patrols(ctx, s, 3, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Workers == 0 || res.Points < res.Workers*2*10 {
		t.Fatalf("patrols: %+v", res)
	}
	var stale, days, maxSpeed float64
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE stale), count(*) FROM patrol_days`).Scan(&stale, &days); err != nil {
		t.Fatal(err)
	}
	if stale != 0 || int(days) != res.Days {
		t.Fatalf("%v stale of %v days, %d written", stale, days, res.Days)
	}
	if err := s.Pool.QueryRow(ctx, `SELECT max(ST_Distance(geom::geography, pg::geography) / extract(epoch FROM t - pt)) * 3.6 FROM (
		SELECT geom, t, lag(geom) OVER w pg, lag(t) OVER w pt FROM patrol_points WINDOW w AS (PARTITION BY worker ORDER BY t)) x WHERE pt IS NOT NULL`).Scan(&maxSpeed); err != nil {
		t.Fatal(err)
	}
	if maxSpeed > 10 {
		t.Fatalf("a demo walk at %.1f km/h", maxSpeed)
	}
	var covered float64
	if err := s.Pool.QueryRow(ctx, `SELECT avg(share) FROM patrol_day_grids WHERE day = (now() AT TIME ZONE 'Asia/Shanghai')::date - 1`).Scan(&covered); err != nil || covered <= 0 {
		t.Fatalf("yesterday's mean share %v, %v", covered, err)
	}
	// The figures carry the patrols: every worker walked every day.
	for _, level := range []string{"worker", "community", "street"} {
		f, err := s.FiguresOf(ctx, level, "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range f.Rows {
			if r.PatrolCoverage == nil || *r.PatrolCoverage <= 0 || *r.PatrolCoverage > 1 || r.PatrolHours == nil || *r.PatrolHours <= 0 {
				t.Fatalf("%s %s: coverage %v, hours %v", level, r.Code, r.PatrolCoverage, r.PatrolHours)
			}
		}
		if f.Total.PatrolCoverage == nil || f.Total.PatrolHours == nil {
			t.Fatalf("%s total: %+v", level, f.Total)
		}
		t.Logf("%s: %d rows, coverage %.3f, %.1f h", level, len(f.Rows), *f.Total.PatrolCoverage, *f.Total.PatrolHours)
	}
	// A second run leaves every walked day alone. It may walk today for a
	// worker whose start (9:00 plus a few minutes per worker, the
	// calendar's time zone) has passed since the first run: between 9:00
	// and 10:30 that is a new day of points, not a second walk.
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	zone := cfg.Calendar.Location()
	perDay := func() map[string]int {
		rows, err := s.Pool.Query(ctx, `SELECT worker || ' ' || (t AT TIME ZONE $1)::date, count(*) FROM patrol_points GROUP BY 1`, zone.String())
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			out[k] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	walked := perDay()
	again, err := demo.Patrols(ctx, s, 3, 1000)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	today := time.Now().In(zone).Format("2006-01-02")
	for k, n := range perDay() {
		if was, ok := walked[k]; ok && was != n {
			t.Errorf("second run: worker and day %s had %d points, now %d", k, was, n)
		} else if !ok && !strings.HasSuffix(k, today) {
			t.Errorf("second run: a new walk on %s, not today (%s)", k, today)
		}
	}
	t.Logf("second run: %+v", again)
}
