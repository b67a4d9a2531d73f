package data_test

import (
	"context"
	"testing"
	"time"

	"gridmap/data/pgtest"
)

// BenchmarkFeedRead: reads of a feed of 7 months × 50,000 entries (about
// 400 bytes each): a follower's read after the newest but 10, a resume
// from three months back (a page of 1,000), and the bounds a server reads
// on start and on every gap. On a partitioned feed (migration 010) the
// months are partitions of their own; without it (the same file run on
// the tree before) the same rows, numbered 1…, are in one table.
//
//	go test ./data/ -run '^$' -bench FeedRead -benchtime=2000x -count=3
func BenchmarkFeedRead(b *testing.B) {
	s := pgtest.New(b)
	ctx := context.Background()
	const months, perMonth = 7, 50_000
	var partitioned bool
	if err := s.Pool.QueryRow(ctx, `SELECT to_regproc('gridmap_feed_partitions') IS NOT NULL`).Scan(&partitioned); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	first := func(i int) int64 { // the first seq of month i (0 = months-1 back)
		if !partitioned {
			return int64(i*perMonth) + 1
		}
		m := time.Date(now.Year(), now.Month()-time.Month(months-1-i), 1, 0, 0, 0, 0, time.UTC)
		return int64(m.Year()*100+int(m.Month()))*10_000_000_000 + 1
	}
	if partitioned {
		// The past months, as they would be had the feed been partitioned
		// then: the partition of before goes first (it covers them).
		if _, err := s.Pool.Exec(ctx, `SELECT gridmap_feed_retain(0)`); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Pool.Exec(ctx, `SELECT gridmap_feed_partitions((now() - interval '7 months')::date, now()::date)`); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < months; i++ {
		if _, err := s.Pool.Exec(ctx, `INSERT INTO event_feed (seq, at, kind, event_code, status, class_code, grid_code, lon, lat, body)
			SELECT $1::bigint + k, now() - make_interval(days => $3 - k / 2000), 'created', '44030820261205000001', 'reported', '0102',
				'440308001001001', 114.2 + k * 1e-6, 22.6, jsonb_build_object('type', 'created', 'code', '44030820261205000001',
				'class', '0102', 'class_name', '暴露垃圾', 'status', 'reported', 'grid_code', '440308001001001', 'lon', 114.2,
				'lat', 22.6, 'department', 'cg', 'note', repeat('x', 160))
			FROM generate_series(0, $2 - 1) k`, first(i), perMonth, (months-i)*30); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Pool.Exec(ctx, `VACUUM ANALYZE event_feed`); err != nil {
		b.Fatal(err)
	}
	newest := first(months-1) + perMonth - 1
	for _, c := range []struct {
		name  string
		after int64
		limit int
		want  int
	}{
		{"follow", newest - 10, 1000, 10},
		{"resume_3_months_back", first(months-4) + 100, 1000, 1000},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				got, err := s.ReadFeed(ctx, c.after, c.limit)
				if err != nil || len(got) != c.want {
					b.Fatalf("ReadFeed(%d, %d): %d entries %v, want %d", c.after, c.limit, len(got), err, c.want)
				}
			}
		})
	}
	b.Run("bounds", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, n, err := s.FeedBounds(ctx); err != nil || n != newest {
				b.Fatalf("FeedBounds: %d %v, want %d", n, err, newest)
			}
		}
	})
}
