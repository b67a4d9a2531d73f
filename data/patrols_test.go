package data_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/grid"
)

// knownTrack walks east through the middle of a demo grid: n points 30 s
// and stepM metres apart, each located by PostGIS.
func knownTrack(t *testing.T, s *data.Store, worker int64, start time.Time, n int, stepM float64) (string, []data.PatrolPoint) {
	t.Helper()
	ctx := context.Background()
	var code string
	var lon, lat float64
	if err := s.Pool.QueryRow(ctx, `SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM units
		WHERE layer = 'base' AND level = 'grid' AND valid_to IS NULL ORDER BY code LIMIT 1) x`).Scan(&code, &lon, &lat); err != nil {
		t.Fatal(err)
	}
	dLon := stepM / (111320 * math.Cos(lat*math.Pi/180))
	pts := make([]data.PatrolPoint, n)
	for i := range pts {
		x := lon + float64(i-n/2)*dLon
		var g *string
		if err := s.Pool.QueryRow(ctx, `SELECT code FROM units WHERE layer = 'base' AND level = 'grid' AND valid_to IS NULL
			AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) ORDER BY code LIMIT 1`, x, lat).Scan(&g); err != nil && err.Error() != "no rows in result set" {
			t.Fatal(err)
		}
		pts[i] = data.PatrolPoint{Worker: worker, T: start.Add(time.Duration(i) * 30 * time.Second), Lon: x, Lat: lat}
		if g != nil {
			pts[i].GridCode = *g
		}
	}
	return code, pts
}

func newWorker(t *testing.T, s *data.Store, name string) int64 {
	t.Helper()
	p, err := s.CreatePerson(context.Background(), grid.Person{Name: name, Role: grid.RoleWorker, Status: grid.PersonActive})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// TestPatrolCoverageAgainstPostGIS: the share of a grid within 30 m of a
// known track, as the store computes it (buffer in the UTM zone), against
// PostGIS's geography buffer of the same track; the time in the grid;
// a jump flagged and left out; a retried batch stored once; an unknown
// worker refused with nothing written.
func TestPatrolCoverageAgainstPostGIS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := pgtest.NewDemo(t)
	w := newWorker(t, s, "网格员甲")
	loc, _ := time.LoadLocation("Asia/Shanghai")
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, loc)
	code, pts := knownTrack(t, s, w, start, 21, 20) // 400 m at 2.4 km/h
	// A fix 5 km away 30 s after the 10th point: 600 km/h.
	glitch := pts[10]
	glitch.T = glitch.T.Add(15 * time.Second)
	glitch.Lat += 0.045
	glitch.GridCode = ""
	batch := append(append([]data.PatrolPoint{}, pts...), glitch)

	res, err := s.IngestPatrolPoints(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != len(batch) || res.Duplicates != 0 || len(res.Flagged) != 1 || res.Flagged[0].Index != len(batch)-1 || res.Flagged[0].Reason != "jump" {
		t.Fatalf("ingest: %+v", res)
	}
	again, err := s.IngestPatrolPoints(ctx, batch)
	if err != nil || again.Stored != 0 || again.Duplicates != len(batch) {
		t.Fatalf("retry: %+v %v", again, err)
	}

	day, err := s.PatrolDay(ctx, w, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if day.Points != len(pts) || day.Flagged != 1 || math.Abs(day.LengthM-400) > 2 || day.Seconds != 600 || day.Track == nil {
		t.Fatalf("day: %+v", day)
	}
	var want float64
	if err := s.Pool.QueryRow(ctx, `SELECT ST_Area(ST_Intersection(ST_Buffer(d.track::geography, 30)::geometry, u.geom)::geography)
			/ ST_Area(u.geom::geography)
		FROM patrol_days d, units u WHERE d.worker = $1 AND u.code = $2 AND u.layer = 'base' AND u.valid_to IS NULL`, w, code).Scan(&want); err != nil {
		t.Fatal(err)
	}
	var got *data.PatrolGrid
	var inGrid float64
	for i := range day.Grids {
		if day.Grids[i].Code == code {
			got = &day.Grids[i]
		}
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].GridCode == code && pts[i-1].GridCode == code {
			inGrid += 30
		}
	}
	if got == nil || want <= 0 || math.Abs(got.Share-want)/want > 0.01 || got.Seconds != inGrid {
		t.Fatalf("grid %s: got %+v, want share %.5f (geography buffer), %v s", code, got, want, inGrid)
	}
	t.Logf("share %.5f (UTM) vs %.5f (geography), %v s in grid", got.Share, want, got.Seconds)

	cov, err := s.PatrolCoverage(ctx, code[:12], time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cov {
		if len(c.Workers) == 0 && c.Share != 0 {
			t.Fatalf("a grid nobody walked has share %v", c.Share)
		}
		if c.Code == code {
			found = true
			if math.Abs(c.Share-got.Share) > 1e-6 || c.Seconds != got.Seconds || len(c.Workers) != 1 || c.Workers[0] != w {
				t.Fatalf("coverage %+v, day %+v", c, got)
			}
		}
	}
	if !found || len(cov) < 2 {
		t.Fatalf("coverage of %s: %d grids, %s missing", code[:12], len(cov), code)
	}

	// New points mark the day stale; the next read counts them.
	more := []data.PatrolPoint{pts[len(pts)-1]}
	more[0].T = more[0].T.Add(30 * time.Second)
	if _, err := s.IngestPatrolPoints(ctx, more); err != nil {
		t.Fatal(err)
	}
	if day, err = s.PatrolDay(ctx, w, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); err != nil || day.Points != len(pts)+1 {
		t.Fatalf("after more points: %+v %v", day, err)
	}

	var before int
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM patrol_points`).Scan(&before)
	bad := append([]data.PatrolPoint{}, pts[:2]...)
	bad[0].T = bad[0].T.Add(24 * time.Hour)
	bad[1].T = bad[1].T.Add(24 * time.Hour)
	bad[1].Worker = 999999
	_, err = s.IngestPatrolPoints(ctx, bad)
	if ie, ok := errors.AsType[*data.InvalidError](err); !ok || ie.Field != "points[1].worker" {
		t.Fatalf("unknown worker: %v", err)
	}
	var after int
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM patrol_points`).Scan(&after)
	if after != before {
		t.Fatalf("a refused batch wrote %d points", after-before)
	}
}
