package data_test

import (
	"context"
	"testing"
	"time"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
)

// BenchmarkSearch: GET /v1/search's store query on the full demo city
// (~20,000 grids) with 200,000 demo objects and 20,000 demo events, one
// sub-benchmark per kind of query (docs/benchmarks.md, Search).
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	s := pgtest.NewFullDemo(b)
	st, err := demo.Objects(ctx, s, 200000, 5, false)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.ImportObjects(ctx, st, data.ObjectImportOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := demo.Events(ctx, s, 20000, 5, time.Now()); err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"units", "objects", "events"} {
		if _, err := s.Pool.Exec(ctx, `VACUUM ANALYZE `+table); err != nil {
			b.Fatal(err)
		}
	}
	var grid, object, event string
	if err := s.Pool.QueryRow(ctx, `SELECT (SELECT max(code) FROM units WHERE level = 'grid'), (SELECT max(code) FROM objects),
		(SELECT max(code) FROM events)`).Scan(&grid, &object, &event); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, q string }{
		{"name-2-chars", "梅沙"},
		{"name-1-char", "沙"},
		{"name-4-chars", "梅沙街道"},
		{"name-3-chars-many", "居委会"},
		{"description-4-chars", "占道经营"},
		{"code-prefix-4", "4403"},
		{"grid-code", grid},
		{"object-code", object},
		{"event-code", event},
		{"nothing", "不存在的名字"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				hits, err := s.Search(ctx, data.SearchFilter{Q: bc.q, Limit: data.DefaultSearchLimit})
				if err != nil {
					b.Fatal(err)
				}
				n = len(hits)
			}
			b.ReportMetric(float64(n), "hits")
		})
	}
}
