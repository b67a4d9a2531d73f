package data_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
)

// BenchmarkReportEvents: the reporting path of the store (key, code,
// department, deadline, event row with its triggers, log entry, feed row,
// commit) without HTTP, in batches of 16 from 4 writers, on the small demo
// city. Reported as events/s. The same file runs on the tree before
// migration 010 for the before/after of docs/benchmarks.md.
//
//	go test ./data/ -run '^$' -bench ReportEvents -benchtime=400x -count=3
func BenchmarkReportEvents(b *testing.B) {
	s := pgtest.NewDemo(b)
	ctx := context.Background()
	units, err := s.CurrentUnits(ctx)
	if err != nil {
		b.Fatal(err)
	}
	loc := grid.NewLocator(units)
	rows, err := s.Pool.Query(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid') x`)
	if err != nil {
		b.Fatal(err)
	}
	var pts [][2]float64
	for rows.Next() {
		var p [2]float64
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			b.Fatal(err)
		}
		pts = append(pts, p)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	const batch = 16
	var n atomic.Int64
	b.SetParallelism(2) // 2 × GOMAXPROCS (2) = 4 writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			evs := make([]data.NewEvent, batch)
			for j := range evs {
				p := pts[(int(i)*batch+j)%len(pts)]
				evs[j] = data.NewEvent{Class: "0102", Lon: p[0], Lat: p[1], CRS: geo.WGS84, InputLon: p[0], InputLat: p[1],
					Location: loc.Locate(p[0], p[1]), Description: "垃圾堆放", Source: grid.SourceGridWorker, Reporter: "网格员",
					IdempotencyKey: fmt.Sprintf("bench-%d-%d", i, j), BodyHash: []byte{byte(j)}}
			}
			res, err := s.ReportEvents(ctx, evs)
			if err != nil {
				b.Error(err)
				return
			}
			for _, r := range res {
				if r.Err != nil {
					b.Error(r.Err)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
