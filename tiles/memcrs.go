package tiles

import (
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
				for _, r := range p {
					for i, q := range r {
						r[i] = toGCJ02(q)
					}
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
					ring[i] = toGCJ02(unmercator(mercator(q)))
				}
				c.Geometry[pi][ri] = ring
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
