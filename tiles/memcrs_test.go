package tiles_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
	"gridmap/tiles"
)

// GCJ-02 unit tiles drawn from a converted in-memory copy match PostGIS's
// GCJ-02 tiles (selected and simplified in WGS-84, converted in Go) over
// every tile of the full demo city at z6, z10, z12 and z14 that a
// converted unit meets, by compareUnitTiles.
func TestMemoryGCJ02UnitTilesMatchPostGIS(t *testing.T) {
	t.Parallel()
	store := pgtest.NewFullDemo(t)
	units := currentUnits(t, store)
	gcj := tiles.NewMemUnits(units).GCJ02()
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pg := &tiles.Renderer{Pool: store.Pool, Catalogue: cat}
	mr := &tiles.Renderer{Pool: store.Pool, Catalogue: cat, UnitsIn: func(_ context.Context, asOf *time.Time, crs geo.CRS) (*tiles.MemUnits, error) {
		if asOf != nil || crs != geo.GCJ02 {
			return nil, fmt.Errorf("asked for %v %s", asOf, crs)
		}
		return gcj, nil
	}}
	l, _ := cat.Tileset("units")
	converted := tiles.GCJ02Units(units)
	for _, z := range []int{6, 10, 12, 14} {
		compareUnitTiles(t, fmt.Sprintf("gcj02 z%d", z), unitTiles(l, converted, z),
			func(k tiles.Key) ([]byte, error) {
				r, err := pg.RenderTileIn(ctx, "units", k.Z, k.X, k.Y, nil, geo.GCJ02)
				return r.MVT, err
			},
			func(k tiles.Key) ([]byte, error) {
				r, err := mr.RenderTileIn(ctx, "units", k.Z, k.X, k.Y, nil, geo.GCJ02)
				return r.MVT, err
			})
	}
}

// GCJ02Units and MemUnits.GCJ02 convert a vertex alike, so a copy derived
// by Apply from converted units equals one converted whole: shared arcs
// stay shared, and the two draw the same tiles.
func TestGCJ02ApplyMatchesConversion(t *testing.T) {
	sq := func(x0, y0, x1, y1 float64) orb.MultiPolygon {
		return orb.MultiPolygon{{{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}}}
	}
	u := func(code string, g orb.MultiPolygon) grid.Unit {
		return grid.Unit{Layer: grid.BaseLayer, Level: grid.Grid, Code: code, Name: "g" + code, ParentCode: "440304001001", Geometry: g}
	}
	// Edges of 1–2 km: cut in steps before conversion.
	before := []grid.Unit{u("440304001001001", sq(114.05, 22.5, 114.063, 22.511)), u("440304001001002", sq(114.063, 22.5, 114.077, 22.511))}
	// The shared edge moves east; a third grid appears beyond.
	after := []grid.Unit{u("440304001001001", sq(114.05, 22.5, 114.069, 22.511)), u("440304001001002", sq(114.069, 22.5, 114.077, 22.511)),
		u("440304001001003", sq(114.077, 22.5, 114.09, 22.511))}
	old := tiles.NewMemUnits(before)
	applied := old.GCJ02().Apply(tiles.GCJ02Units(after[1:]), nil).Apply(tiles.GCJ02Units(after[:1]), nil)
	whole := tiles.NewMemUnits(after).GCJ02()
	if got := tiles.Changed(whole, applied); len(got) != 0 {
		t.Errorf("applied copy differs from the converted one in %d unit drawings", len(got))
	}
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := cat.Tileset("units")
	p := tiles.GCJ02Units(after[:1])[0].Geometry.Bound().Center()
	for z := 13; z <= 18; z++ {
		tl := maptile.At(orb.Point{p[0] + 0.0095, p[1]}, maptile.Zoom(z)) // on the moved edge
		a, b := applied.RenderUnits(l, z, int(tl.X), int(tl.Y)), whole.RenderUnits(l, z, int(tl.X), int(tl.Y))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("z%d: %d bytes applied, %d converted whole", z, len(a), len(b))
		}
	}
}

// tilesOver lists the tiles of zoom z that bound b meets.
func tilesOver(b orb.Bound, z int) []tiles.Key {
	lo := maptile.At(orb.Point{b.Min[0], b.Max[1]}, maptile.Zoom(z))
	hi := maptile.At(orb.Point{b.Max[0], b.Min[1]}, maptile.Zoom(z))
	var out []tiles.Key
	for x := lo.X; x <= hi.X; x++ {
		for y := lo.Y; y <= hi.Y; y++ {
			out = append(out, tiles.Key{Layer: "units", Z: z, X: int(x), Y: int(y)})
		}
	}
	return out
}

// Unit tiles as of an instant before a split, drawn from a copy of the
// units valid then (what the api keeps for a settled instant), match
// PostGIS's as-of tiles in WGS-84 and GCJ-02, show the grid as it was,
// and differ from the current tiles that show its pieces.
func TestMemoryAsOfUnitTilesMatchPostGIS(t *testing.T) {
	t.Parallel()
	store := pgtest.NewFullDemo(t)
	ctx := context.Background()
	var code string
	var x, y0, y1 float64
	if err := store.Pool.QueryRow(ctx, `
		SELECT code, ST_X(p), ST_YMin(geom) - 0.001, ST_YMax(geom) + 0.001
		FROM (SELECT code, geom, ST_PointOnSurface(geom) AS p FROM units
		      WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid' ORDER BY code LIMIT 1 OFFSET 700) g`).Scan(&code, &x, &y0, &y1); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	time.Sleep(5 * time.Millisecond)
	line, err := geo.EWKB(orb.LineString{{x, y0}, {x, y1}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := store.EditUnits(ctx, data.UnitEdit{Operation: data.OpSplit, Code: code, Split: &data.UnitSplit{Line: line}, Reason: "as-of tiles test"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Report.OK() || len(res.NewCodes) == 0 {
		t.Fatalf("split of %s: %+v, findings %+v", code, res, res.Report.Violations)
	}
	past, _, err := store.UnitsValidAt(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	mem := tiles.NewMemUnits(past)
	gcj := mem.GCJ02()
	cur := tiles.NewMemUnits(currentUnits(t, store))
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	pg := &tiles.Renderer{Pool: store.Pool, Catalogue: cat}
	mr := &tiles.Renderer{Pool: store.Pool, Catalogue: cat, UnitsIn: func(_ context.Context, asOf *time.Time, crs geo.CRS) (*tiles.MemUnits, error) {
		switch {
		case asOf == nil && crs == geo.WGS84:
			return cur, nil
		case asOf != nil && asOf.Equal(before) && crs == geo.WGS84:
			return mem, nil
		case asOf != nil && asOf.Equal(before) && crs == geo.GCJ02:
			return gcj, nil
		}
		return nil, fmt.Errorf("asked for %v %s", asOf, crs)
	}}
	var edited orb.Bound
	for _, u := range past {
		if u.Code == code && u.Layer == grid.BaseLayer {
			edited = u.Geometry.Bound()
		}
	}
	if edited.IsZero() {
		t.Fatalf("%s not valid before the split", code)
	}
	// The tiles around the edited grid at zooms of every unit level (a
	// neighbour's arcs were weighed with it).
	for _, z := range []int{6, 10, 12, 14, 16} {
		b := edited.Pad(360 / math.Exp2(float64(z)))
		keys := tilesOver(b, z)
		for _, crs := range []geo.CRS{geo.WGS84, geo.GCJ02} {
			compareUnitTiles(t, fmt.Sprintf("as of before the split, %s z%d", crs, z), keys,
				func(k tiles.Key) ([]byte, error) {
					r, err := pg.RenderTileIn(ctx, "units", k.Z, k.X, k.Y, &before, crs)
					return r.MVT, err
				},
				func(k tiles.Key) ([]byte, error) {
					r, err := mr.RenderTileIn(ctx, "units", k.Z, k.X, k.Y, &before, crs)
					return r.MVT, err
				})
		}
	}
	// The grid as it was, and its pieces now.
	tl := maptile.At(edited.Center(), 16)
	codes := func(b []byte) []string {
		var out []string
		for _, f := range features(t, b)["grid"] {
			out = append(out, f.code)
		}
		return out
	}
	then, err := mr.RenderTileAt(ctx, "units", 16, int(tl.X), int(tl.Y), &before)
	if err != nil {
		t.Fatal(err)
	}
	now, err := mr.RenderTileAt(ctx, "units", 16, int(tl.X), int(tl.Y), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.NewCodes {
		if slices.Contains(codes(then.MVT), c) || !slices.Contains(codes(now.MVT), c) {
			t.Errorf("piece %s: as of before the split %v, now %v", c, codes(then.MVT), codes(now.MVT))
		}
	}
	if !slices.Contains(codes(then.MVT), code) {
		t.Errorf("as of before the split, %s not drawn: %v", code, codes(then.MVT))
	}
}
