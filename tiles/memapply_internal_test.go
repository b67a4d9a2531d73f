package tiles

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/clip"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/grid"
)

// Edits of the kinds a boundary edit sends to Apply, drawn on a copy of
// the current units (the benchmark and the random test of Apply).

func loadUnits(tb testing.TB, store *data.Store) []grid.Unit {
	tb.Helper()
	_, stored, err := store.CurrentUnitVersions(context.Background(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]grid.Unit, len(stored))
	for i, u := range stored {
		out[i] = u.Unit
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// cloneGeom deep-copies a unit's geometry, so an edit never writes into
// the units a snapshot was built from.
func cloneGeom(u grid.Unit) grid.Unit {
	u.Geometry = orb.Clone(u.Geometry).(orb.MultiPolygon)
	return u
}

// moveVertex moves the vertex at exterior index k of unit code by d
// (degrees) in every unit of its level that has it (a reshape of a shared
// boundary): the units to upsert.
func moveVertex(units []grid.Unit, code string, k int, d orb.Point) []grid.Unit {
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
		hit := false
		for _, p := range u.Geometry {
			for _, r := range p {
				for _, q := range r {
					hit = hit || q == at
				}
			}
		}
		if !hit {
			continue
		}
		u = cloneGeom(u)
		for _, p := range u.Geometry {
			for _, r := range p {
				for i, q := range r {
					if q == at {
						r[i] = orb.Point{q[0] + d[0], q[1] + d[1]}
					}
				}
			}
		}
		out = append(out, u)
	}
	return out
}

// splitCommunity cuts community code in two at the middle of its bound:
// the west half keeps the code, the east half takes newCode, and the
// grids whose bound centre lies east are re-coded under it (removed under
// their old codes, added under new ones), as a split recodes children.
func splitCommunity(units []grid.Unit, code, newCode string) ([]grid.Unit, []grid.UnitKey) {
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
	n := 0
	for _, u := range units {
		if u.Layer != grid.BaseLayer || u.ParentCode != code || u.Level != grid.Grid || u.Geometry.Bound().Center()[0] <= mid {
			continue
		}
		remove = append(remove, grid.UnitKey{Layer: u.Layer, Code: u.Code})
		n++
		u.Code, u.ParentCode = fmt.Sprintf("%s%03d", newCode, n), newCode
		upsert = append(upsert, u)
	}
	return upsert, remove
}

// BenchmarkMemUnitsApply times Apply on the full demo city (19,700 grids)
// for the edits a boundary edit sends (docs/benchmarks.md, "Following
// edits"): one grid renamed, a vertex shared by neighbouring grids moved,
// and a community split in two with its eastern grids re-coded. B/op is
// the memory the new snapshot does not share with the old.
func BenchmarkMemUnitsApply(b *testing.B) {
	units := loadUnits(b, pgtest.NewFullDemo(b))
	mem := NewMemUnits(units)
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
	split, gone := splitCommunity(units, comm.Code, comm.ParentCode+"999")
	for _, c := range []struct {
		name   string
		upsert []grid.Unit
		remove []grid.UnitKey
	}{
		{"grid-renamed", []grid.Unit{renamed}, nil},
		{"grid-reshaped", moveVertex(units, g.Code, 1, orb.Point{1e-5, 1e-5}), nil},
		{"community-split", split, gone},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mem.Apply(c.upsert, c.remove)
			}
			b.ReportMetric(float64(len(c.upsert)+len(c.remove)), "units")
		})
	}
}
