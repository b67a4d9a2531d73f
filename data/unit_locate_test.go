package data_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"

	"gridmap/data/pgtest"
	"gridmap/grid"
)

// TestLocatorEqualsPostGIS checks the in-memory locator against PostGIS
// ST_Covers with the same rule (the deepest covering unit, lowest code on a
// shared edge, and its ancestors) on the full-scale demo: 100,000 random
// points over the city's extent, plus every vertex of 2,000 grids, which lie
// on shared edges and exercise the edge rule.
func TestLocatorEqualsPostGIS(t *testing.T) {
	t.Parallel()
	s := pgtest.NewFullDemo(t)
	ctx := context.Background()
	units, err := s.CurrentUnits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loc := grid.NewLocator(units)

	var minX, minY, maxX, maxY float64
	if err := s.Pool.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM units WHERE valid_to IS NULL) x`).Scan(&minX, &minY, &maxX, &maxY); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var pts [][2]float64
	for range 100000 {
		pts = append(pts, [2]float64{minX + rng.Float64()*(maxX-minX), minY + rng.Float64()*(maxY-minY)})
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT DISTINCT ST_X(d.geom), ST_Y(d.geom)
		FROM (SELECT geom FROM units WHERE valid_to IS NULL AND level = 'grid' ORDER BY code LIMIT 2000) u,
		     ST_DumpPoints(u.geom) d`)
	if err != nil {
		t.Fatal(err)
	}
	vertices := 0
	var p [2]float64
	if _, err := pgx.ForEachRow(rows, []any{&p[0], &p[1]}, func() error {
		vertices++
		pts = append(pts, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE pts (id int, x float8, y float8, geom geometry(Point, 4326))`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pts"}, []string{"id", "x", "y"}, pgx.CopyFromSlice(len(pts), func(i int) ([]any, error) {
		return []any{i, pts[i][0], pts[i][1]}, nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE pts SET geom = ST_SetSRID(ST_MakePoint(x, y), 4326); ANALYZE pts`); err != nil {
		t.Fatal(err)
	}
	rows, err = tx.Query(ctx, `
		SELECT DISTINCT ON (p.id, u.level) p.id, u.level, u.code
		FROM pts p JOIN units u ON u.valid_to IS NULL AND u.layer = 'base' AND ST_Covers(u.geom, p.geom)
		ORDER BY p.id, u.level, u.code`)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]map[grid.Level]string, len(pts))
	var id int
	var level, code string
	if _, err := pgx.ForEachRow(rows, []any{&id, &level, &code}, func() error {
		if want[id] == nil {
			want[id] = map[grid.Level]string{}
		}
		want[id][grid.Level(level)] = code
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The chain rule, applied to PostGIS's per-level answers.
	parent := map[string]string{}
	for _, u := range units {
		parent[u.Code] = u.ParentCode
	}
	for i, w := range want {
		chain := map[grid.Level]string{}
		for d := len(grid.Levels) - 1; d >= 0; d-- {
			if code := w[grid.Levels[d]]; code != "" {
				for l := d; l >= 0 && code != ""; l-- {
					chain[grid.Levels[l]] = code
					code = parent[code]
				}
				break
			}
		}
		want[i] = chain
	}

	covered, mismatches := 0, 0
	for i, p := range pts {
		got := loc.Locate(p[0], p[1])
		refs := map[grid.Level]*grid.Ref{grid.District: got.District, grid.Street: got.Street, grid.Community: got.Community, grid.Grid: got.Grid}
		for _, l := range grid.Levels {
			g := ""
			if refs[l] != nil {
				g = refs[l].Code
			}
			if g != want[i][l] {
				mismatches++
				if mismatches <= 10 {
					t.Errorf("point %d (%.9f %.9f) %s: locator %q, PostGIS %q", i, p[0], p[1], l, g, want[i][l])
				}
			}
		}
		if got.Grid != nil {
			covered++
			// Consistent chain: every ancestor present and a prefix.
			if got.Community == nil || got.Street == nil || got.District == nil ||
				got.Grid.Code[:12] != got.Community.Code || got.Community.Code[:9] != got.Street.Code || got.Street.Code[:6] != got.District.Code {
				mismatches++
				t.Errorf("point %d (%.15g %.15g): inconsistent chain %+v", i, p[0], p[1], got)
			}
		}
	}
	t.Logf("%d points (%d grid vertices), %d inside a grid, %d mismatches", len(pts), vertices, covered, mismatches)
	if covered < 30000 {
		t.Errorf("only %d points fell inside the city; the sample is too thin", covered)
	}
	if mismatches > 0 {
		t.Errorf("%d level answers differ from PostGIS", mismatches)
	}
}
