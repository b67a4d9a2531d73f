package demo

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// objectClass is a class of generated objects and its share of them.
type objectClass struct {
	class string
	per   int
	poly  bool // a small polygon instead of a point
}

// objectMix is the class mix of generated objects, in parts per thousand:
// manholes and street trees dominate a real inventory, then lamps, bins,
// signs, shops' signboards, buildings and enterprises.
var objectMix = []objectClass{
	{"0101", 70, false}, {"0102", 60, false}, {"0103", 60, false}, {"0104", 40, false}, {"0105", 40, false},
	{"0107", 40, false}, {"0108", 20, false}, {"0114", 20, false}, {"0118", 110, false}, {"0125", 20, false},
	{"0203", 10, false}, {"0209", 40, false}, {"0214", 10, false}, {"0305", 70, false}, {"0307", 50, false},
	{"0310", 5, false}, {"0301", 5, false}, {"0401", 2, false}, {"0402", 150, false}, {"0405", 8, true},
	{"0602", 5, true}, {"0609", 15, false}, {"house", 80, false}, {"house", 20, true}, {"enterprise", 30, false},
}

// Objects is a stream of n synthetic objects spread over the store's
// base grids (proportionally to area), with the class mix above and codes
// that are valid for their class and the district they fall in.
//
// With pointsOnly every object is a point (for files in CSV).
func Objects(ctx context.Context, s *data.Store, n int64, seed uint64, pointsOnly bool) (geo.Stream, error) {
	grids, err := baseGrids(ctx, s)
	if err != nil {
		return nil, err
	}
	if len(grids) == 0 {
		return nil, fmt.Errorf("the store has no grids: build the demo city first")
	}
	g := &objectStream{pointsOnly: pointsOnly, n: n, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), grids: grids, seq: map[string]int{}}
	var total float64
	for _, u := range grids {
		total += planar.Area(u.Geometry)
		g.cum = append(g.cum, total)
	}
	g.total = total
	g.preps = make([]*geo.Prepared, len(grids))
	for _, m := range objectMix {
		g.mixTotal += m.per
	}
	return g, nil
}

type objectStream struct {
	pointsOnly bool
	n, i       int64
	rng        *rand.Rand
	grids      []grid.Unit
	preps      []*geo.Prepared
	cum        []float64
	total      float64
	mixTotal   int
	seq        map[string]int // district+class → last sequence
}

func (g *objectStream) PosKind() geo.PosKind { return geo.PosLine }

func (g *objectStream) Next() (geo.Record, error) {
	if g.i >= g.n {
		return geo.Record{}, io.EOF
	}
	g.i++
	k := sort.SearchFloat64s(g.cum, g.rng.Float64()*g.total)
	if k >= len(g.grids) {
		k = len(g.grids) - 1
	}
	u := g.grids[k]
	if g.preps[k] == nil {
		g.preps[k] = geo.Prepare(u.Geometry)
	}
	b := g.preps[k].Bound
	var p orb.Point
	for try := 0; ; try++ {
		p = orb.Point{b.Min[0] + g.rng.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + g.rng.Float64()*(b.Max[1]-b.Min[1])}
		if g.preps[k].Covers(p) || try > 50 {
			break
		}
	}
	m := g.pickClass()
	for m.poly && g.pointsOnly {
		m = g.pickClass()
	}
	district := u.Code[:6]
	g.seq[district+m.class]++
	seq := g.seq[district+m.class]
	var code string
	attrs := map[string]any{"source": "demo"}
	switch m.class {
	case "house":
		code = fmt.Sprintf("%s%013d", district, seq)
		attrs["floors"] = 1 + g.rng.IntN(32)
	case "enterprise":
		first := fmt.Sprintf("91%s%09d", district, seq)
		code = first + string(grid.USCCCheck(first))
		attrs["name"] = fmt.Sprintf("演示企业%06d", seq)
	default:
		code = fmt.Sprintf("%s%s%06d", district, m.class, seq)
		attrs["status"] = "normal"
	}
	var geom orb.Geometry = p
	if m.poly && !g.pointsOnly {
		// A square of 10–40 m, inside the grid's box, around the point.
		h := (5 + g.rng.Float64()*15) / 111195.0
		w := h / math.Cos(p[1]*math.Pi/180)
		geom = orb.Polygon{{{p[0] - w, p[1] - h}, {p[0] + w, p[1] - h}, {p[0] + w, p[1] + h}, {p[0] - w, p[1] + h}, {p[0] - w, p[1] - h}}}
	}
	return geo.Record{Pos: g.i, Properties: map[string]any{"code": code, "class": m.class, "attrs": attrs}, Geometry: geom}, nil
}

func (g *objectStream) pickClass() objectClass {
	pick := g.rng.IntN(g.mixTotal)
	for _, x := range objectMix {
		if pick < x.per {
			return x
		}
		pick -= x.per
	}
	return objectMix[0]
}

// baseGrids are the store's current base grids, by code.
func baseGrids(ctx context.Context, s *data.Store) ([]grid.Unit, error) {
	units, err := s.CurrentUnits(ctx)
	if err != nil {
		return nil, err
	}
	return gridsIn(units, ""), nil
}

// gridsIn are the base grids among units whose code starts with prefix,
// by code.
func gridsIn(units []grid.Unit, prefix string) []grid.Unit {
	var grids []grid.Unit
	for _, u := range units {
		if u.Layer == grid.BaseLayer && u.Level == grid.Grid && strings.HasPrefix(u.Code, prefix) {
			grids = append(grids, u)
		}
	}
	sort.Slice(grids, func(i, j int) bool { return grids[i].Code < grids[j].Code })
	return grids
}
