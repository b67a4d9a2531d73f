package grid

import (
	"encoding/json"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

// The rule. A point is located in the deepest unit that covers it
// (ST_Covers: interior or boundary), searched from grids upwards, and the
// rest of the chain is that unit's ancestors. Where several units of a level
// cover the point (it lies on their shared edge or corner) the one with the
// lowest code wins. Taking ancestors from the codes, not from a second
// geometric test, keeps every answer a consistent chain even where a child
// overhangs its parent by a rounding error (within the import tolerance):
// the grid is what a grid worker answers for.

// Location answers "which units contain this point": one unit per level of
// the base layer (nil where no unit covers the point) and the same for every
// other layer.
type Location struct {
	Lon       float64 `json:"lon"`
	Lat       float64 `json:"lat"`
	District  *Ref    `json:"district"`
	Street    *Ref    `json:"street"`
	Community *Ref    `json:"community"`
	Grid      *Ref    `json:"grid"`
	// Layers maps each non-base layer to its chain.
	Layers map[string]Chain `json:"layers"`
}

// Chain is one unit per level, nil where none covers the point.
type Chain struct {
	District  *Ref `json:"district"`
	Street    *Ref `json:"street"`
	Community *Ref `json:"community"`
	Grid      *Ref `json:"grid"`
}

func (c *Chain) set(l Level, r *Ref) {
	switch l {
	case District:
		c.District = r
	case Street:
		c.Street = r
	case Community:
		c.Community = r
	case Grid:
		c.Grid = r
	}
}

// MarshalJSON keeps "layers" an object even when there are none.
func (l Location) MarshalJSON() ([]byte, error) {
	type plain Location
	if l.Layers == nil {
		l.Layers = map[string]Chain{}
	}
	return json.Marshal(plain(l))
}

// Locator answers Locate from memory: an R-tree of unit bounds per layer and
// level, and a prepared polygon per unit. It is immutable once built; build a
// new one when units change (NewLocator, or Apply for a few changed units)
// and swap it in.
type Locator struct {
	layers []string // sorted, base first
	trees  map[treeKey]*geo.RTree[int32]
	units  []located
}

type treeKey struct {
	layer string
	level Level
}

// UnitKey names a unit in a locator: its layer and code.
type UnitKey struct{ Layer, Code string }

type located struct {
	ref        Ref
	layer      string
	level      Level
	parentCode string
	parent     int32 // index of the parent unit, -1 for none
	prep       *geo.Prepared
}

// NewLocator indexes units (current versions only).
func NewLocator(units []Unit) *Locator {
	us := make([]located, len(units))
	prepareAll(us, units)
	return index(us)
}

// prepareAll fills us with the prepared units, on every CPU when there are
// many: preparing is most of a build (200,000 grids: about half of its CPU
// time) and each unit is independent.
func prepareAll(us []located, units []Unit) {
	const chunk = 1024
	workers := min(runtime.GOMAXPROCS(0), (len(units)+chunk-1)/chunk)
	if workers <= 1 {
		for i, u := range units {
			us[i] = prepared(u)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= len(units) {
					return
				}
				for i := lo; i < min(lo+chunk, len(units)); i++ {
					us[i] = prepared(units[i])
				}
			}
		}()
	}
	wg.Wait()
}

func prepared(u Unit) located {
	return located{ref: Ref{Code: u.Code, Name: u.Name}, layer: u.Layer, level: u.Level, parentCode: u.ParentCode, prep: geo.Prepare(u.Geometry)}
}

// Apply derives a new locator from l: the units of upsert added, each
// replacing the unit of its layer and code if l holds one, and the units
// named in remove dropped (a key also in upsert is replaced, not dropped).
// Only the units of upsert are prepared; every other unit shares its
// prepared polygon with l, which stays as it was and may be read
// concurrently. The result locates exactly as NewLocator over the same
// units would.
func (l *Locator) Apply(upsert []Unit, remove []UnitKey) *Locator {
	drop := make(map[UnitKey]bool, len(upsert)+len(remove))
	for _, k := range remove {
		drop[k] = true
	}
	for _, u := range upsert {
		drop[UnitKey{u.Layer, u.Code}] = true
	}
	us := make([]located, 0, len(l.units)+len(upsert))
	for _, u := range l.units {
		if !drop[UnitKey{u.layer, u.ref.Code}] {
			us = append(us, u)
		}
	}
	n := len(us)
	us = us[:n+len(upsert)]
	prepareAll(us[n:], upsert)
	return index(us)
}

// index links each unit to its parent and builds the R-trees and the
// layer list over us, which it keeps.
func index(us []located) *Locator {
	l := &Locator{trees: map[treeKey]*geo.RTree[int32]{}, units: us}
	boxes := map[treeKey][]geo.RTreeEntry[int32]{}
	seen := map[string]bool{}
	at := make(map[UnitKey]int32, len(us))
	for i, u := range us {
		at[UnitKey{u.layer, u.ref.Code}] = int32(i)
	}
	for i := range us {
		u := &us[i]
		parent, ok := at[UnitKey{u.layer, u.parentCode}]
		if !ok || u.parentCode == "" {
			parent = -1
		}
		u.parent = parent
		k := treeKey{u.layer, u.level}
		boxes[k] = append(boxes[k], geo.RTreeEntry[int32]{Box: u.prep.Bound, Item: int32(i)})
		if !seen[u.layer] {
			seen[u.layer] = true
			l.layers = append(l.layers, u.layer)
		}
	}
	for k, b := range boxes {
		l.trees[k] = geo.NewRTree(b)
	}
	sort.Slice(l.layers, func(i, j int) bool {
		a, b := l.layers[i], l.layers[j]
		if (a == BaseLayer) != (b == BaseLayer) {
			return a == BaseLayer
		}
		return a < b
	})
	return l
}

// Len is the number of indexed units.
func (l *Locator) Len() int { return len(l.units) }

// Find returns the unit of layer and level covering p (lowest code on a
// shared edge), or nil; a geometric test at that level alone.
func (l *Locator) Find(layer string, level Level, p orb.Point) *Ref {
	u := l.find(layer, level, p)
	if u == nil {
		return nil
	}
	r := u.ref
	return &r
}

func (l *Locator) find(layer string, level Level, p orb.Point) *located {
	t := l.trees[treeKey{layer, level}]
	if t == nil {
		return nil
	}
	var best *located
	t.Search(orb.Bound{Min: p, Max: p}, func(i int32) bool {
		u := &l.units[i]
		if (best == nil || u.ref.Code < best.ref.Code) && u.prep.Covers(p) {
			best = u
		}
		return true
	})
	return best
}

// Locate finds the chain of units covering (lon, lat) in every layer, by
// the rule at the top of this file.
func (l *Locator) Locate(lon, lat float64) Location {
	p := orb.Point{lon, lat}
	loc := Location{Lon: lon, Lat: lat, Layers: map[string]Chain{}}
	for _, layer := range l.layers {
		var c Chain
		var u *located
		for d := len(Levels) - 1; d >= 0 && u == nil; d-- {
			u = l.find(layer, Levels[d], p)
		}
		for u != nil {
			r := u.ref
			c.set(u.level, &r)
			if u.parent < 0 {
				break
			}
			u = &l.units[u.parent]
		}
		if layer == BaseLayer {
			loc.District, loc.Street, loc.Community, loc.Grid = c.District, c.Street, c.Community, c.Grid
		} else {
			loc.Layers[layer] = c
		}
	}
	return loc
}
