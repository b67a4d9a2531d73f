package tiles

import (
	"math"

	"github.com/paulmach/orb"

	"gridmap/geo"
	"gridmap/grid"
)

// Unit tiles in GCJ-02 from memory (docs/design-notes.md, "Unit tiles from
// memory"). A GCJ-02 tile z/x/y is the Web Mercator tile z/x/y of the
// units at their GCJ-02 positions (crs.go), so a MemUnits built from the
// units with every vertex converted draws it as RenderUnits draws a
// WGS-84 tile: the same per-arc simplification, clipping and encoding.
// The conversion is pointwise, so a vertex two units share converts to
// one position on both and the arcs stay shared.
//
// The shift is not linear: a straight WGS-84 edge is a curve in GCJ-02,
// and the chord between an 8 km edge's converted ends lies up to ~3 m
// (5 px at z14) off it. Edges longer than gcjStep are cut into equal
// steps first, so every converted chord is within about a centimetre of
// the curve. The steps are laid from the edge's lower end, so the two
// units on either side of an edge get the same points.

// GCJ02 is a MemUnits of m's units converted to GCJ-02. Each vertex is
// taken back from Web Mercator (the source geometry is not held) and
// converted as GCJ02Units converts: a unit later converted from its
// source shares its vertices with these bit for bit.
func (m *MemUnits) GCJ02() *MemUnits {
	var us []grid.Unit
	for _, l := range m.levels {
		for _, u := range l.units {
			mp := u.wgs84()
			for _, p := range mp {
				for ri, r := range p {
					p[ri] = gcjRing(r)
				}
			}
			us = append(us, grid.Unit{Layer: grid.BaseLayer, Code: u.code, Name: u.name, Level: grid.Level(u.level), ParentCode: u.parent, Geometry: mp})
		}
	}
	return NewMemUnits(us)
}

// GCJ02Units converts the base-layer units among us to GCJ-02 (others are
// left out) for MemUnits.Apply on a GCJ02 copy. Every position first makes
// the round trip through Web Mercator that a held unit's vertices have
// made, so that a converted vertex equals the one GCJ02 derives from the
// held copy: shared arcs stay shared between new and kept units.
func GCJ02Units(us []grid.Unit) []grid.Unit {
	out := make([]grid.Unit, 0, len(us))
	for _, u := range us {
		if u.Layer != grid.BaseLayer {
			continue
		}
		c := u
		c.Geometry = make(orb.MultiPolygon, len(u.Geometry))
		for pi, p := range u.Geometry {
			c.Geometry[pi] = make(orb.Polygon, len(p))
			for ri, r := range p {
				ring := make(orb.Ring, len(r))
				for i, q := range r {
					ring[i] = unmercator(mercator(q))
				}
				c.Geometry[pi][ri] = gcjRing(ring)
			}
		}
		out = append(out, c)
	}
	return out
}

func toGCJ02(p orb.Point) orb.Point {
	x, y := geo.FromWGS84(geo.GCJ02, p[0], p[1])
	return orb.Point{x, y}
}

// gcjStep is the longest edge (metres) converted as a straight line: the
// chord of a 500 m edge lies about a centimetre off its curve in GCJ-02.
const gcjStep = 500.0

// gcjRing converts a WGS-84 ring to GCJ-02, long edges cut in steps.
func gcjRing(r orb.Ring) orb.Ring {
	out := make(orb.Ring, 0, len(r))
	for i, p := range r {
		if i > 0 {
			out = appendSteps(out, r[i-1], p)
		}
		out = append(out, toGCJ02(p))
	}
	return out
}

// appendSteps appends the converted points that cut edge a–b (WGS-84) in
// equal steps of at most gcjStep, none when it is shorter. They are laid
// from the lower end, so the edge walked b–a gets the same points.
func appendSteps(out orb.Ring, a, b orb.Point) orb.Ring {
	lo, hi := a, b
	rev := less(b, a)
	if rev {
		lo, hi = b, a
	}
	const mPerDeg = 111_320.0
	dx := (hi[0] - lo[0]) * mPerDeg * math.Cos((lo[1]+hi[1])/2*math.Pi/180)
	dy := (hi[1] - lo[1]) * mPerDeg
	k := int(math.Ceil(math.Hypot(dx, dy) / gcjStep))
	if k <= 1 {
		return out
	}
	n := len(out)
	for i := 1; i < k; i++ {
		f := float64(i) / float64(k)
		out = append(out, toGCJ02(orb.Point{lo[0] + f*(hi[0]-lo[0]), lo[1] + f*(hi[1]-lo[1])}))
	}
	if rev {
		s := out[n:]
		for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
			s[i], s[j] = s[j], s[i]
		}
	}
	return out
}
