package demo_test

import (
	"context"
	"testing"

	"gridmap/data/demo"
	"gridmap/data/pgtest"
)

// TestDemoPatrols: every worker walks in their grid on each day, no fix is
// a jump, the days are computed, and a second run adds nothing.
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
	again, err := demo.Patrols(ctx, s, 3, 1000)
	if err != nil || again.Points != 0 {
		t.Fatalf("second run: %+v %v", again, err)
	}
}
