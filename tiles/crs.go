package tiles

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/clip"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/maptile"

	"gridmap/geo"
)

// Tiles in GCJ-02 (docs/design-notes.md, GCJ-02 tiles). Amap's and
// Tencent's base maps are Web Mercator tiles of GCJ-02 positions: a wall
// drawn over them needs our features at their GCJ-02 positions on the same
// tile grid. The shift is not a translation (it varies by tens of metres
// across a z13 tile), so every vertex is converted: PostGIS selects,
// simplifies and clips in WGS-84 over a box covering the tile, Go converts
// each vertex with geo.FromWGS84, projects it to the tile, clips to the
// buffered tile and encodes (orb's encoding/mvt). Baidu's tiles are not
// Web Mercator's grid (BD-09 positions on Baidu's own projection and tile
// numbering), so there is no BD-09 tile to draw.

// ErrTileCRS is a coordinate system tiles cannot be drawn in.
type ErrTileCRS struct{ CRS geo.CRS }

func (e *ErrTileCRS) Error() string {
	return fmt.Sprintf("tiles are drawn in wgs84 or gcj02, not %s: Baidu's tiles use their own projection and tile grid, not Web Mercator's, so no z/x/y tile matches them", e.CRS)
}

// TileCRS checks that tiles can be drawn in crs (WGS-84 or GCJ-02).
func TileCRS(crs geo.CRS) error {
	_, err := tileSQLOf(crs)
	return err
}

func tileSQLOf(crs geo.CRS) (tileSQL, error) {
	switch crs {
	case geo.WGS84:
		return tileSQL{}, nil
	case geo.GCJ02:
		return tileSQL{gcj: true}, nil
	}
	return tileSQL{}, &ErrTileCRS{crs}
}

// i indexes the queries of a SourceLayer or Tileset: 0 WGS-84, 1 GCJ-02.
func (m tileSQL) i() int {
	if m.gcj {
		return 1
	}
	return 0
}

// CRSLayer is the cache's name of tileset layer drawn in crs: the
// tileset's own for WGS-84, "<layer>+gcj02" for GCJ-02. Cache.Invalidate
// drops those tiles by the change's geometry converted to GCJ-02.
func CRSLayer(layer string, crs geo.CRS) string {
	if crs == geo.WGS84 {
		return layer
	}
	return layer + "+" + string(crs)
}

// gcjLayer is the cache name of layer's tiles drawn in GCJ-02.
func gcjLayer(layer string) string { return CRSLayer(layer, geo.GCJ02) }

// gcjTile is one GCJ-02 tile being drawn.
type gcjTile struct {
	z, x, y int
	// box is the WGS-84 area whose features may be drawn in the tile with
	// its buffer.
	box orb.Bound
}

func newGCJTile(z, x, y int) *gcjTile {
	t := &gcjTile{z: z, x: x, y: y}
	// The buffered tile in GCJ-02 positions, back to WGS-84 along its
	// edges (the inverse shift bends a straight edge by millimetres, and
	// the envelope of 9 points per edge covers it), with two pixels more
	// for ST_Simplify's one-pixel moves.
	b := maptile.New(uint32(x), uint32(y), maptile.Zoom(z)).Bound(float64(Buffer) / Extent)
	box := orb.Bound{Min: orb.Point{math.Inf(1), math.Inf(1)}, Max: orb.Point{math.Inf(-1), math.Inf(-1)}}
	const steps = 8
	for i := 0; i <= steps; i++ {
		f := float64(i) / steps
		lon := b.Min[0] + f*(b.Max[0]-b.Min[0])
		lat := b.Min[1] + f*(b.Max[1]-b.Min[1])
		for _, p := range []orb.Point{{lon, b.Min[1]}, {lon, b.Max[1]}, {b.Min[0], lat}, {b.Max[0], lat}} {
			x, y := geo.ToWGS84(geo.GCJ02, p[0], p[1])
			box = box.Extend(orb.Point{x, y})
		}
	}
	pad := 2 * pixelDegrees(z)
	box.Min[0], box.Min[1] = max(box.Min[0]-pad, -180), max(box.Min[1]-pad, -85.06)
	box.Max[0], box.Max[1] = min(box.Max[0]+pad, 180), min(box.Max[1]+pad, 85.06)
	t.box = box
	return t
}

func (t *gcjTile) boxArgs() []any {
	return []any{t.box.Min[0], t.box.Min[1], t.box.Max[0], t.box.Max[1]}
}

// toTile projects a WGS-84 position to the tile's coordinates in GCJ-02,
// unrounded: spherical Web Mercator scaled to the tile's extent, as
// PostGIS's ST_Transform(…, 3857) and ST_AsMVTGeom do it.
func (t *gcjTile) toTile(p orb.Point) orb.Point {
	lon, lat := geo.FromWGS84(geo.GCJ02, p[0], p[1])
	n := float64(Extent) * math.Exp2(float64(t.z))
	s := math.Sin(lat * math.Pi / 180)
	px := (lon+180)/360*n - float64(t.x*Extent)
	py := (0.5-math.Log((1+s)/(1-s))/(4*math.Pi))*n - float64(t.y*Extent)
	return orb.Point{px, py}
}

// tileClip is the tile with the render buffer, in tile coordinates.
var tileClip = orb.Bound{Min: orb.Point{-Buffer, -Buffer}, Max: orb.Point{Extent + Buffer, Extent + Buffer}}

// render runs a source layer's GCJ-02 query (rows: id, the attributes, a
// WKB geom and, for timed layers, next) and encodes what falls in the
// tile as one MVT layer; next is the earliest next of the features drawn.
func (t *gcjTile) render(ctx context.Context, pool *pgxpool.Pool, name, q string, args []any) ([]byte, *time.Time, error) {
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	layer := &mvt.Layer{Name: name, Version: 2, Extent: Extent}
	var next *time.Time
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, nil, err
		}
		f := &geojson.Feature{Type: "Feature", Properties: geojson.Properties{}}
		var featNext *time.Time
		for i, fd := range fields {
			v := vals[i]
			switch fd.Name {
			case "id":
				// Ids are non-negative (codes, hashes cut to 53 or 60 bits).
				f.ID = uint64(v.(int64))
			case "geom":
				b, _ := v.([]byte)
				if b == nil {
					continue
				}
				g, err := wkb.Unmarshal(b)
				if err != nil {
					return nil, nil, fmt.Errorf("read geometry: %w", err)
				}
				f.Geometry = t.draw(g)
			case "next":
				if tv, ok := v.(time.Time); ok {
					featNext = &tv
				}
			default:
				f.Properties[fd.Name] = mvtValue(v)
			}
		}
		if f.Geometry == nil {
			continue
		}
		if featNext != nil && (next == nil || featNext.Before(*next)) {
			next = featNext
		}
		layer.Features = append(layer.Features, f)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(layer.Features) == 0 {
		return nil, nil, nil
	}
	b, err := mvt.Marshal(mvt.Layers{layer})
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", name, err)
	}
	return b, next, nil
}

// mvtValue is an attribute as ST_AsMVT encodes it: a non-negative integer
// as uint_value, a negative one as sint_value.
func mvtValue(v any) any {
	if i, ok := v.(int64); ok && i >= 0 {
		return uint64(i)
	}
	return v
}

// draw converts, projects, clips and snaps a WGS-84 geometry to the tile:
// nil when nothing of it is left. As ST_AsMVTGeom does, positions snap to
// whole tile units, repeated positions and collapsed parts are dropped,
// and polygon rings are wound as MVT wants them (outer rings clockwise on
// screen, holes the other way).
func (t *gcjTile) draw(g orb.Geometry) orb.Geometry {
	switch g := g.(type) {
	case orb.Point:
		p := snap(t.toTile(g))
		if !tileClip.Contains(p) {
			return nil
		}
		return p
	case orb.MultiPoint:
		var out orb.MultiPoint
		for _, p := range g {
			if q := snap(t.toTile(p)); tileClip.Contains(q) {
				out = append(out, q)
			}
		}
		return nonEmpty(out, len(out))
	case orb.LineString:
		return t.drawLines(orb.MultiLineString{g})
	case orb.MultiLineString:
		return t.drawLines(g)
	case orb.Polygon:
		return t.drawPolygons(orb.MultiPolygon{g})
	case orb.MultiPolygon:
		return t.drawPolygons(g)
	case orb.Collection:
		// ST_ClipByBox2D can leave a collection; ST_AsMVTGeom keeps its
		// polygons, else its lines, else its points.
		var ps orb.MultiPolygon
		var ls orb.MultiLineString
		var pts orb.MultiPoint
		for _, m := range g {
			switch m := m.(type) {
			case orb.Polygon:
				ps = append(ps, m)
			case orb.MultiPolygon:
				ps = append(ps, m...)
			case orb.LineString:
				ls = append(ls, m)
			case orb.MultiLineString:
				ls = append(ls, m...)
			case orb.Point:
				pts = append(pts, m)
			case orb.MultiPoint:
				pts = append(pts, m...)
			}
		}
		switch {
		case len(ps) > 0:
			return t.drawPolygons(ps)
		case len(ls) > 0:
			return t.drawLines(ls)
		case len(pts) > 0:
			return t.draw(pts)
		}
	}
	return nil
}

func (t *gcjTile) project(ps []orb.Point) []orb.Point {
	out := make([]orb.Point, len(ps))
	for i, p := range ps {
		out[i] = t.toTile(p)
	}
	return out
}

func (t *gcjTile) drawLines(ls orb.MultiLineString) orb.Geometry {
	var out orb.MultiLineString
	for _, l := range ls {
		for _, c := range clip.MultiLineString(tileClip, orb.MultiLineString{t.project(l)}) {
			if s := snapLine(c); len(s) >= 2 {
				out = append(out, s)
			}
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return nonEmpty(out, len(out))
}

func (t *gcjTile) drawPolygons(ps orb.MultiPolygon) orb.Geometry {
	var out orb.MultiPolygon
	for _, p := range ps {
		var poly orb.Polygon
		for i, r := range p {
			c := clip.Ring(tileClip, orb.Ring(t.project(r)))
			s := orb.Ring(snapLine(orb.LineString(c)))
			if len(s) > 0 && s[0] != s[len(s)-1] {
				s = append(s, s[0])
			}
			a := ringArea(s)
			if len(s) < 4 || a == 0 {
				if i == 0 {
					break // the outer ring collapsed: the holes go with it
				}
				continue
			}
			// Tile y points down: a positive shoelace area is clockwise on
			// screen, MVT's outer ring; holes are negative.
			if (i == 0) != (a > 0) {
				s.Reverse()
			}
			poly = append(poly, s)
		}
		if len(poly) > 0 {
			out = append(out, poly)
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return nonEmpty(out, len(out))
}

// nonEmpty is g, or nil when it has no parts.
func nonEmpty(g orb.Geometry, n int) orb.Geometry {
	if n == 0 {
		return nil
	}
	return g
}

func snap(p orb.Point) orb.Point { return orb.Point{math.Round(p[0]), math.Round(p[1])} }

// snapLine snaps positions to whole tile units and drops repeats.
func snapLine(l orb.LineString) orb.LineString {
	out := make(orb.LineString, 0, len(l))
	for _, p := range l {
		q := snap(p)
		if len(out) == 0 || out[len(out)-1] != q {
			out = append(out, q)
		}
	}
	return out
}

// ringArea is the shoelace area of a closed ring in tile coordinates.
func ringArea(r orb.Ring) float64 {
	a := 0.0
	for i := 1; i < len(r); i++ {
		a += r[i-1][0]*r[i][1] - r[i][0]*r[i-1][1]
	}
	return a / 2
}
