package data_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/grid"
)

// The locate benchmarks share one full-scale demo city (~20,000 grids) and
// one sample of points over its extent, about half of them inside it.
func benchCity(b *testing.B) (*data.Store, [][2]float64) {
	s := pgtest.SharedFullDemo(b)
	return s, pgtest.RandomPoints(b, s, 65536, 1)
}

// BenchmarkLocateMemory: the in-memory locator, all four base levels.
func BenchmarkLocateMemory(b *testing.B) {
	s, pts := benchCity(b)
	units, err := s.CurrentUnits(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	loc := grid.NewLocator(units)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(pts))
		for pb.Next() {
			p := pts[i%len(pts)]
			_ = loc.Locate(p[0], p[1])
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkLocateSQL: the same answer from PostGIS, one query per point
// (ST_Covers through the GiST index, lowest code per level).
func BenchmarkLocateSQL(b *testing.B) {
	s, pts := benchCity(b)
	ctx := context.Background()
	const q = `SELECT level, min(code) FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326))
		GROUP BY level`
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(pts))
		for pb.Next() {
			p := pts[i%len(pts)]
			rows, err := s.Pool.Query(ctx, q, p[0], p[1])
			if err != nil {
				b.Error(err)
				return
			}
			for rows.Next() {
				var level, code string
				if err := rows.Scan(&level, &code); err != nil {
					b.Error(err)
				}
			}
			rows.Close()
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkLocatorBuild: what the server does on start (api
// rebuildLocator): every current unit loaded from the store, then indexed.
// On the 200,000-grid city set GRIDMAP_BENCH_CITY (see pgtest).
func BenchmarkLocatorBuild(b *testing.B) {
	s, _ := benchCity(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		_, units, err := s.CurrentUnitVersions(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		plain := make([]grid.Unit, len(units))
		for i, u := range units {
			plain[i] = u.Unit
		}
		n = grid.NewLocator(plain).Len()
	}
	b.ReportMetric(float64(n), "units")
}
