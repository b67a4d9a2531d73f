package grid

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
)

// Apply must locate exactly as a locator built afresh from the same units,
// after any sequence of replacements, additions and removals, at every
// level and layer; and it must leave the locator it derives from as it was.
func TestApplyMatchesNewLocator(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	cur := map[UnitKey]Unit{}
	for _, u := range testUnits() {
		cur[UnitKey{u.Layer, u.Code}] = u
	}
	// A lattice of grids under community 440306001001 and a second layer's.
	for i := 0; i < 8; i++ {
		for j := 0; j < 4; j++ {
			g := unit(BaseLayer, Grid, fmt.Sprintf("440306001001%03d", 10+i*4+j), "", box(float64(i)/4, float64(j)/2, float64(i+1)/4, float64(j+1)/2))
			cur[UnitKey{g.Layer, g.Code}] = g
		}
	}
	all := func() []Unit {
		var us []Unit
		for _, u := range cur {
			us = append(us, u)
		}
		return us
	}
	pts := []orb.Point{{1, 0.5}, {1, 2}, {2, 2}, {4, 4}, {2.5, 3}, {0, 0}, {-1, -1}}
	for k := 0; k < 400; k++ {
		pts = append(pts, orb.Point{float64(rng.IntN(65)) / 8, float64(rng.IntN(33)) / 8}, orb.Point{rng.Float64() * 8, rng.Float64() * 4})
	}
	same := func(step int, got, want *Locator) {
		t.Helper()
		if got.Len() != want.Len() {
			t.Fatalf("step %d: %d units, want %d", step, got.Len(), want.Len())
		}
		for _, p := range pts {
			a, _ := json.Marshal(got.Locate(p[0], p[1]))
			b, _ := json.Marshal(want.Locate(p[0], p[1]))
			if string(a) != string(b) {
				t.Fatalf("step %d, point %v: %s, want %s", step, p, a, b)
			}
		}
	}
	loc := NewLocator(all())
	for step := 0; step < 60; step++ {
		before, beforeUnits := loc, NewLocator(all())
		var upsert []Unit
		var remove []UnitKey
		keys := make([]UnitKey, 0, len(cur))
		for k := range cur {
			keys = append(keys, k)
		}
		for n := 1 + rng.IntN(4); n > 0; n-- {
			k := keys[rng.IntN(len(keys))]
			switch rng.IntN(4) {
			case 0: // retire (a parent too: its children then have none)
				if _, ok := cur[k]; ok {
					delete(cur, k)
					remove = append(remove, k)
				}
			case 1: // a unit nobody holds: a removal of it is a no-op
				remove = append(remove, UnitKey{"police", "440306001001999"})
			default: // reshape and rename, or re-create a retired code
				u, ok := cur[k]
				if !ok {
					continue
				}
				x, y := float64(rng.IntN(16))/2, float64(rng.IntN(8))/2
				u.Geometry = box(x, y, x+0.5+float64(rng.IntN(4))/2, y+0.5+float64(rng.IntN(4))/2)
				u.Name = fmt.Sprintf("v%d", step)
				cur[k] = u
				upsert = append(upsert, u)
			}
		}
		if step%7 == 3 { // a new unit under a grid-less community, and a new layer
			u := unit("water", Street, fmt.Sprintf("440306%03d", step), "", box(0, 0, float64(1+step%5), 2))
			cur[UnitKey{u.Layer, u.Code}] = u
			upsert = append(upsert, u)
		}
		// A unit written twice counts once, as it is now; one written and
		// then retired in the same step is a removal.
		dedup := map[UnitKey]bool{}
		var ups []Unit
		for _, u := range upsert {
			k := UnitKey{u.Layer, u.Code}
			if now, ok := cur[k]; ok && !dedup[k] {
				dedup[k] = true
				ups = append(ups, now)
			} else if !ok {
				remove = append(remove, k)
			}
		}
		var rem []UnitKey
		for _, k := range remove {
			if _, ok := cur[k]; !ok {
				rem = append(rem, k)
			}
		}
		loc = loc.Apply(ups, rem)
		same(step, loc, NewLocator(all()))
		same(step, before, beforeUnits) // the old locator is untouched
	}
}

func TestApplyShares(t *testing.T) {
	units := testUnits()
	l := NewLocator(units)
	u := units[3] // grid 440306001001002
	u.Geometry = box(1, 0, 2, 1)
	m := l.Apply([]Unit{u}, nil)
	shared, fresh := 0, 0
	for i := range m.units {
		kept := false
		for j := range l.units {
			if m.units[i].prep == l.units[j].prep {
				kept = true
			}
		}
		if kept {
			shared++
		} else {
			fresh++
		}
	}
	if shared != len(units)-1 || fresh != 1 {
		t.Errorf("%d prepared polygons shared, %d new; want %d and 1", shared, fresh, len(units)-1)
	}
	if g := m.Find(BaseLayer, Grid, orb.Point{1.5, 1.5}); g != nil {
		t.Errorf("Find in the area the grid gave up = %v, want none", g)
	}
	if g := l.Find(BaseLayer, Grid, orb.Point{1.5, 1.5}); g == nil || g.Code != u.Code {
		t.Errorf("the old locator finds %v, want %s", g, u.Code)
	}
}

// A city of 20,000 grids, one of them changed: Apply against NewLocator.
func benchUnits() []Unit {
	var us []Unit
	for i := 0; i < 200; i++ {
		for j := 0; j < 100; j++ {
			x, y := 113.8+float64(i)*0.003, 22.5+float64(j)*0.003
			ring := orb.Ring{}
			for k := 0; k <= 40; k++ { // 40 vertices, as a drawn grid has
				f := float64(k%40) / 40
				switch {
				case f < 0.25:
					ring = append(ring, orb.Point{x + f*4*0.003, y})
				case f < 0.5:
					ring = append(ring, orb.Point{x + 0.003, y + (f-0.25)*4*0.003})
				case f < 0.75:
					ring = append(ring, orb.Point{x + 0.003 - (f-0.5)*4*0.003, y + 0.003})
				default:
					ring = append(ring, orb.Point{x, y + 0.003 - (f-0.75)*4*0.003})
				}
			}
			us = append(us, unit(BaseLayer, Grid, fmt.Sprintf("440306%03d%03d%03d", 1+i/100, 1+i%100, 1+j), "", orb.MultiPolygon{{ring}}))
		}
	}
	return us
}

func BenchmarkNewLocator20k(b *testing.B) {
	us := benchUnits()
	for b.Loop() {
		NewLocator(us)
	}
}

func BenchmarkApply20k(b *testing.B) {
	us := benchUnits()
	l := NewLocator(us)
	u := us[5000]
	for b.Loop() {
		l.Apply([]Unit{u}, nil)
	}
}
