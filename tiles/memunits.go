package tiles

import (
	"math"
	"sort"
	"strconv"

	"github.com/paulmach/orb"

	"gridmap/grid"
)

// Unit tiles from memory (docs/design-notes.md, "Unit tiles from memory").
// MemUnits holds every current unit of the base layer projected once to
// Web Mercator (world coordinates 0–1, y down) with an R-tree per level,
// and a weight per vertex: the tolerance below which Douglas–Peucker
// simplification keeps it. Weights are computed per shared arc (the run of
// boundary between two junctions, walked in one canonical direction), so
// the two units on either side of an edge keep exactly the same vertices
// at every zoom and neighbours never open slivers between them; a render
// only filters by weight, projects to the tile grid, clips and encodes.
//
// A MemUnits is immutable once built: Apply derives a new one that shares
// every unchanged unit, as grid.Locator.Apply does, and readers holding the
// old one go on undisturbed.
type MemUnits struct {
	levels   map[grid.Level]*memLevel
	vertices int
}

type memLevel struct {
	units []*memUnit // by code: search results in index order are in code order
	tree  *unitIndex // positions in units
	// gen names this level; from is the gen of the level Apply derived it
	// from, and touched the codes (sorted) whose units differ from that
	// level's: Changed between the two reads only those.
	gen, from uint64
	touched   []string
}

// memUnit is one unit as tiles draw it.
type memUnit struct {
	code, name, level, parent string
	id                        uint64 // the code as a number: the feature id
	polys                     []memPoly
	bound                     orb.Bound // world coordinates
}

// wgs84 is the unit's geometry back in longitude/latitude (closed rings):
// what the tiles over it are invalidated by. Only the projected copy is
// kept; the source geometry is not held twice.
func (u *memUnit) wgs84() orb.MultiPolygon {
	out := make(orb.MultiPolygon, len(u.polys))
	for pi, p := range u.polys {
		out[pi] = make(orb.Polygon, len(p))
		for ri, r := range p {
			ring := make(orb.Ring, 0, len(r.pts)+1)
			for _, q := range r.pts {
				ring = append(ring, unmercator(q))
			}
			out[pi][ri] = append(ring, ring[0])
		}
	}
	return out
}

// unmercator is mercator's inverse.
func unmercator(p orb.Point) orb.Point {
	return orb.Point{p[0]*360 - 180, math.Atan(math.Sinh(math.Pi*(1-2*p[1]))) * 180 / math.Pi}
}

type memPoly []memRing // ring 0 is the exterior

type memRing struct {
	bound orb.Bound
	pts   []orb.Point // world coordinates, open (the closing point dropped)
	w     []float32   // simplification weight of each point (world units); +Inf: always kept
}

// NewMemUnits indexes the current units of the base layer among units.
func NewMemUnits(units []grid.Unit) *MemUnits {
	byLevel := map[grid.Level][]*memUnit{}
	for _, u := range units {
		if u.Layer != grid.BaseLayer {
			continue
		}
		byLevel[u.Level] = append(byLevel[u.Level], projectUnit(u))
	}
	m := &MemUnits{levels: map[grid.Level]*memLevel{}}
	for lv, us := range byLevel {
		m.levels[lv] = buildLevel(us)
	}
	m.count()
	return m
}

func (m *MemUnits) count() {
	for _, l := range m.levels {
		for _, u := range l.units {
			for _, p := range u.polys {
				for _, r := range p {
					m.vertices += len(r.pts)
				}
			}
		}
	}
}

// Len is the number of units held.
func (m *MemUnits) Len() int {
	n := 0
	for _, l := range m.levels {
		n += len(l.units)
	}
	return n
}

// Vertices is the number of vertices held.
func (m *MemUnits) Vertices() int { return m.vertices }

// mercator projects a WGS-84 position to world coordinates (0–1, y down),
// latitude clamped to Web Mercator's square.
func mercator(p orb.Point) orb.Point {
	lat := math.Max(-85.0511287798066, math.Min(85.0511287798066, p[1]))
	s := math.Sin(lat * math.Pi / 180)
	return orb.Point{(p[0] + 180) / 360, 0.5 - math.Log((1+s)/(1-s))/(4*math.Pi)}
}

func projectUnit(u grid.Unit) *memUnit {
	mu := &memUnit{code: u.Code, name: u.Name, level: string(u.Level), parent: u.ParentCode}
	mu.id, _ = strconv.ParseUint(u.Code, 10, 64)
	first := true
	for _, poly := range u.Geometry {
		var mp memPoly
		for ri, ring := range poly {
			pts := make([]orb.Point, 0, len(ring))
			for _, p := range ring {
				q := mercator(p)
				if len(pts) > 0 && pts[len(pts)-1] == q {
					continue
				}
				pts = append(pts, q)
			}
			for len(pts) > 1 && pts[len(pts)-1] == pts[0] {
				pts = pts[:len(pts)-1]
			}
			if len(pts) < 3 {
				if ri == 0 {
					break // no exterior: no polygon
				}
				continue
			}
			for _, q := range pts {
				if first {
					mu.bound, first = orb.Bound{Min: q, Max: q}, false
				}
				mu.bound = mu.bound.Extend(q)
			}
			mp = append(mp, memRing{pts: pts, bound: orb.MultiPoint(pts).Bound()})
		}
		if len(mp) > 0 {
			mu.polys = append(mu.polys, mp)
		}
	}
	return mu
}

// buildLevel sorts one level's units by code, weighs their vertices and
// indexes their bounds. Units shared with an older snapshot are copied
// before their weights are set: the older one may be read concurrently.
func buildLevel(us []*memUnit) *memLevel {
	sort.Slice(us, func(i, j int) bool { return us[i].code < us[j].code })
	for i, u := range us {
		us[i] = reweighable(u)
	}
	weigh(us)
	return &memLevel{units: us, tree: newUnitIndex(us), gen: nextGen()}
}

// reweighable is a copy of u with weights of its own to set (its points
// shared: they never change).
func reweighable(u *memUnit) *memUnit {
	c := *u
	c.polys = make([]memPoly, len(u.polys))
	for pi, p := range u.polys {
		c.polys[pi] = make(memPoly, len(p))
		for ri, r := range p {
			c.polys[pi][ri] = memRing{pts: r.pts, bound: r.bound, w: make([]float32, len(r.pts))}
		}
	}
	return &c
}

// weigh sets the simplification weight of every vertex of one level, arc
// by arc. A junction is a vertex where the set of units (rings) sharing the
// boundary changes: one whose two neighbours along the ring are not the
// same in every ring it is on. Junctions are always kept; between two of
// them, the same run of vertices lies on the same rings (reversed on the
// neighbour), and is weighed once in a canonical direction, so every ring
// holding it gets the same weights.
func weigh(us []*memUnit) {
	at := map[orb.Point]*vertexSeen{}
	for _, u := range us {
		noteRings(at, u, true)
	}
	for _, u := range us {
		weighUnit(at, u)
	}
}

// vertexSeen is what the rings through one vertex say of it: the pair of
// its neighbours along the first ring seen (lower point first), and
// whether another ring gave another pair.
type vertexSeen struct {
	a, b           orb.Point
	seen, junction bool
}

// noteRings records u's rings at their vertices: at every vertex when all,
// else only at the vertices at already holds (Apply asks about the
// vertices of the units it weighs again, and notes every ring near them).
func noteRings(at map[orb.Point]*vertexSeen, u *memUnit, all bool) {
	for _, p := range u.polys {
		for _, r := range p {
			n := len(r.pts)
			for i, q := range r.pts {
				s := at[q]
				if s == nil {
					if !all {
						continue
					}
					s = &vertexSeen{}
					at[q] = s
				}
				a, b := r.pts[(i+n-1)%n], r.pts[(i+1)%n]
				if less(b, a) {
					a, b = b, a
				}
				if !s.seen {
					s.a, s.b, s.seen = a, b, true
				} else if s.a != a || s.b != b {
					s.junction = true
				}
			}
		}
	}
}

// weighUnit weighs u's rings given the junctions in at (which holds every
// vertex of u, noted from every ring through it).
func weighUnit(at map[orb.Point]*vertexSeen, u *memUnit) {
	inf := float32(math.Inf(1))
	for _, p := range u.polys {
		for _, r := range p {
			n := len(r.pts)
			var js []int
			for i, q := range r.pts {
				if at[q].junction {
					js = append(js, i)
				}
			}
			if len(js) == 0 {
				// A closed loop shared whole (or not at all): its
				// lowest point and the point farthest from it stand
				// in for junctions, found alike from either side.
				lo := 0
				for i := range r.pts {
					if less(r.pts[i], r.pts[lo]) {
						lo = i
					}
				}
				far, fd := -1, -1.0
				for i, q := range r.pts {
					d := dist2(q, r.pts[lo])
					if d > fd || (d == fd && less(q, r.pts[far])) {
						far, fd = i, d
					}
				}
				js = []int{lo, far}
				if far < lo {
					js = []int{far, lo}
				}
			}
			for _, j := range js {
				r.w[j] = inf
			}
			for k, j := range js {
				end := js[(k+1)%len(js)]
				if end <= j {
					end += n
				}
				weighArc(r.pts, r.w, j, end)
			}
		}
	}
}

// weighArc weighs the points strictly between ring indices from and to
// (to may pass n: indices wrap), walked from the end whose point is lower
// so that the shared arc on the neighbouring ring, walked the other way,
// gets the same weights.
func weighArc(pts []orb.Point, w []float32, from, to int) {
	n := len(pts)
	m := to - from + 1
	if m <= 2 {
		return
	}
	idx := make([]int, m)
	for i := range idx {
		idx[i] = (from + i) % n
	}
	a, b := pts[idx[0]], pts[idx[m-1]]
	if less(b, a) || (a == b && less(pts[idx[m-2]], pts[idx[1]])) {
		for i, j := 0, m-1; i < j; i, j = i+1, j-1 {
			idx[i], idx[j] = idx[j], idx[i]
		}
	}
	type span struct {
		i, j int
		cap  float64
	}
	stack := []span{{0, m - 1, math.Inf(1)}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.j-s.i < 2 {
			continue
		}
		best, bd := -1, -1.0
		p0, p1 := pts[idx[s.i]], pts[idx[s.j]]
		for k := s.i + 1; k < s.j; k++ {
			if d := segDist(pts[idx[k]], p0, p1); d > bd {
				best, bd = k, d
			}
		}
		// Monotone: a point is kept only while the point that split its
		// span is, so a coarser zoom's vertices are a subset of a finer one's.
		d := math.Min(bd, s.cap)
		w[idx[best]] = float32(d)
		stack = append(stack, span{s.i, best, d}, span{best, s.j, d})
	}
}

func less(a, b orb.Point) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }

func dist2(a, b orb.Point) float64 {
	dx, dy := a[0]-b[0], a[1]-b[1]
	return dx*dx + dy*dy
}

// segDist is the distance from p to the segment a–b.
func segDist(p, a, b orb.Point) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	l2 := dx*dx + dy*dy
	if l2 == 0 {
		return math.Sqrt(dist2(p, a))
	}
	t := ((p[0]-a[0])*dx + (p[1]-a[1])*dy) / l2
	t = math.Max(0, math.Min(1, t))
	return math.Sqrt(dist2(p, orb.Point{a[0] + t*dx, a[1] + t*dy}))
}

// Changed lists what differs in drawing between two snapshots of the
// units: the old and the new geometry of every unit added, removed or
// changed, and of every unchanged unit whose vertex weights moved (an edit
// moves the junctions of its neighbours' arcs, and an arc is weighed
// whole, so a neighbour's simplification may change beyond the edited
// unit's own extent). Each change carries the unit's level.
func Changed(old, cur *MemUnits) []UnitChange {
	var out []UnitChange
	for lv, l := range cur.levels {
		o := old.levels[lv]
		if o == l {
			continue
		}
		var ou []*memUnit
		if o != nil {
			ou = o.units
			if l.from == o.gen {
				// Derived from o by Apply: only the touched units differ.
				out = l.changedSince(o, lv, out)
				continue
			}
		}
		i, j := 0, 0
		for i < len(ou) || j < len(l.units) {
			switch {
			case j == len(l.units) || (i < len(ou) && ou[i].code < l.units[j].code):
				out = append(out, UnitChange{Geom: ou[i].wgs84(), Level: lv})
				i++
			case i == len(ou) || l.units[j].code < ou[i].code:
				out = append(out, UnitChange{Geom: l.units[j].wgs84(), Level: lv})
				j++
			default:
				if ou[i] != l.units[j] && !sameDrawing(ou[i], l.units[j]) {
					out = append(out, UnitChange{Geom: ou[i].wgs84(), Level: lv}, UnitChange{Geom: l.units[j].wgs84(), Level: lv})
				}
				i, j = i+1, j+1
			}
		}
	}
	for lv, o := range old.levels {
		if cur.levels[lv] == nil {
			for _, u := range o.units {
				out = append(out, UnitChange{Geom: u.wgs84(), Level: lv})
			}
		}
	}
	return out
}

// changedSince is what Changed finds between o and l, derived from o by
// Apply, reading only the units Apply touched (in code order, as the
// walk over both levels would list them).
func (l *memLevel) changedSince(o *memLevel, lv grid.Level, out []UnitChange) []UnitChange {
	for _, c := range l.touched {
		i, had := o.find(c)
		j, has := l.find(c)
		switch {
		case had && has:
			if o.units[i] != l.units[j] && !sameDrawing(o.units[i], l.units[j]) {
				out = append(out, UnitChange{Geom: o.units[i].wgs84(), Level: lv}, UnitChange{Geom: l.units[j].wgs84(), Level: lv})
			}
		case had:
			out = append(out, UnitChange{Geom: o.units[i].wgs84(), Level: lv})
		case has:
			out = append(out, UnitChange{Geom: l.units[j].wgs84(), Level: lv})
		}
	}
	return out
}

// UnitChange is a unit geometry under which tiles of its level changed.
type UnitChange struct {
	Geom  orb.MultiPolygon
	Level grid.Level
}

func sameDrawing(a, b *memUnit) bool {
	if a.name != b.name || a.parent != b.parent || len(a.polys) != len(b.polys) {
		return false
	}
	for pi, p := range a.polys {
		if len(p) != len(b.polys[pi]) {
			return false
		}
		for ri, r := range p {
			s := b.polys[pi][ri]
			if len(r.pts) != len(s.pts) {
				return false
			}
			for k := range r.pts {
				if r.pts[k] != s.pts[k] || r.w[k] != s.w[k] {
					return false
				}
			}
		}
	}
	return true
}
