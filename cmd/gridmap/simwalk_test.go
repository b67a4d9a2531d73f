package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"gridmap/data/demo"
	"gridmap/data/pgtest"
)

// TestSimulateWorkers: simulated workers walk inside their own grids,
// through the patrol ingest (no fix flagged), and their latest positions
// are there for the wall.
func TestSimulateWorkers(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	if _, err := demo.People(ctx, s); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := simulate(ctx, s, &out, simOptions{Workers: 10, Duration: 7 * time.Second, Seed: 5, Every: time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", out.String())
	var fixes, workers, flagged, outside int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT worker), count(*) FILTER (WHERE flag IS NOT NULL),
			count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM grid_workers g JOIN units u ON u.code = g.grid_code AND u.layer = 'base' AND u.valid_to IS NULL
				WHERE g.person_id = p.worker AND g.rank = 0 AND ST_Intersects(u.geom, p.geom)))
		FROM patrol_points p`).Scan(&fixes, &workers, &flagged, &outside); err != nil {
		t.Fatal(err)
	}
	if workers != 10 || fixes < 10 || flagged != 0 || outside != 0 {
		t.Fatalf("%d fixes of %d workers, %d flagged, %d outside their grid", fixes, workers, flagged, outside)
	}
	positions, err := s.LatestPositions(ctx, time.Now().Add(-time.Minute))
	if err != nil || len(positions) != 10 {
		t.Fatalf("latest positions: %d, %v", len(positions), err)
	}
	if txt := out.String(); !strings.Contains(txt, "10 workers walk their grids") || !strings.Contains(txt, "errors 0") {
		t.Errorf("output:\n%s", txt)
	}
}
