package data_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
)

func TestFeatureCollectionsAndPaging(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	cols, err := s.FeatureCollections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cols {
		ids = append(ids, c.ID)
	}
	want := []string{"districts", "streets", "communities", "grids", "objects", "events"}
	if len(ids) != len(want) {
		t.Fatalf("collections %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("collections %v, want %v", ids, want)
		}
	}
	if b := cols[3].BBox; b == nil || b[0] < 113 || b[2] > 115 || b[1] < 22 || b[3] > 23 {
		t.Errorf("grids extent %v", cols[3].BBox)
	}
	if _, err := s.FeatureCollection(ctx, "other-grids"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("a layer without units: %v, want ErrNotFound", err)
	}

	const c = "grids"
	var total int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM units WHERE valid_to IS NULL AND level = 'grid'`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	// Pages of 7 walk every grid once, in code order, and count them all.
	seen := map[string]bool{}
	last := ""
	q := data.FeatureQuery{Collection: c, Limit: 7, Count: true}
	for pages := 0; ; pages++ {
		info, err := s.FeaturePage(ctx, q, func(r *geo.Row) error {
			if seen[r.ID] || r.ID <= last {
				t.Fatalf("feature %s out of order or repeated (after %s)", r.ID, last)
			}
			seen[r.ID], last = true, r.ID
			if _, ok := r.Geometry.(orb.MultiPolygon); !ok {
				t.Fatalf("geometry %T", r.Geometry)
			}
			if r.Values[0] != r.ID || r.Values[2] != "grid" {
				t.Fatalf("values %v", r.Values)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if info.Matched != int64(total) {
			t.Fatalf("matched %d, want %d", info.Matched, total)
		}
		if info.Next == "" {
			break
		}
		q.After = info.Next
	}
	if len(seen) != total {
		t.Fatalf("walked %d grids, want %d", len(seen), total)
	}

	// Property filters and a box.
	q = data.FeatureQuery{Collection: c, Props: map[string]string{"parent_code": last[:12]}, Count: true}
	info, err := s.FeaturePage(ctx, q, func(*geo.Row) error { return nil })
	if err != nil || info.Matched != 8 {
		t.Fatalf("grids of %s: %d %v", last[:12], info.Matched, err)
	}
	q = data.FeatureQuery{Collection: c, Props: map[string]string{"version": "x"}}
	var fe *data.FilterError
	if err := s.Features(ctx, q, func(*geo.Row) error { return nil }); !errors.As(err, &fe) || fe.Param != "version" {
		t.Fatalf("bad version: %v", err)
	}
	n := 0
	b := orb.Bound{Min: orb.Point{cols[3].BBox[0], cols[3].BBox[1]}, Max: orb.Point{cols[3].BBox[0] + 0.02, cols[3].BBox[1] + 0.02}}
	if err := s.Features(ctx, data.FeatureQuery{Collection: c, BBox: &b}, func(*geo.Row) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	var inBox int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM units WHERE valid_to IS NULL AND level = 'grid'
		AND ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326))`, b.Min[0], b.Min[1], b.Max[0], b.Max[1]).Scan(&inBox); err != nil {
		t.Fatal(err)
	}
	if n != inBox || n == total {
		t.Fatalf("bbox: %d features, SQL %d (of %d)", n, inBox, total)
	}

	// Scopes: a street's grids only; a grid elsewhere is not found.
	street := last[:9]
	n = 0
	if err := s.Features(ctx, data.FeatureQuery{Collection: c, Scopes: []string{street}}, func(r *geo.Row) error {
		if r.ID[:9] != street {
			t.Fatalf("grid %s outside scope %s", r.ID, street)
		}
		n++
		return nil
	}); err != nil || n == 0 {
		t.Fatalf("scoped: %d %v", n, err)
	}
	var other string
	if err := s.Pool.QueryRow(ctx, `SELECT min(code) FROM units WHERE valid_to IS NULL AND level = 'grid' AND left(code, 9) <> $1`, street).Scan(&other); err != nil {
		t.Fatal(err)
	}
	if err := s.FeatureByID(ctx, data.FeatureQuery{Collection: c, Scopes: []string{street}}, other, func(*geo.Row) error { return nil }); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("grid %s outside scope: %v", other, err)
	}

	// datetime before the city existed: no versions.
	past := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	n = 0
	if err := s.Features(ctx, data.FeatureQuery{Collection: c, Time: &data.TimeRange{Start: &past, End: &past}}, func(*geo.Row) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("as of 2000: %d %v", n, err)
	}
	if err := s.Features(ctx, data.FeatureQuery{Collection: c, After: "nonsense"}, func(*geo.Row) error { return nil }); !errors.As(err, &fe) || fe.Param != "cursor" {
		t.Fatalf("bad cursor: %v", err)
	}
}
