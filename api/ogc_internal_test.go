package api

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
)

func TestAppendFeature(t *testing.T) {
	schema := geo.Schema{Fields: []geo.Field{{Name: "s", Type: geo.String}, {Name: "i", Type: geo.Integer}, {Name: "r", Type: geo.Real}, {Name: "b", Type: geo.Boolean}, {Name: "t", Type: geo.Time}, {Name: "j", Type: geo.JSON}, {Name: "n", Type: geo.String}}}
	row := geo.Row{ID: `a"b`, Values: []any{"梅沙\n\x01\"\\\xff", int64(-3), 0.1, true, time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("", 8*3600)), json.RawMessage(`{"k":[1]}`), nil},
		Geometry: orb.MultiPolygon{{{{114.123456789012, 22.5}, {-0.00000000001, 1e-10}, {114, 22}}}}}
	got := string(appendFeature(nil, &schema, &row))
	want := `{"type":"Feature","id":"a\"b","geometry":{"type":"MultiPolygon","coordinates":[[[[114.123456789,22.5],[0,0],[114,22]]]]},` +
		`"properties":{"s":"梅沙\n\u0001\"\\\ufffd","i":-3,"r":0.1,"b":true,"t":"2026-01-01T19:04:05.000006Z","j":{"k":[1]},"n":null}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var v any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatal(err)
	}
	for _, g := range []orb.Geometry{orb.Point{1, 2}, orb.MultiPoint{{1, 2}}, orb.LineString{{1, 2}, {3, 4}}, orb.MultiLineString{{{1, 2}, {3, 4}}},
		orb.Polygon{{{0, 0}, {1, 0}, {0, 1}, {0, 0}}}, orb.Collection{orb.Point{1, 2}}, nil} {
		b := appendGeometry(nil, g)
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%T: %s: %v", g, b, err)
		}
	}
	if s := string(appendValue(nil, math.NaN())); s != "null" {
		t.Errorf("NaN: %s", s)
	}
}

// BenchmarkItemsEncoding: every grid of the full demo city encoded as
// GeoJSON features, by the ways an items page can take: the geometry as
// WKB decoded into orb and written by appendFeature (what crs=gcj02/bd09
// needs), or PostGIS's ST_AsGeoJSON text copied in (FeaturePageGeoJSON,
// what /ogc answers in WGS-84 use; and the same from a hand-written scan,
// the floor of that way). docs/benchmarks.md, "OGC items".
func BenchmarkItemsEncoding(b *testing.B) {
	store := pgtest.SharedFullDemo(b)
	ctx := context.Background()
	c, err := store.FeatureCollection(ctx, "grids")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1<<20)
	flush := func() {
		if len(buf) > 64<<10 {
			buf = buf[:0]
		}
	}
	var n int
	b.Run("ewkb-orb-appendFeature", func(b *testing.B) {
		for range b.N {
			n = 0
			if err := store.Features(ctx, data.FeatureQuery{Collection: "grids"}, func(r *geo.Row) error {
				buf = appendFeature(buf, &c.Schema, r)
				n++
				flush()
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "features/s")
	})
	b.Run("st_asgeojson-FeaturePageGeoJSON", func(b *testing.B) {
		for range b.N {
			n = 0
			if _, err := store.FeaturePageGeoJSON(ctx, data.FeatureQuery{Collection: "grids"}, func(r *geo.Row, g []byte) error {
				buf = appendFeatureWith(buf, &c.Schema, r, g)
				n++
				flush()
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "features/s")
	})
	b.Run("st_asgeojson-hand-scan", func(b *testing.B) {
		for range b.N {
			n = 0
			rows, err := store.Pool.Query(ctx, `SELECT code, name, level, parent_code, layer, area_m2, complete, version::bigint, valid_from, valid_to, ST_AsGeoJSON(geom, 9)
				FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' ORDER BY code`)
			if err != nil {
				b.Fatal(err)
			}
			var code, name, level, layer, gj string
			var parent *string
			var area float64
			var complete bool
			var version int64
			var from time.Time
			var to *time.Time
			vals := make([]any, 10)
			for rows.Next() {
				if err := rows.Scan(&code, &name, &level, &parent, &layer, &area, &complete, &version, &from, &to, &gj); err != nil {
					b.Fatal(err)
				}
				vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7], vals[8], vals[9] = code, name, level, parent, layer, area, complete, version, from, to
				buf = append(buf, `{"type":"Feature","id":`...)
				buf = appendJSONString(buf, code)
				buf = append(buf, `,"geometry":`...)
				buf = append(buf, gj...)
				buf = append(buf, `,"properties":{`...)
				for i, f := range c.Schema.Fields {
					if i > 0 {
						buf = append(buf, ',')
					}
					buf = appendJSONString(buf, f.Name)
					buf = append(buf, ':')
					v := vals[i]
					if p, ok := v.(*string); ok {
						v = nil
						if p != nil {
							v = *p
						}
					}
					if p, ok := v.(*time.Time); ok {
						v = nil
						if p != nil {
							v = *p
						}
					}
					buf = appendValue(buf, v)
				}
				buf = append(buf, "}}"...)
				n++
				flush()
			}
			if rows.Err() != nil {
				b.Fatal(rows.Err())
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "features/s")
	})
}
