package tiles_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/maptile"
	"github.com/paulmach/orb/project"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
	"gridmap/tiles"
)

// gcjKeyAt is the tile at zoom z holding p's GCJ-02 position: where p is
// drawn on an Amap base map.
func gcjKeyAt(layer string, p orb.Point, z int) tiles.Key {
	x, y := geo.WGS84ToGCJ02(p[0], p[1])
	return keyAt(layer, orb.Point{x, y}, z)
}

// tileUnits projects a WGS-84 position, converted to GCJ-02, to tile k's
// coordinates (unrounded): an independent writing of what the renderer
// does, by orb's Web Mercator.
func tileUnits(k tiles.Key, p orb.Point) orb.Point {
	x, y := geo.WGS84ToGCJ02(p[0], p[1])
	m := project.WGS84.ToMercator(orb.Point{x, y})
	const half = 20037508.342789244
	n := float64(uint64(1) << k.Z)
	return orb.Point{
		((m[0]+half)/(2*half)*n - float64(k.X)) * tiles.Extent,
		((half-m[1])/(2*half)*n - float64(k.Y)) * tiles.Extent,
	}
}

// storedVertices are the vertices of the current base units of level in
// and around the tile, by code, as stored (WGS-84).
func storedVertices(t *testing.T, store *data.Store, level string, b orb.Bound) map[string][]orb.Point {
	t.Helper()
	rows, err := store.Pool.Query(context.Background(), `SELECT code, ST_AsBinary(geom) FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND level = $1 AND geom && ST_MakeEnvelope($2, $3, $4, $5, 4326)`,
		level, b.Min[0]-0.02, b.Min[1]-0.02, b.Max[0]+0.02, b.Max[1]+0.02)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]orb.Point{}
	for rows.Next() {
		var code string
		var raw []byte
		if err := rows.Scan(&code, &raw); err != nil {
			t.Fatal(err)
		}
		g, err := wkb.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		project.Geometry(g, func(p orb.Point) orb.Point { out[code] = append(out[code], p); return p })
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func renderIn(t *testing.T, r *tiles.Renderer, k tiles.Key, crs geo.CRS) []byte {
	t.Helper()
	rt, err := r.RenderTileIn(context.Background(), k.Layer, k.Z, k.X, k.Y, nil, crs)
	if err != nil {
		t.Fatalf("render %v in %s: %v", k, crs, err)
	}
	return rt.MVT
}

// TestRenderUnitsGCJ02: every vertex of a GCJ-02 units tile is a stored
// vertex converted to GCJ-02 and projected (within one tile unit), or lies
// on the buffer's edge where the tile clips; the tile has the layers,
// attributes, ids and order of a WGS-84 tile, and exactly the units whose
// converted outline meets the buffered tile.
func TestRenderUnitsGCJ02(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	r := renderer(t, store)
	code := sqlString(t, store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'`)
	p := pointOf(t, store, code)
	for _, z := range []int{14, 16, 12} {
		k := gcjKeyAt("units", p, z)
		gcj := decode(t, renderIn(t, r, k, geo.GCJ02))
		wgs := decode(t, render(t, r, k))
		if !slices.Equal(names(gcj), names(wgs)) || len(gcj) == 0 {
			t.Fatalf("z%d: layers %v in gcj02, %v in wgs84", z, names(gcj), names(wgs))
		}
		b := maptile.New(uint32(k.X), uint32(k.Y), maptile.Zoom(k.Z)).Bound()
		edge := float64(tiles.Buffer)
		for name, l := range gcj {
			stored := storedVertices(t, store, name, b)
			var codes []string
			for _, f := range l.Features {
				c := f.Properties["code"].(string)
				codes = append(codes, c)
				if id, _ := f.ID.(float64); fmt.Sprint(uint64(id)) != c {
					t.Errorf("z%d %s: id %v for code %s", z, name, f.ID, c)
				}
				if f.Properties["level"] != name || f.Properties["name"] == "" || f.Properties["parent_code"] == nil {
					t.Errorf("z%d %s %s: properties %v", z, name, c, f.Properties)
				}
				var proj []orb.Point
				for _, v := range stored[c] {
					proj = append(proj, tileUnits(k, v))
				}
				project.Geometry(f.Geometry, func(v orb.Point) orb.Point {
					if v[0] <= -edge || v[0] >= tiles.Extent+edge || v[1] <= -edge || v[1] >= tiles.Extent+edge {
						return v // cut by the tile's buffer
					}
					best := math.Inf(1)
					for _, q := range proj {
						best = min(best, math.Max(math.Abs(q[0]-v[0]), math.Abs(q[1]-v[1])))
					}
					if best > 1 {
						t.Errorf("z%d %s %s: vertex %v is %.1f tile units from every stored vertex drawn in GCJ-02", z, name, c, v, best)
					}
					return v
				})
			}
			if !slices.IsSorted(codes) {
				t.Errorf("z%d %s: features not in code order: %v", z, name, codes)
			}
			// The units whose converted outline meets the buffered tile,
			// by bounding boxes of the converted vertices, are at least
			// those drawn (a unit drawn but not meeting would be wrong)
			// and at most those plus ones that only graze it.
			var meeting []string
			clipBox := orb.Bound{Min: orb.Point{-edge, -edge}, Max: orb.Point{tiles.Extent + edge, tiles.Extent + edge}}
			for c, vs := range stored {
				var bb orb.Bound
				for i, v := range vs {
					q := tileUnits(k, v)
					if i == 0 {
						bb = orb.Bound{Min: q, Max: q}
					}
					bb = bb.Extend(q)
				}
				if bb.Intersects(clipBox) {
					meeting = append(meeting, c)
				}
			}
			for _, c := range codes {
				if !slices.Contains(meeting, c) {
					t.Errorf("z%d %s: %s drawn but its GCJ-02 outline is off the tile", z, name, c)
				}
			}
			if len(codes) == 0 || len(codes) < len(meeting)/2 {
				t.Errorf("z%d %s: %d units drawn of %d near the tile", z, name, len(codes), len(meeting))
			}
			// A unit in both tiles has the same attributes in both.
			for _, wf := range wgs[name].Features {
				for _, f := range l.Features {
					if f.Properties["code"] == wf.Properties["code"] && fmt.Sprint(f.Properties) != fmt.Sprint(wf.Properties) {
						t.Errorf("z%d %s: attributes %v in gcj02, %v in wgs84", z, name, f.Properties, wf.Properties)
					}
				}
			}
		}
	}
	// The GCJ-02 tile is not the WGS-84 one moved: at z14 the tile holding
	// the GCJ-02 position differs in its drawing.
	k := gcjKeyAt("units", p, 14)
	if string(renderIn(t, r, k, geo.GCJ02)) == string(render(t, r, k)) {
		t.Error("the GCJ-02 tile is the WGS-84 tile")
	}
	// BD-09 has no tiles.
	var bad *tiles.ErrTileCRS
	if _, err := r.RenderTileIn(context.Background(), "units", 14, k.X, k.Y, nil, geo.BD09); !errors.As(err, &bad) {
		t.Errorf("render in bd09: %v, want an ErrTileCRS", err)
	}
}

// TestRenderObjectsAndEventsGCJ02: a point drawn in a GCJ-02 tile is at its
// GCJ-02 position, attributes as in the WGS-84 tile; timed tiles expire as
// theirs do.
func TestRenderObjectsAndEventsGCJ02(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	r := renderer(t, store)
	code := sqlString(t, store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'`)
	p := pointOf(t, store, code)
	ctx := context.Background()
	if _, err := store.Pool.Exec(ctx, `INSERT INTO objects (code, class_code, geom, attrs, grid_code) VALUES ($1, '0101', ST_SetSRID(ST_MakePoint($2, $3), 4326), '{}', $4)`,
		code[:6]+"0101990001", p[0], p[1], code); err != nil {
		t.Fatal(err)
	}
	for _, z := range []int{14, 18} {
		k := gcjKeyAt("objects", p, z)
		gcj := decode(t, renderIn(t, r, k, geo.GCJ02))
		l, ok := gcj["objects"]
		if !ok || len(l.Features) != 1 {
			t.Fatalf("z%d: objects layer %+v", z, gcj)
		}
		want := tileUnits(k, p)
		got := l.Features[0].Geometry.(orb.Point)
		if math.Abs(got[0]-want[0]) > 1 || math.Abs(got[1]-want[1]) > 1 {
			t.Errorf("z%d: object drawn at %v, its GCJ-02 position is at %v", z, got, want)
		}
		// In the WGS-84 tile of the same z/x/y (if there) the same
		// attributes and id.
		for _, wf := range decode(t, render(t, r, k))["objects"].Features {
			if fmt.Sprint(wf.Properties) != fmt.Sprint(l.Features[0].Properties) || fmt.Sprint(wf.ID) != fmt.Sprint(l.Features[0].ID) {
				t.Errorf("z%d: %v %v in wgs84, %v %v in gcj02", z, wf.ID, wf.Properties, l.Features[0].ID, l.Features[0].Properties)
			}
		}
	}
	// Counts below z14 come out too.
	k := gcjKeyAt("objects", p, 12)
	if c := decode(t, renderIn(t, r, k, geo.GCJ02))["object_counts"]; len(c.Features) == 0 {
		t.Errorf("z12: no object_counts in gcj02")
	}

	// Events: an event at p, drawn at its GCJ-02 position, expiring like
	// the WGS-84 tile.
	city := &evCity{t: t, store: store}
	units, err := store.CurrentUnits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	city.loc = grid.NewLocator(units)
	city.report(time.Now(), "0102", p)
	k = gcjKeyAt("events", p, 15)
	rt, err := r.RenderTileIn(ctx, "events", k.Z, k.X, k.Y, nil, geo.GCJ02)
	wk := keyAt("events", p, 15)
	wt, werr := r.RenderTileIn(ctx, "events", wk.Z, wk.X, wk.Y, nil, geo.WGS84)
	if werr != nil || wt.Expires.IsZero() {
		t.Fatalf("events in wgs84: %v, expires %v", werr, wt.Expires)
	}
	if err != nil {
		t.Fatal(err)
	}
	ev := decode(t, rt.MVT)["events"]
	if len(ev.Features) != 1 || rt.Expires.IsZero() || rt.Expires.Sub(wt.Expires).Abs() > time.Second {
		t.Fatalf("events in gcj02: %+v, expires %v", ev, rt.Expires)
	}
	want := tileUnits(k, p)
	if got := ev.Features[0].Geometry.(orb.Point); math.Abs(got[0]-want[0]) > 1 || math.Abs(got[1]-want[1]) > 1 {
		t.Errorf("event drawn at %v, its GCJ-02 position is at %v", got, want)
	}
	if c := decode(t, renderIn(t, r, gcjKeyAt("events", p, 11), geo.GCJ02))["event_counts"]; len(c.Features) == 0 || c.Features[0].Properties["total"] == nil {
		t.Errorf("z11: event_counts in gcj02 %+v", c)
	}
}

func sqlString(t *testing.T, store *data.Store, q string, args ...any) string {
	t.Helper()
	var s string
	if err := store.Pool.QueryRow(context.Background(), q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}
