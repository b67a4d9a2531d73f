// Package gridtest makes synthetic edits of a set of units, as the unit
// editor sends them, for the tests and benchmarks of what follows edits
// (tiles.MemUnits.Apply, `gridmap bench province memunits`).
package gridtest

import (
	"fmt"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/clip"

	"gridmap/grid"
)

// MoveSharedVertex moves the vertex at exterior index k of the base-layer
// unit code by d (degrees) in every unit of its level that has it (a
// reshape of a shared boundary): the units to upsert, with their
// geometries copied (units is not modified).
func MoveSharedVertex(units []grid.Unit, code string, k int, d orb.Point) []grid.Unit {
	var at orb.Point
	var level grid.Level
	for _, u := range units {
		if u.Code == code && u.Layer == grid.BaseLayer {
			r := u.Geometry[0][0]
			at, level = r[k%(len(r)-1)], u.Level
		}
	}
	var out []grid.Unit
	for _, u := range units {
		if u.Layer != grid.BaseLayer || u.Level != level {
			continue
		}
		g := orb.Clone(u.Geometry).(orb.MultiPolygon)
		hit := false
		for _, p := range g {
			for _, r := range p {
				for i, q := range r {
					if q == at {
						r[i], hit = orb.Point{q[0] + d[0], q[1] + d[1]}, true
					}
				}
			}
		}
		if hit {
			u.Geometry = g
			out = append(out, u)
		}
	}
	return out
}

// SplitCommunity cuts the base-layer community code in two at the middle
// of its bound: the west half keeps the code, the east half takes newCode,
// and its grids whose bound centre lies east are re-coded under it
// (removed under their old codes, added under new ones: newCode001, …), as
// a split recodes children. It returns the units to upsert and remove.
func SplitCommunity(units []grid.Unit, code, newCode string) ([]grid.Unit, []grid.UnitKey) {
	var c grid.Unit
	for _, u := range units {
		if u.Code == code && u.Layer == grid.BaseLayer {
			c = u
		}
	}
	b := c.Geometry.Bound()
	mid := (b.Min[0] + b.Max[0]) / 2
	west, east := c, c
	west.Geometry = clip.MultiPolygon(orb.Bound{Min: b.Min, Max: orb.Point{mid, b.Max[1]}}, orb.Clone(c.Geometry).(orb.MultiPolygon))
	east.Geometry = clip.MultiPolygon(orb.Bound{Min: orb.Point{mid, b.Min[1]}, Max: b.Max}, orb.Clone(c.Geometry).(orb.MultiPolygon))
	east.Code, east.Name = newCode, c.Name+" (east)"
	upsert := []grid.Unit{west, east}
	var remove []grid.UnitKey
	for _, u := range units {
		if u.Layer != grid.BaseLayer || u.ParentCode != code || u.Level != grid.Grid || u.Geometry.Bound().Center()[0] <= mid {
			continue
		}
		remove = append(remove, grid.UnitKey{Layer: u.Layer, Code: u.Code})
		u.Code, u.ParentCode = fmt.Sprintf("%s%03d", newCode, len(remove)), newCode
		upsert = append(upsert, u)
	}
	return upsert, remove
}

// Edit is one edit of a unit set: what an editor's save sends to the
// units' followers.
type Edit struct {
	Name   string // what it does, e.g. "one grid renamed"
	Upsert []grid.Unit
	Remove []grid.UnitKey
}

// TypicalEdits are three edits of the first grid and the first community
// among units: the grid renamed, a vertex it shares with its neighbours
// moved by 1e-5°, and the community split (SplitCommunity; the east half
// coded under its parent with "999").
func TypicalEdits(units []grid.Unit) []Edit {
	var g, comm grid.Unit
	for _, u := range units {
		if u.Layer == grid.BaseLayer && u.Level == grid.Grid && g.Code == "" {
			g = u
		}
		if u.Layer == grid.BaseLayer && u.Level == grid.Community && comm.Code == "" {
			comm = u
		}
	}
	renamed := g
	renamed.Name += " (renamed)"
	split, gone := SplitCommunity(units, comm.Code, comm.ParentCode+"999")
	return []Edit{
		{"one grid renamed", []grid.Unit{renamed}, nil},
		{"a shared vertex moved", MoveSharedVertex(units, g.Code, 1, orb.Point{1e-5, 1e-5}), nil},
		{"community " + comm.Code + " split", split, gone},
	}
}
