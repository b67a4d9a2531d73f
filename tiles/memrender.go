package tiles

import (
	"bytes"
	"math"
	"slices"
	"sync"

	"github.com/paulmach/orb"

	"gridmap/grid"
)

// SimplifyPixels is the tolerance of the per-zoom simplification of unit
// tiles drawn from memory, in tile pixels (1/4096 of a tile): the
// tolerance the PostGIS renderer gives ST_Simplify.
const SimplifyPixels = 1.0

// RenderUnits draws the units tileset's tile z/x/y from memory: the source
// layers visible at z, in the catalogue's order, each with its features in
// code order, the same attributes and ids as the PostGIS renderer. Nothing
// drawn: nil.
func (m *MemUnits) RenderUnits(l *Tileset, z, x, y int) []byte {
	sc := scratches.Get().(*memScratch)
	defer scratches.Put(sc)
	// Drawn into the pooled buffer and copied out once at its size: grown
	// by appends, a tile's buffer cost twice its bytes in garbage.
	out := sc.out[:0]
	for _, s := range l.Sources { // l.Visible(z), without its slice
		if z >= s.MinZoom && z <= s.MaxZoom {
			out = m.renderLevel(sc, out, s.ID, z, x, y)
		}
	}
	sc.out = out
	if len(out) == 0 {
		return nil
	}
	return bytes.Clone(out)
}

// memScratch is what one render reuses from the last: pooled, so a cold
// tile allocates little more than its bytes.
type memScratch struct {
	out  []byte
	e    mvtEncoder
	buf  ringBuf
	hits []int32
}

var scratches = sync.Pool{New: func() any { return &memScratch{} }}

// memClip is what one tile's render needs: the world-to-tile transform
// and the buffered box in tile pixels.
type memClip struct {
	scale, ox, oy float64
	lo, hi        float64 // the buffered box: [lo, hi] on both axes
	tol           float32 // world units
}

func newMemClip(z, x, y int) memClip {
	s := float64(Extent) * float64(uint64(1)<<uint(z))
	return memClip{scale: s, ox: float64(x) * Extent, oy: float64(y) * Extent,
		lo: -Buffer, hi: Extent + Buffer, tol: float32(SimplifyPixels / s)}
}

// world is the tile's buffered box in world coordinates.
func (c memClip) world() orb.Bound {
	return orb.Bound{Min: orb.Point{(c.ox + c.lo) / c.scale, (c.oy + c.lo) / c.scale},
		Max: orb.Point{(c.ox + c.hi) / c.scale, (c.oy + c.hi) / c.scale}}
}

func (m *MemUnits) renderLevel(sc *memScratch, out []byte, level string, z, x, y int) []byte {
	lv := m.levels[grid.Level(level)]
	if lv == nil {
		return out
	}
	c := newMemClip(z, x, y)
	hits := sc.hits[:0]
	lv.tree.Search(c.world(), func(i int32) bool { hits = append(hits, i); return true })
	sc.hits = hits
	if len(hits) == 0 {
		return out
	}
	slices.Sort(hits)
	e := &sc.e
	e.startLayer(level)
	for _, i := range hits {
		u := lv.units[i]
		geom := sc.buf.geometry(u, c)
		if len(geom) == 0 {
			continue
		}
		e.feature(u.id, [4]string{u.code, u.name, u.level, u.parent}, geom)
	}
	return e.endLayer(out)
}

// ringBuf holds the scratch slices of one render.
type ringBuf struct {
	a, b []fpt
	q    []ipt
	cmd  []uint32
}

type fpt struct{ x, y float64 }
type ipt struct{ x, y int32 }

// geometry encodes unit u's polygons in tile c as MVT geometry commands:
// vertices kept at this zoom, clipped to the buffered tile, snapped to the
// tile grid; rings that snap to no area (below a pixel) are dropped, and
// with an exterior its holes. Exteriors are clockwise on screen (positive
// area with y down), holes counter-clockwise, as the MVT spec asks.
func (b *ringBuf) geometry(u *memUnit, c memClip) []uint32 {
	b.cmd = b.cmd[:0]
	var cx, cy int32 // the cursor: commands are relative
	world := c.world()
	for _, p := range u.polys {
		for ri, r := range p {
			b.a = b.a[:0]
			for i, q := range r.pts {
				if r.w[i] >= c.tol {
					b.a = append(b.a, fpt{q[0]*c.scale - c.ox, q[1]*c.scale - c.oy})
				}
			}
			if len(b.a) < 3 {
				if ri == 0 {
					break
				}
				continue
			}
			clipped := !containsBound(world, r.bound)
			if clipped {
				// Cut as ST_AsMVTGeom cuts, so that an edge crossing the
				// buffer's border ends on the same pixel: first to the box
				// half a pixel wider, before snapping, then to the box.
				b.a, b.b = clipRing(b.a, b.b, c.lo-0.5, c.hi+0.5)
			}
			b.q = snapRing(b.q[:0], b.a)
			if clipped {
				b.a = b.a[:0]
				for _, q := range b.q {
					b.a = append(b.a, fpt{float64(q.x), float64(q.y)})
				}
				b.a, b.b = clipRing(b.a, b.b, c.lo, c.hi)
				b.q = snapRing(b.q[:0], b.a)
			}
			area := ringArea2(b.q)
			if area == 0 {
				if ri == 0 {
					break
				}
				continue
			}
			if (ri == 0) != (area > 0) {
				for i, j := 0, len(b.q)-1; i < j; i, j = i+1, j-1 {
					b.q[i], b.q[j] = b.q[j], b.q[i]
				}
			}
			b.cmd = append(b.cmd, 1|1<<3, zz32(b.q[0].x-cx), zz32(b.q[0].y-cy))
			cx, cy = b.q[0].x, b.q[0].y
			b.cmd = append(b.cmd, 2|uint32(len(b.q)-1)<<3)
			for _, q := range b.q[1:] {
				b.cmd = append(b.cmd, zz32(q.x-cx), zz32(q.y-cy))
				cx, cy = q.x, q.y
			}
			b.cmd = append(b.cmd, 7|1<<3)
		}
	}
	return b.cmd
}

func containsBound(outer, inner orb.Bound) bool {
	return inner.Min[0] >= outer.Min[0] && inner.Min[1] >= outer.Min[1] && inner.Max[0] <= outer.Max[0] && inner.Max[1] <= outer.Max[1]
}

func zz32(v int32) uint32 { return uint32((v << 1) ^ (v >> 31)) }

// snap rounds a ring to the tile grid and removes what rounding makes
// redundant: repeated points and spikes (a point whose neighbours
// coincide), to a fixed point. Open ring in, open ring out.
func snapRing(q []ipt, a []fpt) []ipt {
	for _, p := range a {
		v := ipt{int32(math.RoundToEven(p.x)), int32(math.RoundToEven(p.y))}
		switch n := len(q); {
		case n > 0 && q[n-1] == v:
		case n > 1 && q[n-2] == v: // a spike: back where we were
			q = q[:n-1]
		default:
			q = append(q, v)
		}
	}
	// the seam between the last and the first point
	for len(q) > 2 {
		n := len(q)
		switch {
		case q[n-1] == q[0]:
			q = q[:n-1]
		case q[n-2] == q[0]: // spike at the last point
			q = q[:n-1]
		case q[n-1] == q[1]: // spike at the first point
			q = q[1:]
		default:
			return q
		}
	}
	return q[:0]
}

// ringArea is twice the signed area of an open ring on the tile grid
// (positive: clockwise on screen, y down).
func ringArea2(q []ipt) int64 {
	if len(q) < 3 {
		return 0
	}
	var s int64
	p := q[len(q)-1]
	for _, c := range q {
		s += int64(p.x)*int64(c.y) - int64(c.x)*int64(p.y)
		p = c
	}
	return s
}

// clipRing cuts an open ring to the square [lo, hi]² (Sutherland–Hodgman:
// a concave ring may keep zero-width runs along the square's edges, as
// ST_ClipByBox2D's do; they draw nothing). The result is in one of the two
// buffers, the other is scratch.
func clipRing(a, b []fpt, lo, hi float64) ([]fpt, []fpt) {
	for edge := 0; edge < 4 && len(a) > 0; edge++ {
		inside := func(p fpt) bool {
			switch edge {
			case 0:
				return p.x >= lo
			case 1:
				return p.x <= hi
			case 2:
				return p.y >= lo
			}
			return p.y <= hi
		}
		cut := func(p, q fpt) fpt {
			// Interpolated from the lower point, so the shared edge of two
			// neighbours (walked in opposite directions) cuts at the same
			// position.
			if q.x < p.x || (q.x == p.x && q.y < p.y) {
				p, q = q, p
			}
			var k float64
			switch edge {
			case 0:
				k = (lo - p.x) / (q.x - p.x)
				return fpt{lo, p.y + k*(q.y-p.y)}
			case 1:
				k = (hi - p.x) / (q.x - p.x)
				return fpt{hi, p.y + k*(q.y-p.y)}
			case 2:
				k = (lo - p.y) / (q.y - p.y)
				return fpt{p.x + k*(q.x-p.x), lo}
			}
			k = (hi - p.y) / (q.y - p.y)
			return fpt{p.x + k*(q.x-p.x), hi}
		}
		b = b[:0]
		prev := a[len(a)-1]
		pin := inside(prev)
		for _, cur := range a {
			cin := inside(cur)
			switch {
			case cin && pin:
				b = append(b, cur)
			case cin:
				b = append(b, cut(prev, cur), cur)
			case pin:
				b = append(b, cut(prev, cur))
			}
			prev, pin = cur, cin
		}
		a, b = b, a
	}
	return a, b
}
