package demo_test

import (
	"context"
	"testing"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/grid"
)

func TestSmallDemoIsASeamlessPartition(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	counts, err := s.CountUnits(ctx, grid.BaseLayer)
	if err != nil {
		t.Fatal(err)
	}
	want := map[grid.Level]int{grid.District: 1, grid.Street: 5, grid.Community: 24, grid.Grid: 24 * pgtest.DemoOptions.GridsPerCommunity}
	for l, n := range want {
		if counts[l] != n {
			t.Errorf("%d %s units, want %d", counts[l], l, n)
		}
	}
	// The checker finds nothing…
	r, err := s.TopologyIssues(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Violations)+len(r.Warnings) != 0 || r.Units != 1+5+24+24*pgtest.DemoOptions.GridsPerCommunity {
		t.Errorf("topology issues in the demo (%d units checked): %+v %+v", r.Units, r.Violations, r.Warnings)
	}
	// …and an independent measure agrees.
	checkPartition(t, s)
}

func TestDemoIsDeterministic(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	res, err := demo.Build(context.Background(), s, pgtest.DemoOptions)
	if err != nil {
		t.Fatal(err)
	}
	total := res.Counts[grid.District] + res.Counts[grid.Street] + res.Counts[grid.Community] + res.Counts[grid.Grid]
	if res.Import.Unchanged != total || res.Import.Inserted+res.Import.Updated != 0 {
		t.Errorf("rebuilding with the same seed changed units: %+v", res.Import)
	}
	other := pgtest.DemoOptions
	other.Seed = 2
	res, err = demo.Build(context.Background(), s, other)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Import.OK() || res.Import.Updated == 0 {
		t.Errorf("another seed should redraw the city and still validate: %+v", res.Import)
	}
}

// The density switch cuts the same streets and communities into more
// grids: built over the small demo, the streets and communities stay
// unchanged, every grid of density 1 is redrawn or kept and the rest are
// new, the city still validates as complete (a gap would fail it) and is
// still a seamless partition; the same options build it again unchanged.
func TestDenseDemoKeepsStreetsAndCommunities(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	dense := pgtest.DemoOptions
	dense.Density = 10
	res, err := demo.Build(ctx, s, dense)
	if err != nil {
		t.Fatal(err)
	}
	const above, grids = 1 + 5 + 24, 24 * 8 * 10
	if !res.Import.OK() || res.Counts[grid.Grid] != grids || res.Counts[grid.Community] != 24 {
		t.Fatalf("dense demo: counts %v, import %+v", res.Counts, res.Import)
	}
	if res.Import.Unchanged+res.Import.Updated != above+24*8 || res.Import.Inserted != grids-24*8 {
		t.Errorf("dense demo over the small one: %d unchanged, %d updated, %d inserted; want %d kept or redrawn and %d new",
			res.Import.Unchanged, res.Import.Updated, res.Import.Inserted, above+24*8, grids-24*8)
	}
	var movedAbove int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM units WHERE level <> 'grid' AND valid_to IS NOT NULL`).Scan(&movedAbove); err != nil {
		t.Fatal(err)
	}
	if movedAbove != 0 {
		t.Errorf("%d streets, communities or districts redrawn by the density switch; want none", movedAbove)
	}
	counts, err := s.CountUnits(ctx, grid.BaseLayer)
	if err != nil {
		t.Fatal(err)
	}
	if counts[grid.Grid] != grids {
		t.Errorf("%d current grids, want %d", counts[grid.Grid], grids)
	}
	checkPartition(t, s)
	again, err := demo.Build(ctx, s, dense)
	if err != nil {
		t.Fatal(err)
	}
	if again.Import.Unchanged != above+grids || again.Import.Inserted+again.Import.Updated != 0 {
		t.Errorf("rebuilding the dense demo changed units: %+v", again.Import)
	}
}

func TestFullDemoCounts(t *testing.T) {
	t.Parallel()
	s := pgtest.NewFullDemo(t)
	counts, err := s.CountUnits(context.Background(), grid.BaseLayer)
	if err != nil {
		t.Fatal(err)
	}
	grids := 788 * demo.Defaults.GridsPerCommunity
	if counts[grid.District] != 9 || counts[grid.Street] != 79 || counts[grid.Community] != 788 || counts[grid.Grid] != grids {
		t.Errorf("full demo counts %v; want 9, 79, 788, %d", counts, grids)
	}
}

// checkPartition is a measure independent of the topology checker: at every
// level the children's union equals the parent (symmetric difference under
// 1 m²), their areas add up to 1e-9 of the parent's (no overlap), and each
// child's code extends its parent's.
func checkPartition(t *testing.T, s *data.Store) {
	t.Helper()
	ctx := context.Background()
	var worst float64
	var badSum, badPrefix int
	err := s.Pool.QueryRow(ctx, `
		WITH fam AS (
			SELECT p.code, p.geom, ST_Union(c.geom) AS u, sum(ST_Area(c.geom)) AS child_area,
			       bool_and(left(c.code, length(p.code)) = p.code) AS prefix_ok
			FROM units p JOIN units c ON c.parent_code = p.code AND c.valid_to IS NULL
			WHERE p.valid_to IS NULL GROUP BY p.code, p.geom
		)
		SELECT max(gridmap_area_m2(ST_SymDifference(geom, u))),
		       count(*) FILTER (WHERE abs(child_area - ST_Area(geom)) > 1e-9 * ST_Area(geom)),
		       count(*) FILTER (WHERE NOT prefix_ok)
		FROM fam`).Scan(&worst, &badSum, &badPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if worst > 1 || badSum != 0 || badPrefix != 0 {
		t.Errorf("partition: worst symmetric difference %.3f m², %d parents whose children's areas do not add up, %d bad prefixes", worst, badSum, badPrefix)
	}
}
