package geo

import (
	"math"
	"math/big"

	"github.com/paulmach/orb"
)

// Prepared is a (multi)polygon made ready for many point-in-polygon tests.
// Its edges are bucketed into horizontal slabs, so a test looks only at the
// edges that can cross the ray through the point: a district ring with
// thousands of vertices costs about as much as a small grid cell.
//
// Covers follows ST_Covers: a point on any ring (outer or hole) is covered.
type Prepared struct {
	Bound orb.Bound
	edges []edge
	// Slab s lists the edges slabEdge[slabAt[s]:slabAt[s+1]]: two flat
	// slices (one allocation) instead of a slice per slab, which for the
	// 200,000 small grids of a province was millions of small allocations
	// and most of a locator build's garbage-collection time.
	slabAt   []int32
	slabEdge []int32
	minY     float64
	slabDY   float64
}

type edge struct{ x1, y1, x2, y2 float64 }

// Prepare builds the slab index for mp. mp's rings must be closed.
func Prepare(mp orb.MultiPolygon) *Prepared {
	p := &Prepared{Bound: mp.Bound()}
	n := 0
	for _, poly := range mp {
		for _, ring := range poly {
			for i := 0; i+1 < len(ring); i++ {
				if ring[i] != ring[i+1] {
					n++
				}
			}
		}
	}
	p.edges = make([]edge, 0, n)
	for _, poly := range mp {
		for _, ring := range poly {
			for i := 0; i+1 < len(ring); i++ {
				a, b := ring[i], ring[i+1]
				if a == b {
					continue
				}
				p.edges = append(p.edges, edge{a[0], a[1], b[0], b[1]})
			}
		}
	}
	slabs := len(p.edges)/4 + 1
	if slabs > 4096 {
		slabs = 4096
	}
	p.minY = p.Bound.Min[1]
	h := p.Bound.Max[1] - p.Bound.Min[1]
	if h <= 0 || slabs == 1 {
		buf := make([]int32, 2+len(p.edges))
		p.slabAt, p.slabEdge = buf[:2], buf[2:]
		p.slabAt[1] = int32(len(p.edges))
		for i := range p.slabEdge {
			p.slabEdge[i] = int32(i)
		}
		p.slabDY = math.Inf(1)
		return p
	}
	p.slabDY = h / float64(slabs)
	// Two passes: count each slab's edges, then place them.
	at := make([]int32, slabs+1)
	p.slabAt = at
	for _, e := range p.edges {
		lo, hi := p.slab(math.Min(e.y1, e.y2)), p.slab(math.Max(e.y1, e.y2))
		for s := lo; s <= hi; s++ {
			at[s+1]++
		}
	}
	for s := 1; s <= slabs; s++ {
		at[s] += at[s-1]
	}
	buf := make([]int32, slabs+1+int(at[slabs]))
	copy(buf, at)
	p.slabAt, p.slabEdge = buf[:slabs+1], buf[slabs+1:]
	next := at[:slabs] // the count array serves as each slab's cursor
	for i, e := range p.edges {
		lo, hi := p.slab(math.Min(e.y1, e.y2)), p.slab(math.Max(e.y1, e.y2))
		for s := lo; s <= hi; s++ {
			p.slabEdge[next[s]] = int32(i)
			next[s]++
		}
	}
	return p
}

// slabs is the number of slabs.
func (p *Prepared) slabs() int { return len(p.slabAt) - 1 }

// slabList is the edges of slab s.
func (p *Prepared) slabList(s int) []int32 { return p.slabEdge[p.slabAt[s]:p.slabAt[s+1]] }

func (p *Prepared) slab(y float64) int {
	s := int((y - p.minY) / p.slabDY)
	if s < 0 {
		return 0
	}
	if n := len(p.slabAt) - 1; s >= n {
		return n - 1
	}
	return s
}

// Covers reports whether pt lies inside the polygon or on its boundary.
func (p *Prepared) Covers(pt orb.Point) bool {
	x, y := pt[0], pt[1]
	if x != x || y != y || !p.Bound.Contains(pt) { // NaN is nowhere
		return false
	}
	crossings := 0
	for _, i := range p.slabList(p.slab(y)) {
		e := &p.edges[i]
		if (e.x1 == x && e.y1 == y) || (e.x2 == x && e.y2 == y) {
			return true
		}
		if e.y1 == y && e.y2 == y {
			if (e.x1 <= x && x <= e.x2) || (e.x2 <= x && x <= e.x1) {
				return true
			}
			continue
		}
		// Half-open rule: an edge counts when one end is strictly above the
		// ray and the other is on or below it, so a vertex is counted once.
		if (e.y1 > y) == (e.y2 > y) {
			continue
		}
		if e.x1 < x && e.x2 < x {
			continue
		}
		lx, ly, ux, uy := e.x1, e.y1, e.x2, e.y2
		if ly > uy {
			lx, ly, ux, uy = ux, uy, lx, ly
		}
		switch orient(lx, ly, ux, uy, x, y) {
		case 0:
			return true
		case 1:
			crossings++
		}
	}
	return crossings%2 == 1
}

// ccwErrBound is Shewchuk's error bound for the orientation determinant.
const ccwErrBound = (3.0 + 16.0*epsilon) * epsilon

const epsilon = 1.1102230246251565e-16 // 2^-53

// orient returns +1 when c lies left of a→b, -1 when right, 0 when on the
// line. The float result is used when it is certainly right (Shewchuk's
// filter); otherwise exact rational arithmetic decides, so a point on an
// edge is found exactly. (go-geom's bigxy.OrientationIndex is not a
// substitute: it computes in 53-bit big.Floats and rounds like float64.)
func orient(ax, ay, bx, by, cx, cy float64) int {
	detL := (bx - ax) * (cy - ay)
	detR := (by - ay) * (cx - ax)
	det := detL - detR
	bound := ccwErrBound * (math.Abs(detL) + math.Abs(detR))
	if det > bound {
		return 1
	}
	if det < -bound {
		return -1
	}
	return orientExact(ax, ay, bx, by, cx, cy)
}

func orientExact(ax, ay, bx, by, cx, cy float64) int {
	r := func(v float64) *big.Rat { return new(big.Rat).SetFloat64(v) }
	sub := func(a, b float64) *big.Rat { return new(big.Rat).Sub(r(a), r(b)) }
	l := new(big.Rat).Mul(sub(bx, ax), sub(cy, ay))
	rr := new(big.Rat).Mul(sub(by, ay), sub(cx, ax))
	return l.Cmp(rr)
}
