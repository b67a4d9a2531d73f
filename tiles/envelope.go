package tiles

import (
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"
	"github.com/paulmach/orb/planar"
)

// invalidationBuffer is the margin, in tile widths, around a tile within
// which a changed geometry drops the cached tile: the render buffer
// (64/4096, what ST_AsMVTGeom keeps and the queries select) plus two pixels
// for what per-zoom simplification (one pixel) and snapping to the tile
// grid may move a geometry.
const invalidationBuffer = float64(Buffer+2) / Extent

// Bound is the envelope of tile k in longitude/latitude with the
// invalidation buffer around it.
func Bound(k Key) orb.Bound {
	return maptile.New(uint32(k.X), uint32(k.Y), maptile.Zoom(k.Z)).Bound(invalidationBuffer)
}

// Touches tells whether changing g can change tile k: whether g meets the
// tile's buffered envelope (a true intersection test, not bounding boxes).
func Touches(k Key, g orb.Geometry) bool { return meets(Bound(k), g) }

// tileRange is the range of tiles at zoom z whose buffered envelope meets
// the bound b.
func tileRange(b orb.Bound, z int) (x0, y0, x1, y1 int) {
	zoom := maptile.Zoom(z)
	lo := maptile.Fraction(orb.Point{b.Min[0], b.Max[1]}, zoom) // west, north
	hi := maptile.Fraction(orb.Point{b.Max[0], b.Min[1]}, zoom) // east, south
	n := 1 << uint(z)
	clamp := func(v float64) int {
		i := int(math.Floor(v))
		return max(0, min(n-1, i))
	}
	return clamp(lo[0] - invalidationBuffer), clamp(lo[1] - invalidationBuffer),
		clamp(hi[0] + invalidationBuffer), clamp(hi[1] + invalidationBuffer)
}

// meets tells whether geometry g and bound b share a point.
func meets(b orb.Bound, g orb.Geometry) bool {
	if g == nil {
		return false
	}
	if !b.Intersects(g.Bound()) {
		return false
	}
	switch g := g.(type) {
	case orb.Point:
		return b.Contains(g)
	case orb.MultiPoint:
		for _, p := range g {
			if b.Contains(p) {
				return true
			}
		}
		return false
	case orb.LineString:
		return lineMeets(b, g)
	case orb.MultiLineString:
		for _, l := range g {
			if lineMeets(b, orb.LineString(l)) {
				return true
			}
		}
		return false
	case orb.Ring:
		return polygonMeets(b, orb.Polygon{g})
	case orb.Polygon:
		return polygonMeets(b, g)
	case orb.MultiPolygon:
		for _, p := range g {
			if polygonMeets(b, p) {
				return true
			}
		}
		return false
	case orb.Collection:
		for _, m := range g {
			if meets(b, m) {
				return true
			}
		}
		return false
	case orb.Bound:
		return true // the bounds intersect
	}
	return true // an unknown kind: drop rather than keep a stale tile
}

func lineMeets(b orb.Bound, l orb.LineString) bool {
	if len(l) == 1 {
		return b.Contains(l[0])
	}
	for i := 1; i < len(l); i++ {
		if segmentMeets(b, l[i-1], l[i]) {
			return true
		}
	}
	return false
}

// polygonMeets: a polygon and a rectangle meet when an edge of the polygon
// (outer ring or hole) meets the rectangle, or else when the rectangle lies
// wholly inside the polygon (then its centre is inside, holes considered).
func polygonMeets(b orb.Bound, p orb.Polygon) bool {
	if len(p) == 0 {
		return false
	}
	for _, r := range p {
		if lineMeets(b, orb.LineString(r)) {
			return true
		}
	}
	return planar.PolygonContains(p, b.Center())
}

// segmentMeets clips the segment pq to b (Liang–Barsky) and tells whether
// anything is left; touching counts.
func segmentMeets(b orb.Bound, p, q orb.Point) bool {
	t0, t1 := 0.0, 1.0
	dx, dy := q[0]-p[0], q[1]-p[1]
	for _, c := range [4][2]float64{
		{-dx, p[0] - b.Min[0]}, {dx, b.Max[0] - p[0]},
		{-dy, p[1] - b.Min[1]}, {dy, b.Max[1] - p[1]},
	} {
		den, num := c[0], c[1]
		if den == 0 {
			if num < 0 {
				return false // parallel to this edge and outside it
			}
			continue
		}
		r := num / den
		if den < 0 {
			if r > t1 {
				return false
			}
			t0 = max(t0, r)
		} else {
			if r < t0 {
				return false
			}
			t1 = min(t1, r)
		}
	}
	return t0 <= t1
}
