package tiles

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/paulmach/orb"

	"gridmap/geo"
	"gridmap/grid"
)

// Apply derives a new MemUnits: the units of upsert added (each replacing
// the unit of its code if held), the units named in remove dropped; m is
// not modified and readers of it go on undisturbed. The result is what
// NewMemUnits gives on the new set of units, in time that follows the edit
// rather than the level (docs/design-notes.md, "Unit tiles from memory"):
// only the units whose weights can move are weighed again — those added,
// and those sharing a vertex with a unit added or removed, whose junctions
// may move there — and every other unit, weights and all, is shared with
// m; a unit sent again with the same points keeps its weights. The
// level's R-tree is kept, with the units added since it was built in a
// small tree of their own and those removed since struck out, until the
// two together pass overlayMax; then the level is laid out again and
// indexed afresh.
// What is left in proportion to the level is copying its slice of unit
// pointers (8 bytes a unit).
func (m *MemUnits) Apply(upsert []grid.Unit, remove []grid.UnitKey) *MemUnits {
	drop := map[string]bool{}
	for _, k := range remove {
		if k.Layer == grid.BaseLayer {
			drop[k.Code] = true
		}
	}
	add := map[grid.Level]map[string]*memUnit{}
	for _, u := range upsert {
		if u.Layer != grid.BaseLayer {
			continue
		}
		drop[u.Code] = true
		if add[u.Level] == nil {
			add[u.Level] = map[string]*memUnit{}
		}
		add[u.Level][u.Code] = projectUnit(u) // the last of a code sent twice
	}
	dropped := make([]string, 0, len(drop))
	for c := range drop {
		dropped = append(dropped, c)
	}
	slices.Sort(dropped)
	out := &MemUnits{levels: map[grid.Level]*memLevel{}, vertices: m.vertices}
	levels := map[grid.Level]bool{}
	for lv := range m.levels {
		levels[lv] = true
	}
	for lv := range add {
		levels[lv] = true
	}
	for lv := range levels {
		as := make([]*memUnit, 0, len(add[lv]))
		for _, u := range add[lv] {
			as = append(as, u)
			out.vertices += u.vertexCount()
		}
		sort.Slice(as, func(i, j int) bool { return as[i].code < as[j].code })
		old := m.levels[lv]
		var gone []int // positions in old.units
		if old != nil {
			for _, c := range dropped {
				if i, ok := old.find(c); ok {
					gone = append(gone, i)
					out.vertices -= old.units[i].vertexCount()
				}
			}
		}
		var l *memLevel
		switch {
		case old != nil && len(gone) == 0 && len(as) == 0:
			l = old
		case old == nil || len(gone)+len(as) > max(64, len(old.units)/8):
			// Most of the level (or all of it, new): indexed and weighed afresh.
			l = buildLevel(mergeUnits(old, gone, as))
		default:
			l = old.apply(gone, as, drop)
		}
		if len(l.units) > 0 {
			out.levels[lv] = l
		}
	}
	return out
}

// gens names levels for Changed (memLevel.gen): unique in the process.
var gens atomic.Uint64

func nextGen() uint64 { return gens.Add(1) }

// byUnitCode orders a level's units (sorted by code) against a code, for
// binary searches.
func byUnitCode(u *memUnit, c string) int { return strings.Compare(u.code, c) }

// find is the position of the unit of code c.
func (l *memLevel) find(c string) (int, bool) {
	return slices.BinarySearchFunc(l.units, c, byUnitCode)
}

func (u *memUnit) vertexCount() int {
	n := 0
	for _, p := range u.polys {
		for _, r := range p {
			n += len(r.pts)
		}
	}
	return n
}

// mergeUnits is old's units but those at the positions gone (sorted),
// with as (sorted by code, none of them held by old unless gone) merged
// in code order.
func mergeUnits(old *memLevel, gone []int, as []*memUnit) []*memUnit {
	var ou []*memUnit
	if old != nil {
		ou = old.units
	}
	out := make([]*memUnit, 0, len(ou)-len(gone)+len(as))
	// Runs of kept units are copied whole (a memmove, not a loop with a
	// write barrier a pointer): the copy is most of an Apply's time.
	from, g := 0, 0
	for _, u := range as {
		at, _ := slices.BinarySearchFunc(ou, u.code, byUnitCode)
		for ; g < len(gone) && gone[g] < at; g++ {
			out = append(out, ou[from:gone[g]]...)
			from = gone[g] + 1
		}
		out = append(out, ou[from:max(from, at)]...)
		from = max(from, at)
		out = append(out, u)
	}
	for ; g < len(gone); g++ {
		out = append(out, ou[from:gone[g]]...)
		from = gone[g] + 1
	}
	return append(out, ou[from:]...)
}

// apply is the level with the units at positions gone removed and as
// added (drop: every code removed or replaced, of any level), weighing
// again only the units whose junctions may move.
func (l *memLevel) apply(gone []int, as []*memUnit, drop map[string]bool) *memLevel {
	units := mergeUnits(l, gone, as)
	// A unit sent again with the same points (renamed, or moved under
	// another parent) moves no junction: it keeps the old unit's weights,
	// unless another unit of the edit moves a junction on it (then it is
	// weighed again as a neighbour is), and its index entry.
	was := make(map[string]*memUnit, len(gone))
	for _, i := range gone {
		was[l.units[i].code] = l.units[i]
	}
	same := map[string]bool{}
	for _, u := range as {
		if o := was[u.code]; o != nil && samePoints(o, u) {
			same[u.code] = true
			for pi, p := range u.polys {
				for ri := range p {
					p[ri].w = o.polys[pi][ri].w
				}
			}
		}
	}
	// The vertices of the units removed and added: the only places a
	// junction may appear or vanish.
	moved := map[orb.Point]struct{}{}
	for _, i := range gone {
		if !same[l.units[i].code] {
			addVertices(moved, l.units[i])
		}
	}
	for _, u := range as {
		if !same[u.code] {
			addVertices(moved, u)
		}
	}
	var asTree *geo.RTree[int32]
	if len(as) > 16 {
		es := make([]geo.RTreeEntry[int32], 0, len(as))
		for i, u := range as {
			if len(u.polys) > 0 {
				es = append(es, geo.RTreeEntry[int32]{Box: u.bound, Item: int32(i)})
			}
		}
		asTree = geo.NewRTree(es)
	}
	// near calls fn for every unit of the new level whose bound meets b:
	// those kept from l through its index, and those added.
	near := func(b orb.Bound, fn func(*memUnit)) {
		l.tree.Search(b, func(i int32) bool {
			if u := l.units[i]; !drop[u.code] {
				fn(u)
			}
			return true
		})
		if asTree != nil {
			asTree.Search(b, func(i int32) bool { fn(as[i]); return true })
			return
		}
		for _, u := range as {
			if len(u.polys) > 0 && u.bound.Intersects(b) {
				fn(u)
			}
		}
	}
	// The kept units that share one of those vertices: weighed again, as
	// copies, in the new slice.
	checked := map[string]bool{}
	var redo []*memUnit // added, then the copies of the neighbours
	for _, u := range as {
		if !same[u.code] {
			u.allocWeights()
			redo = append(redo, u)
			checked[u.code] = true
		}
	}
	touch := func(b orb.Bound) {
		if len(moved) == 0 {
			return
		}
		near(b, func(u *memUnit) {
			if checked[u.code] {
				return
			}
			checked[u.code] = true
			if !hasVertex(u, moved) {
				return
			}
			c := reweighable(u)
			i, _ := slices.BinarySearchFunc(units, c.code, byUnitCode)
			units[i] = c
			redo = append(redo, c)
		})
	}
	for _, i := range gone {
		if !same[l.units[i].code] {
			touch(l.units[i].bound)
		}
	}
	for _, u := range as {
		if !same[u.code] {
			touch(u.bound)
		}
	}
	// Junctions at the vertices of the units weighed again, from every
	// ring through them: those rings' units have bounds that meet.
	at := map[orb.Point]*vertexSeen{}
	for _, u := range redo {
		for _, p := range u.polys {
			for _, r := range p {
				for _, q := range r.pts {
					if at[q] == nil {
						at[q] = &vertexSeen{}
					}
				}
			}
		}
	}
	noted := map[string]bool{}
	for _, u := range redo {
		near(u.bound, func(v *memUnit) {
			if !noted[v.code] {
				noted[v.code] = true
				noteRings(at, v, false)
			}
		})
	}
	for _, u := range redo {
		weighUnit(at, u)
	}
	touched := make([]string, 0, len(gone)+len(redo))
	for _, i := range gone {
		touched = append(touched, l.units[i].code)
	}
	for _, u := range redo {
		touched = append(touched, u.code)
	}
	slices.Sort(touched)
	touched = slices.Compact(touched)
	// A unit replaced by one of its code and bound keeps its place in the
	// index: its position and box are the same.
	var moves []int
	var adds []*memUnit
	for _, i := range gone {
		if a := findUnit(as, l.units[i].code); a == nil || a.bound != l.units[i].bound {
			moves = append(moves, i)
		}
	}
	for _, u := range as {
		if o := was[u.code]; o == nil || o.bound != u.bound {
			adds = append(adds, u)
		}
	}
	tree := l.tree
	if len(moves) > 0 || len(adds) > 0 {
		if tree = l.tree.apply(units, l.units, moves, adds); tree == nil {
			units = compactUnits(units)
			tree = newUnitIndex(units)
		}
	}
	return &memLevel{units: units, tree: tree, gen: nextGen(), from: l.gen, touched: touched}
}

// compactUnits copies units into a few blocks of memory, in code order:
// after many edits the units, their rings and weights lie scattered over
// the heap (each edit allocates those it re-weighs), and a render, which
// reads a tile's units in code order, ran 20 % slower over them
// (BenchmarkMemUnitsOverlayRender). Done when the level is indexed afresh.
func compactUnits(units []*memUnit) []*memUnit {
	var np, nr, nv int
	for _, u := range units {
		np += len(u.polys)
		for _, p := range u.polys {
			nr += len(p)
			for _, r := range p {
				nv += len(r.pts)
			}
		}
	}
	us := make([]memUnit, len(units))
	polys := make([]memPoly, np)
	rings := make([]memRing, nr)
	pts := make([]orb.Point, nv)
	ws := make([]float32, nv)
	out := make([]*memUnit, len(units))
	for i, u := range units {
		c := &us[i]
		*c = *u
		c.polys, polys = polys[:len(u.polys):len(u.polys)], polys[len(u.polys):]
		for pi, p := range u.polys {
			c.polys[pi], rings = rings[:len(p):len(p)], rings[len(p):]
			for ri, r := range p {
				n := len(r.pts)
				q, w := pts[:n:n], ws[:n:n]
				pts, ws = pts[n:], ws[n:]
				copy(q, r.pts)
				copy(w, r.w)
				c.polys[pi][ri] = memRing{bound: r.bound, pts: q, w: w}
			}
		}
		out[i] = c
	}
	return out
}

// findUnit is the unit of code c among us (sorted by code), or nil.
func findUnit(us []*memUnit, c string) *memUnit {
	if i, ok := slices.BinarySearchFunc(us, c, byUnitCode); ok {
		return us[i]
	}
	return nil
}

// samePoints reports whether a and b have the same rings, point for point.
func samePoints(a, b *memUnit) bool {
	if len(a.polys) != len(b.polys) {
		return false
	}
	for pi, p := range a.polys {
		if len(p) != len(b.polys[pi]) {
			return false
		}
		for ri, r := range p {
			if !slices.Equal(r.pts, b.polys[pi][ri].pts) {
				return false
			}
		}
	}
	return true
}

func (u *memUnit) allocWeights() {
	for _, p := range u.polys {
		for ri := range p {
			p[ri].w = make([]float32, len(p[ri].pts))
		}
	}
}

func addVertices(set map[orb.Point]struct{}, u *memUnit) {
	for _, p := range u.polys {
		for _, r := range p {
			for _, q := range r.pts {
				set[q] = struct{}{}
			}
		}
	}
}

func hasVertex(u *memUnit, set map[orb.Point]struct{}) bool {
	for _, p := range u.polys {
		for _, r := range p {
			for _, q := range r.pts {
				if _, ok := set[q]; ok {
					return true
				}
			}
		}
	}
	return false
}

// unitIndex finds a level's units by bound, as positions in the level's
// slice (in code order, which renders sort hits by). It is an R-tree built
// over the level as it was at some snapshot (base, positions in
// baseUnits), with the positions removed since struck out (dead), the
// units added since (over, by code) in a small tree of their own, and
// segs to carry a base position to the current one: the units added and
// removed before it shift it. Immutable: Apply derives a new one.
type unitIndex struct {
	base      *geo.RTree[int32]
	baseUnits []*memUnit
	dead      []int32 // sorted
	over      []overUnit
	overTree  *geo.RTree[int32]
	segs      []indexSeg // by from; none: positions are base positions
	// first[b] is how many segs start at or before base position b·64: a
	// hit reads its block's entry and steps over the few segs that start
	// within the block, where a binary search over segs cost a province
	// z14 tile (~600 hits) a fifth of its render.
	first []int32
}

// indexBlock is the span of base positions first has an entry for.
const indexBlock = 64

// overUnit is a unit added since the base tree was built: only its code
// and bound, so the index holds no unit's weights alive.
type overUnit struct {
	code  string
	bound orb.Bound
	drawn bool // has polygons: in the overlay tree
}

// indexSeg: base positions from this one to the next segment's are
// shifted by off, or struck out when off is deadOff.
type indexSeg struct{ from, off int32 }

const deadOff = math.MinInt32

// overlayMax is how many units the overlay and the struck-out positions
// may hold together over a level of n before the level is indexed afresh:
// each search reads the overlay tree and carries every base hit through
// segs, and each Apply rebuilds both, while the full build is
// O(n log n); about √n balances the two (docs/benchmarks.md).
var overlayMax = func(n int) int { return max(256, int(4*math.Sqrt(float64(n)))) }

func newUnitIndex(units []*memUnit) *unitIndex {
	es := make([]geo.RTreeEntry[int32], 0, len(units))
	for i, u := range units {
		if len(u.polys) > 0 {
			es = append(es, geo.RTreeEntry[int32]{Box: u.bound, Item: int32(i)})
		}
	}
	return &unitIndex{base: geo.NewRTree(es), baseUnits: units}
}

// Search calls fn with the position of every unit whose bound meets r, in
// no particular order, until fn returns false.
func (x *unitIndex) Search(r orb.Bound, fn func(int32) bool) {
	more := true
	if len(x.segs) == 0 {
		x.base.Search(r, func(i int32) bool { more = fn(i); return more })
	} else {
		segs, first := x.segs, x.first
		x.base.Search(r, func(i int32) bool {
			k := int(first[i/indexBlock]) // the first segment starting after i
			for k < len(segs) && segs[k].from <= i {
				k++
			}
			if k > 0 {
				if s := segs[k-1]; s.off == deadOff {
					return true
				} else {
					i += s.off
				}
			}
			more = fn(i)
			return more
		})
	}
	if more && x.overTree != nil {
		x.overTree.Search(r, fn)
	}
}

// apply is the index of units, derived from old's (the level's slice
// before: prev) with the units at prev positions gone removed and as
// added; nil when the overlay would pass overlayMax.
func (x *unitIndex) apply(units, prev []*memUnit, gone []int, as []*memUnit) *unitIndex {
	byCode := func(o overUnit, c string) int { return strings.Compare(o.code, c) }
	over := slices.Clone(x.over)
	dead := slices.Clone(x.dead)
	for _, g := range gone {
		c := prev[g].code
		if i, ok := slices.BinarySearchFunc(over, c, byCode); ok {
			over = slices.Delete(over, i, i+1)
			continue
		}
		p, _ := slices.BinarySearchFunc(x.baseUnits, c, byUnitCode)
		dead = append(dead, int32(p))
	}
	slices.Sort(dead)
	for _, u := range as {
		i, _ := slices.BinarySearchFunc(over, u.code, byCode)
		over = slices.Insert(over, i, overUnit{code: u.code, bound: u.bound, drawn: len(u.polys) > 0})
	}
	if len(over)+len(dead) > overlayMax(len(units)) {
		return nil // full: the caller lays the level out and indexes it afresh
	}
	out := &unitIndex{base: x.base, baseUnits: x.baseUnits, dead: dead, over: over}
	// Where each added unit falls among the base units: it shifts every
	// base position from there on by one, as a struck-out one shifts
	// those after it back.
	ins := make([]int32, len(over))
	var es []geo.RTreeEntry[int32]
	for i, o := range over {
		p, _ := slices.BinarySearchFunc(x.baseUnits, o.code, byUnitCode)
		ins[i] = int32(p)
		if o.drawn {
			at, _ := slices.BinarySearchFunc(units, o.code, byUnitCode)
			es = append(es, geo.RTreeEntry[int32]{Box: o.bound, Item: int32(at)})
		}
	}
	if len(es) > 0 {
		out.overTree = geo.NewRTree(es)
	}
	// ins is sorted, as over is by code.
	cuts := make([]int32, 0, len(ins)+2*len(dead))
	cuts = append(cuts, ins...)
	for _, d := range dead {
		cuts = append(cuts, d, d+1)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	out.segs = make([]indexSeg, len(cuts))
	a, d := 0, 0 // ins ≤ cut, dead < cut
	for k, c := range cuts {
		for a < len(ins) && ins[a] <= c {
			a++
		}
		for d < len(dead) && dead[d] < c {
			d++
		}
		off := int32(a - d)
		if d < len(dead) && dead[d] == c {
			off = deadOff
		}
		out.segs[k] = indexSeg{from: c, off: off}
	}
	out.first = make([]int32, (len(x.baseUnits)+indexBlock-1)/indexBlock)
	k := 0
	for b := range out.first {
		for k < len(out.segs) && out.segs[k].from <= int32(b*indexBlock) {
			k++
		}
		out.first[b] = int32(k)
	}
	return out
}
