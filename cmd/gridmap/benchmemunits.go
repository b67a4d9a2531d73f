package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"

	"gridmap/data"
	"gridmap/grid"
	"gridmap/grid/gridtest"
	"gridmap/tiles"
)

// provinceMemUnits: gridmap bench province memunits — how the in-memory
// unit tiles follow edits (issue 17, docs/benchmarks.md "Following
// edits"), on any database: it only reads (--database gridmap for the
// demo city, gridmap_province for 200,000 grids). It times
// tiles.MemUnits.Apply for one grid renamed, a vertex shared by
// neighbouring grids moved and a community split in two (its eastern
// grids re-coded), with the heap each new snapshot adds to the old one;
// then a run of reshapes applied one after another (the overlay filling
// and the level reindexed when it is full), and what the overlay costs a
// render of random z14 tiles.
func provinceMemUnits(ctx context.Context, dbURL string, rounds, chain int, cpuprofile string) error {
	s, err := data.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	t := time.Now()
	_, stored, err := s.CurrentUnitVersions(ctx, nil)
	if err != nil {
		return err
	}
	units := make([]grid.Unit, 0, len(stored))
	grids := 0
	for _, u := range stored {
		units = append(units, u.Unit)
		if u.Layer == grid.BaseLayer && u.Level == grid.Grid {
			grids++
		}
	}
	stored = nil
	sort.Slice(units, func(i, j int) bool { return units[i].Code < units[j].Code })
	fmt.Printf("%d units (%d grids) loaded in %.1f s\n", len(units), grids, time.Since(t).Seconds())

	base := heapInUse()
	t = time.Now()
	mem := tiles.NewMemUnits(units)
	built := time.Since(t)
	held := heapInUse() - base
	fmt.Printf("NewMemUnits: %.0f ms, %.1f MiB held, %d vertices\n", ms(built), float64(held)/(1<<20), mem.Vertices())

	fmt.Printf("Apply, %d rounds each: p50 / max, the heap the new snapshot adds to the old, and Changed's unit geometries\n", rounds)
	for _, c := range gridtest.TypicalEdits(units) {
		var ds []time.Duration
		for range rounds {
			t := time.Now()
			mem.Apply(c.Upsert, c.Remove)
			ds = append(ds, time.Since(t))
		}
		sortDurations(ds)
		before := heapInUse()
		next := mem.Apply(c.Upsert, c.Remove)
		added := int64(heapInUse()) - int64(before)
		t := time.Now()
		changed := tiles.Changed(mem, next)
		took := time.Since(t)
		fmt.Printf("  %-36s %3d units sent: %8.3f / %8.3f ms, %7.1f KiB added; Changed %.3f ms, %d geometries\n",
			c.Name, len(c.Upsert)+len(c.Remove), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), float64(added)/1024, ms(took), len(changed))
		runtime.KeepAlive(next)
	}

	// A run of edits, each applied to the last snapshot: the overlay fills
	// and the level is indexed afresh when it is full.
	rng := rand.New(rand.NewPCG(17, 1))
	var gs []grid.Unit
	for _, u := range units {
		if u.Layer == grid.BaseLayer && u.Level == grid.Grid {
			gs = append(gs, u)
		}
	}
	cur := mem
	var ds []time.Duration
	var total time.Duration
	for range chain {
		// One grid's corner pulled out (its bound grows: the overlay
		// takes it), its neighbours' junctions there moved.
		i := rng.IntN(len(gs))
		u := gs[i]
		u.Geometry = orb.Clone(u.Geometry).(orb.MultiPolygon)
		r := u.Geometry[0][0]
		c := u.Geometry.Bound().Center()
		for _, k := range []int{0, len(r) - 1} {
			r[k] = orb.Point{r[k][0] + (r[k][0]-c[0])*0.01, r[k][1] + (r[k][1]-c[1])*0.01}
		}
		gs[i] = u
		t := time.Now()
		cur = cur.Apply([]grid.Unit{u}, nil)
		d := time.Since(t)
		ds = append(ds, d)
		total += d
	}
	sortDurations(ds)
	fmt.Printf("%d grids reshaped one Apply after another: mean %.3f ms, p50 %.3f ms, p99 %.3f ms, max %.1f ms (the level indexed afresh)\n",
		chain, ms(total)/float64(chain), ms(ds[len(ds)/2]), ms(pct(ds, 99)), ms(ds[len(ds)-1]))

	// A render reads the overlay: random z14 grid tiles from the last
	// snapshot of the run and from the same units built afresh.
	final := make([]grid.Unit, 0, len(units))
	for _, u := range units {
		if u.Layer != grid.BaseLayer || u.Level != grid.Grid {
			final = append(final, u)
		}
	}
	afresh := tiles.NewMemUnits(append(final, gs...))
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		return err
	}
	l, _ := cat.Tileset("units")
	var keys [][3]int
	for range 20000 {
		c := gs[rng.IntN(len(gs))].Geometry.Bound().Center()
		tl := maptile.At(c, 14)
		keys = append(keys, [3]int{14, int(tl.X), int(tl.Y)})
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, c := range []struct {
		name string
		m    *tiles.MemUnits
	}{{"built afresh", afresh}, {"after the run", cur}, {"built afresh", afresh}, {"after the run", cur}} {
		t := time.Now()
		for _, k := range keys {
			c.m.RenderUnits(l, k[0], k[1], k[2])
		}
		fmt.Printf("  %d random z14 tiles rendered from the units %-13s: %.1f µs a tile\n", len(keys), c.name, float64(time.Since(t).Microseconds())/float64(len(keys)))
	}
	runtime.KeepAlive(units)
	return nil
}
