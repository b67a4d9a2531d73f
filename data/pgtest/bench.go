package pgtest

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"gridmap/data"
)

var (
	sharedOnce sync.Once
	sharedCity *data.Store
)

// BenchCityEnv names a database URL the benchmarks run on instead of a
// fresh full demo: a city built beforehand, such as the 200,000 grids of
// `gridmap bench province --keep` (a dense city takes minutes to build, too
// long to repeat per run). Benchmarks only read it.
const BenchCityEnv = "GRIDMAP_BENCH_CITY"

// SharedFullDemo is one full-scale demo city for every benchmark of a test
// process (or the city GRIDMAP_BENCH_CITY names). It outlives the benchmark
// that built it (a benchmark's own cleanup would drop it under the next
// one); the next run's stale-database sweep drops it.
func SharedFullDemo(tb testing.TB) *data.Store {
	tb.Helper()
	sharedOnce.Do(func() {
		if u := os.Getenv(BenchCityEnv); u != "" {
			s, err := data.Open(context.Background(), u)
			if err != nil {
				tb.Fatalf("pgtest: %s: %v", BenchCityEnv, err)
			}
			sharedCity = s
			return
		}
		sharedCity = NewFullDemo(processScope{tb})
	})
	if sharedCity == nil {
		tb.Fatal("pgtest: no shared demo city")
	}
	return sharedCity
}

// processScope defers cleanups to process exit.
type processScope struct{ testing.TB }

func (processScope) Cleanup(func()) {}

// RandomPoints draws n points, reproducibly for seed, over the bounding
// box of the store's units (in the demo about half fall inside a grid).
func RandomPoints(tb testing.TB, s *data.Store, n int, seed uint64) [][2]float64 {
	tb.Helper()
	var minX, minY, maxX, maxY float64
	if err := s.Pool.QueryRow(context.Background(),
		`SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM units WHERE valid_to IS NULL) x`).
		Scan(&minX, &minY, &maxX, &maxY); err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	pts := make([][2]float64, n)
	for i := range pts {
		pts[i] = [2]float64{minX + rng.Float64()*(maxX-minX), minY + rng.Float64()*(maxY-minY)}
	}
	return pts
}
