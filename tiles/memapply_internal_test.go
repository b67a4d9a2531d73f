package tiles

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/clip"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/grid"
	"gridmap/grid/gridtest"
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

// BenchmarkMemUnitsApply times Apply on the full demo city (19,700 grids)
// for the edits a boundary edit sends (docs/benchmarks.md, "Following
// edits"): one grid renamed, a vertex shared by neighbouring grids moved,
// and a community split in two with its eastern grids re-coded. B/op is
// the memory the new snapshot does not share with the old.
func BenchmarkMemUnitsApply(b *testing.B) {
	units := loadUnits(b, pgtest.NewFullDemo(b))
	mem := NewMemUnits(units)
	for _, c := range gridtest.TypicalEdits(units) {
		// "one grid renamed" → "one-grid-renamed" (no spaces in benchmark names)
		c.Name = strings.ReplaceAll(c.Name, " ", "-")
		b.Run(c.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mem.Apply(c.Upsert, c.Remove)
			}
			b.ReportMetric(float64(len(c.Upsert)+len(c.Remove)), "units")
		})
	}
}

// sameMemUnits reports the first difference between two snapshots: the
// levels, each level's units in order (code, name, parent, bound, points
// and weights), and what the index finds for each box of probes.
func sameMemUnits(a, b *MemUnits, probes []orb.Bound) error {
	if len(a.levels) != len(b.levels) {
		return fmt.Errorf("%d levels vs %d", len(a.levels), len(b.levels))
	}
	if a.Len() != b.Len() || a.Vertices() != b.Vertices() {
		return fmt.Errorf("%d units, %d vertices vs %d, %d", a.Len(), a.Vertices(), b.Len(), b.Vertices())
	}
	for lv, la := range a.levels {
		lb := b.levels[lv]
		if lb == nil {
			return fmt.Errorf("level %s missing", lv)
		}
		if len(la.units) != len(lb.units) {
			return fmt.Errorf("%s: %d units vs %d", lv, len(la.units), len(lb.units))
		}
		for i, u := range la.units {
			v := lb.units[i]
			if u.code != v.code || u.name != v.name || u.parent != v.parent || u.level != v.level || u.id != v.id || u.bound != v.bound {
				return fmt.Errorf("%s #%d: %s %q vs %s %q", lv, i, u.code, u.name, v.code, v.name)
			}
			if len(u.polys) != len(v.polys) {
				return fmt.Errorf("%s: %s has %d polygons vs %d", lv, u.code, len(u.polys), len(v.polys))
			}
			for pi, p := range u.polys {
				if len(p) != len(v.polys[pi]) {
					return fmt.Errorf("%s: %s polygon %d has %d rings vs %d", lv, u.code, pi, len(p), len(v.polys[pi]))
				}
				for ri, r := range p {
					s := v.polys[pi][ri]
					if r.bound != s.bound || len(r.pts) != len(s.pts) || len(r.w) != len(s.pts) || len(s.w) != len(s.pts) {
						return fmt.Errorf("%s: %s ring %d/%d: %d points, %d weights vs %d, %d", lv, u.code, pi, ri, len(r.pts), len(r.w), len(s.pts), len(s.w))
					}
					for k := range r.pts {
						if r.pts[k] != s.pts[k] || r.w[k] != s.w[k] {
							return fmt.Errorf("%s: %s ring %d/%d vertex %d: %v weight %g vs %v weight %g", lv, u.code, pi, ri, k, r.pts[k], r.w[k], s.pts[k], s.w[k])
						}
					}
				}
			}
		}
		for _, box := range probes {
			if fa, fb := found(la, box), found(lb, box); fmt.Sprint(fa) != fmt.Sprint(fb) {
				return fmt.Errorf("%s: the index finds %v vs %v in %v", lv, fa, fb, box)
			}
		}
	}
	return nil
}

// found is what l's index finds in box, sorted, checked against a scan.
func found(l *memLevel, box orb.Bound) []int32 {
	var out []int32
	l.tree.Search(box, func(i int32) bool { out = append(out, i); return true })
	slices.Sort(out)
	var scan []int32
	for i, u := range l.units {
		if len(u.polys) > 0 && u.bound.Intersects(box) {
			scan = append(scan, int32(i))
		}
	}
	if !slices.Equal(out, scan) {
		return append([]int32{-1}, out...) // never equal to the other side's
	}
	return out
}

// everyLevelEverywhere draws every level at every zoom.
func everyLevelEverywhere(t *testing.T) *Tileset {
	t.Helper()
	all := [2]int{0, MaxZoom}
	cat, err := NewCatalogue(Zooms{District: all, Street: all, Community: all, Grid: all})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := cat.Tileset("units")
	return l
}

// Apply follows random sequences of edits on the full demo city — shared
// vertices moved, grids and communities split, neighbours merged, units
// removed and added, renamed (alone, and beside a unit added on its
// vertices), several at once — and gives after each
// exactly what NewMemUnits gives on the same units: every level's units,
// weights and index, and byte for byte the tiles over the edits and over
// random places; Changed lists the same units as a walk over both
// levels; and the snapshot applied to is left as it was. Run with the
// default overlay and with a tiny one (the level reindexed every few
// edits), so both the overlay and its rebuild are exercised.
func TestMemUnitsApplyRandomEdits(t *testing.T) {
	t.Parallel()
	all := loadUnits(t, pgtest.NewFullDemo(t))
	tl := everyLevelEverywhere(t)
	for _, c := range []struct {
		name  string
		limit func(int) int
		steps int
	}{{"default overlay", overlayMax, 80}, {"tiny overlay", func(int) int { return 5 }, 40}} {
		t.Run(c.name, func(t *testing.T) {
			defer func(f func(int) int) { overlayMax = f }(overlayMax)
			overlayMax = c.limit
			randomEdits(t, tl, all, c.steps)
		})
	}
}

func randomEdits(t *testing.T, tl *Tileset, all []grid.Unit, steps int) {
	rng := rand.New(rand.NewPCG(17, uint64(steps)))
	cur := map[string]grid.Unit{}
	for _, u := range all {
		if u.Layer == grid.BaseLayer {
			cur[u.Code] = u
		}
	}
	list := func() []grid.Unit {
		out := make([]grid.Unit, 0, len(cur))
		for _, u := range cur {
			out = append(out, u)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
		return out
	}
	pick := func(level grid.Level) grid.Unit {
		us := list()
		for {
			if u := us[rng.IntN(len(us))]; level == "" || u.Level == level {
				return u
			}
		}
	}
	levels := []grid.Level{grid.Grid, grid.Grid, grid.Grid, grid.Community, grid.Street, grid.District}
	fresh := 0
	newCode := func(parent string) string {
		fresh++
		return fmt.Sprintf("%s9%02d", parent, fresh%100) + fmt.Sprint(fresh/100)
	}
	var retired []grid.Unit
	mem, before := NewMemUnits(list()), NewMemUnits(list())
	kinds := map[string]int{}
	for step := 0; step < steps; step++ {
		var upsert []grid.Unit
		var remove []grid.UnitKey
		var near []orb.Bound // where to look: what the edit touched
		up := func(u grid.Unit) {
			cur[u.Code] = u
			upsert = append(upsert, u)
			near = append(near, u.Geometry.Bound())
		}
		rm := func(code string) {
			near = append(near, cur[code].Geometry.Bound())
			delete(cur, code)
			remove = append(remove, grid.UnitKey{Layer: grid.BaseLayer, Code: code})
		}
		for n := 1 + rng.IntN(3)*rng.IntN(2); n > 0; n-- { // mostly one edit, sometimes two or three at once
			kind := []string{"reshape", "reshape", "split grid", "split community", "merge", "remove", "add", "rename", "rename beside"}[rng.IntN(9)]
			kinds[kind]++
			switch kind {
			case "reshape":
				u := pick(levels[rng.IntN(len(levels))])
				d := orb.Point{(rng.Float64() - 0.5) * 2e-4, (rng.Float64() - 0.5) * 2e-4}
				for _, v := range gridtest.MoveSharedVertex(list(), u.Code, rng.IntN(len(u.Geometry[0][0])), d) {
					up(v)
				}
			case "split grid":
				u := pick(grid.Grid)
				b := u.Geometry.Bound()
				mid := (b.Min[0] + b.Max[0]) / 2
				w, e := u, u
				w.Geometry = clip.MultiPolygon(orb.Bound{Min: b.Min, Max: orb.Point{mid, b.Max[1]}}, orb.Clone(u.Geometry).(orb.MultiPolygon))
				e.Geometry = clip.MultiPolygon(orb.Bound{Min: orb.Point{mid, b.Min[1]}, Max: b.Max}, orb.Clone(u.Geometry).(orb.MultiPolygon))
				if len(w.Geometry) == 0 || len(e.Geometry) == 0 {
					continue
				}
				e.Code = newCode(u.ParentCode)
				up(w)
				up(e)
			case "split community":
				u := pick(grid.Community)
				ups, rems := gridtest.SplitCommunity(list(), u.Code, newCode(u.ParentCode))
				for _, k := range rems {
					rm(k.Code)
				}
				for _, v := range ups {
					if len(v.Geometry) > 0 {
						up(v)
					}
				}
			case "merge":
				u := pick(levels[rng.IntN(len(levels))])
				at := u.Geometry[0][0][0]
				for _, v := range list() {
					if v.Code == u.Code || v.Level != u.Level || !slices.Contains(v.Geometry[0][0], at) {
						continue
					}
					m := cloneGeom(u)
					m.Geometry = append(m.Geometry, orb.Clone(v.Geometry).(orb.MultiPolygon)...)
					rm(v.Code)
					up(m)
					break
				}
			case "remove":
				u := pick("")
				retired = append(retired, u)
				rm(u.Code)
			case "add":
				if len(retired) > 0 && rng.IntN(2) == 0 {
					u := retired[len(retired)-1]
					retired = retired[:len(retired)-1]
					if _, held := cur[u.Code]; !held {
						up(u)
					}
					continue
				}
				// a triangle on three vertices of a unit: new junctions there
				u := pick(levels[rng.IntN(len(levels))])
				r := u.Geometry[0][0]
				if len(r) < 4 {
					continue
				}
				v := u
				v.Code, v.Name = newCode(u.ParentCode), "added"
				v.Geometry = orb.MultiPolygon{{{r[0], r[1], r[2], r[0]}}}
				up(v)
			case "rename":
				u := pick("")
				u.Name += " (renamed)"
				up(u)
			case "rename beside":
				// renamed, its points the same, while a unit added on
				// its vertices moves its junctions
				u := pick(levels[rng.IntN(len(levels))])
				r := u.Geometry[0][0]
				if len(r) < 4 {
					continue
				}
				v := u
				v.Code, v.Name = newCode(u.ParentCode), "added"
				v.Geometry = orb.MultiPolygon{{{r[1], r[2], r[3], r[1]}}}
				u.Name += " (renamed)"
				up(u)
				up(v)
			}
		}
		// As the server sends them: a unit written twice counts once, as
		// it is now; one written and then removed is a removal.
		var ups []grid.Unit
		sent := map[string]bool{}
		for i := len(upsert) - 1; i >= 0; i-- {
			if u, ok := cur[upsert[i].Code]; ok && !sent[u.Code] {
				sent[u.Code] = true
				ups = append(ups, u)
			}
		}
		var rems []grid.UnitKey
		for _, k := range remove {
			if _, ok := cur[k.Code]; !ok {
				rems = append(rems, k)
			}
		}
		next := mem.Apply(ups, rems)
		want := NewMemUnits(list())
		probes := slices.Clone(near)
		for range 10 {
			x, y := 113.8+rng.Float64()*0.8, 22.45+rng.Float64()*0.4
			d := rng.Float64() * 0.05
			probes = append(probes, orb.Bound{Min: orb.Point{x, y}, Max: orb.Point{x + d, y + d}})
		}
		for i, b := range probes {
			probes[i] = orb.Bound{Min: mercator(orb.Point{b.Min[0], b.Max[1]}), Max: mercator(orb.Point{b.Max[0], b.Min[1]})}
		}
		if err := sameMemUnits(next, want, probes); err != nil {
			t.Fatalf("step %d (%d upserted, %d removed): applied and built differ: %v", step, len(ups), len(rems), err)
		}
		if err := sameMemUnits(mem, before, probes); err != nil { // built before this step's edits
			t.Fatalf("step %d: the snapshot applied to changed: %v", step, err)
		}
		for i, p := range probes {
			zs := []int{9, 12, 14, 16}
			if i == 0 && step%10 == 0 {
				zs = append(zs, 6) // the whole city, every grid: 25 ms a render
			}
			for _, z := range zs {
				n := float64(uint64(1) << uint(z))
				c := p.Center()
				x, y := int(c[0]*n), int(c[1]*n)
				if a, b := next.RenderUnits(tl, z, x, y), want.RenderUnits(tl, z, x, y); string(a) != string(b) {
					t.Fatalf("step %d: tile %d/%d/%d: applied and built differ (%d and %d bytes)", step, z, x, y, len(a), len(b))
				}
			}
		}
		if a, b := changedCodes(Changed(mem, next)), changedCodes(Changed(walked(mem), walked(next))); a != b {
			t.Fatalf("step %d: Changed lists %s, a walk over both levels %s", step, a, b)
		}
		mem, before = next, want
	}
	t.Logf("%d steps: %v; %d units, %d vertices", steps, kinds, mem.Len(), mem.Vertices())
}

// walked is m with every level's history forgotten: Changed then walks
// both levels whole.
func walked(m *MemUnits) *MemUnits {
	out := &MemUnits{levels: map[grid.Level]*memLevel{}, vertices: m.vertices}
	for lv, l := range m.levels {
		c := *l
		c.from, c.touched = 0, nil
		out.levels[lv] = &c
	}
	return out
}

func changedCodes(cs []UnitChange) string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprint(c.Level, c.Geom.Bound()))
	}
	slices.Sort(out)
	return fmt.Sprint(len(out), out)
}

// BenchmarkMemUnitsOverlayRender renders random z14 tiles of the full demo
// city after grids reshaped one Apply after another (a corner pulled out:
// the overlay takes the grid), from the snapshot the run ends with (its
// index an overlay over the old tree), from the same units indexed
// afresh, and from the same units built afresh: what the overlay costs a
// render, apart from where the units lie in memory. OVERLAY_RUN sets the
// number of grids reshaped (default 270: the overlay nearly full).
func BenchmarkMemUnitsOverlayRender(b *testing.B) {
	overlayRun := 270
	if v := os.Getenv("OVERLAY_RUN"); v != "" {
		overlayRun, _ = strconv.Atoi(v)
	}
	units := loadUnits(b, pgtest.NewFullDemo(b))
	rng := rand.New(rand.NewPCG(17, 1))
	var gs []grid.Unit
	var rest []grid.Unit
	for _, u := range units {
		if u.Layer == grid.BaseLayer && u.Level == grid.Grid {
			gs = append(gs, u)
		} else {
			rest = append(rest, u)
		}
	}
	run := NewMemUnits(units)
	for range overlayRun {
		i := rng.IntN(len(gs))
		u := cloneGeom(gs[i])
		r := u.Geometry[0][0]
		c := u.Geometry.Bound().Center()
		for _, k := range []int{0, len(r) - 1} {
			r[k] = orb.Point{r[k][0] + (r[k][0]-c[0])*0.01, r[k][1] + (r[k][1]-c[1])*0.01}
		}
		gs[i] = u
		run = run.Apply([]grid.Unit{u}, nil)
	}
	reindexed := &MemUnits{levels: map[grid.Level]*memLevel{}}
	for lv, l := range run.levels {
		c := *l
		c.tree = newUnitIndex(l.units)
		reindexed.levels[lv] = &c
	}
	afresh := NewMemUnits(append(rest, gs...))
	cat, err := NewCatalogue(DefaultZooms)
	if err != nil {
		b.Fatal(err)
	}
	l, _ := cat.Tileset("units")
	var keys [][2]int
	for range 4096 {
		c := mercator(gs[rng.IntN(len(gs))].Geometry.Bound().Center())
		keys = append(keys, [2]int{int(c[0] * (1 << 14)), int(c[1] * (1 << 14))})
	}
	b.Logf("overlay after the run: %d units, %d struck out", len(run.levels[grid.Grid].tree.over), len(run.levels[grid.Grid].tree.dead))
	for _, c := range []struct {
		name string
		m    *MemUnits
	}{{"afresh", afresh}, {"overlay", run}, {"reindexed", reindexed}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				k := keys[i%len(keys)]
				c.m.RenderUnits(l, 14, k[0], k[1])
			}
		})
	}
}
