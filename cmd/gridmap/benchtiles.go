package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"

	"gridmap/geo"
	"gridmap/grid"
	"gridmap/tiles"
)

// benchTiles: gridmap bench tiles — unit tiles from servers side by side
// (scripts/tilebench_memory.sh runs one with --tile-renderer postgis and
// one with memory, both with the cache off): random tiles of a zoom range
// that hold units, fetched by many clients, and single tiles one at a
// time; then the memory the in-memory units take. Only loopback servers
// are meant: the load is bounded by --requests and --timeout.
func benchTiles(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench tiles", flag.ContinueOnError)
	servers := fs.String("servers", "", "name=http://127.0.0.1:port,… the servers to compare (required)")
	zooms := fs.String("zooms", "13-15", "zoom range of the random tiles")
	count := fs.Int("tiles", 2000, "distinct random tiles (among those that hold a unit)")
	requests := fs.Int("requests", 20000, "requests per server over the random tiles")
	clients := fs.Int("clients", 16, "concurrent clients")
	single := fs.String("single", "6/52/27", "tiles fetched one at a time, comma-separated z/x/y, or zN for every tile of zoom N that holds a unit")
	repeat := fs.Int("repeat", 20, "fetches of each single tile")
	timeout := fs.Duration("timeout", 2*time.Minute, "longest a server's random run may take")
	seed := fs.Uint64("seed", 17, "seed of the random tiles")
	asOf := fs.String("as-of", "", "also fetch the single tiles as of this instant (RFC 3339), from every server")
	crs := fs.String("crs", "", "also fetch the single tiles in this coordinate system (gcj02), and as of --as-of in it, from every server")
	urls := fs.String("write-paths", "", "only write the random tiles' paths (/tiles/units/z/x/y.mvt, one a line) to this file, for another load generator (wrk in scripts/tilebench_memory.sh)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *servers == "" && *urls == "" {
		return errors.New("usage: gridmap bench tiles --servers postgis=http://127.0.0.1:18941,memory=http://127.0.0.1:18942 [flags]")
	}
	var lo, hi int
	if _, err := fmt.Sscanf(*zooms, "%d-%d", &lo, &hi); err != nil || lo > hi {
		return fmt.Errorf("--zooms %q: want min-max", *zooms)
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	loadStart := time.Now()
	_, stored, err := s.CurrentUnitVersions(ctx, nil)
	if err != nil {
		return err
	}
	loadTook := time.Since(loadStart)
	units := make([]grid.Unit, len(stored))
	for i, u := range stored {
		units[i] = u.Unit
	}
	stored = nil

	// Random tiles among those a unit meets (every zoom of the range alike).
	var pool []string
	for z := lo; z <= hi; z++ {
		pool = append(pool, tilesWithUnits(units, z)...)
	}
	rng := rand.New(rand.NewPCG(*seed, 0))
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	if len(pool) > *count {
		pool = pool[:*count]
	}
	if *urls != "" {
		var b strings.Builder
		for _, t := range pool {
			b.WriteString("/tiles/units/" + t + ".mvt\n")
		}
		return os.WriteFile(*urls, []byte(b.String()), 0o644)
	}
	var singles []string
	for _, t := range strings.Split(*single, ",") {
		t = strings.TrimSpace(t)
		var z int
		if _, err := fmt.Sscanf(t, "z%d", &z); err == nil {
			singles = append(singles, tilesWithUnits(units, z)...)
		} else if t != "" {
			singles = append(singles, t)
		}
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients, DisableCompression: true}}
	fmt.Printf("random tiles: %d distinct of z%d–%d holding units, %d requests, %d clients, gzip\n", len(pool), lo, hi, *requests, *clients)
	type server struct{ name, base string }
	var srvs []server
	for _, part := range strings.Split(*servers, ",") {
		name, base, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("--servers %q: want name=url", part)
		}
		srvs = append(srvs, server{name, strings.TrimRight(base, "/")})
	}
	for _, sv := range srvs {
		r, err := loadTiles(ctx, client, sv.base, pool, *requests, *clients, *timeout)
		if err != nil {
			return fmt.Errorf("%s: %w", sv.name, err)
		}
		fmt.Printf("  %-8s %8.0f req/s   mean %6.2f ms  p50 %6.2f ms  p99 %6.2f ms  %d requests, %d errors, mean %.0f B\n",
			sv.name, r.rps, r.mean, r.p50, r.p99, r.n, r.errors, r.bytes)
	}
	if len(singles) > 0 {
		fmt.Printf("single tiles, one client, %d fetches each (first fetch not counted):\n", *repeat)
		for _, sv := range srvs {
			var all []float64
			for _, t := range singles {
				r, err := loadTiles(ctx, client, sv.base, []string{t}, *repeat+1, 1, *timeout)
				if err != nil {
					return fmt.Errorf("%s: %w", sv.name, err)
				}
				all = append(all, r.mean)
				if len(singles) <= 4 {
					fmt.Printf("  %-8s %-14s mean %7.2f ms  p50 %7.2f ms  max %7.2f ms  %.0f B\n", sv.name, t, r.mean, r.p50, r.max, r.bytes)
				}
			}
			if len(singles) > 4 {
				sort.Float64s(all)
				var sum float64
				for _, v := range all {
					sum += v
				}
				fmt.Printf("  %-8s %d tiles: mean of means %7.2f ms, slowest tile %7.2f ms\n", sv.name, len(all), sum/float64(len(all)), all[len(all)-1])
			}
		}
	}

	// As of an instant, and in another coordinate system: the first fetch
	// of each server apart (the memory renderer builds its copy of the
	// units then: of the instant, or converted), then the repeats.
	var variants []string
	if *asOf != "" {
		variants = append(variants, "as_of="+url.QueryEscape(*asOf))
	}
	if *crs != "" {
		variants = append(variants, "crs="+url.QueryEscape(*crs))
		if *asOf != "" {
			variants = append(variants, "crs="+url.QueryEscape(*crs)+"&as_of="+url.QueryEscape(*asOf))
		}
	}
	if len(variants) > 0 && len(singles) <= 4 {
		fmt.Printf("single tiles with a query, one client, first fetch apart, then %d fetches each:\n", *repeat)
		for _, v := range variants {
			for _, sv := range srvs {
				for _, t := range singles {
					first, err := loadTilesQuery(ctx, client, sv.base, []string{t}, "?"+v, 1, 1, *timeout)
					if err != nil {
						return fmt.Errorf("%s ?%s: %w", sv.name, v, err)
					}
					r, err := loadTilesQuery(ctx, client, sv.base, []string{t}, "?"+v, *repeat+1, 1, *timeout)
					if err != nil {
						return fmt.Errorf("%s ?%s: %w", sv.name, v, err)
					}
					q, _ := url.QueryUnescape(v)
					fmt.Printf("  %-8s %-14s %s: first %7.2f ms, then mean %7.2f ms  p50 %7.2f ms  max %7.2f ms  %.0f B\n",
						sv.name, t, q, first.mean, r.mean, r.p50, r.max, r.bytes)
				}
			}
		}
	}

	// Memory of the in-memory units: the heap they hold after a GC.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	mem := tiles.NewMemUnits(units)
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	grids := 0
	for _, u := range units {
		if u.Layer == grid.BaseLayer && u.Level == grid.Grid {
			grids++
		}
	}
	held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	fmt.Printf("in-memory units: %d units (%d grids), %d vertices, built in %.0f ms, %.1f MiB held (%.1f MiB per 20,000 grids; the projected copy alone: the loaded WGS-84 units are still held, as the locator's input)\n",
		mem.Len(), grids, mem.Vertices(), took.Seconds()*1000, held/(1<<20), held/(1<<20)*20000/float64(max(grids, 1)))
	fmt.Printf("loading every current unit from PostgreSQL (what a snapshot of a past instant also costs): %.0f ms\n", loadTook.Seconds()*1000)
	// One grid edited: only the units around it are weighed again
	// (gridmap bench province memunits times more edits).
	for _, u := range units {
		if u.Layer != grid.BaseLayer || u.Level != grid.Grid {
			continue
		}
		moved := u
		moved.Name += " (renamed)"
		start := time.Now()
		next := mem.Apply([]grid.Unit{moved}, nil)
		took := time.Since(start)
		fmt.Printf("one grid changed: Apply %.2f ms, %d unit geometries to invalidate tiles by\n", took.Seconds()*1000, len(tiles.Changed(mem, next)))
		if *crs == string(geo.GCJ02) {
			// The GCJ-02 copy: built from the WGS-84 one on the first
			// GCJ-02 tile, then derived by Apply on every change as well.
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			gcj := mem.GCJ02()
			took := time.Since(start)
			runtime.GC()
			runtime.ReadMemStats(&after)
			fmt.Printf("gcj02 copy: %d vertices, built from the WGS-84 copy in %.0f ms, %.1f MiB more held\n",
				gcj.Vertices(), took.Seconds()*1000, (float64(after.HeapAlloc)-float64(before.HeapAlloc))/(1<<20))
			start = time.Now()
			gnext := gcj.Apply(tiles.GCJ02Units([]grid.Unit{moved}), nil)
			took = time.Since(start)
			fmt.Printf("one grid changed: gcj02 Apply %.2f ms, %d unit geometries to invalidate GCJ-02 tiles by\n", took.Seconds()*1000, len(tiles.Changed(gcj, gnext)))
			runtime.KeepAlive(gcj)
		}
		break
	}
	runtime.KeepAlive(mem)
	runtime.KeepAlive(units)
	return nil
}

// tilesWithUnits lists, as z/x/y, the tiles of zoom z that a base unit
// meets (by its bound, with the render buffer).
func tilesWithUnits(units []grid.Unit, z int) []string {
	seen := map[[2]int]bool{}
	var out []string
	const m = float64(tiles.Buffer) / tiles.Extent
	for _, u := range units {
		if u.Layer != grid.BaseLayer {
			continue
		}
		b := u.Geometry.Bound()
		a := maptile.Fraction(orb.Point{b.Min[0], b.Max[1]}, maptile.Zoom(z))
		c := maptile.Fraction(orb.Point{b.Max[0], b.Min[1]}, maptile.Zoom(z))
		for x := int(math.Floor(a[0] - m)); x <= int(math.Floor(c[0]+m)); x++ {
			for y := int(math.Floor(a[1] - m)); y <= int(math.Floor(c[1]+m)); y++ {
				if !seen[[2]int{x, y}] {
					seen[[2]int{x, y}] = true
					out = append(out, fmt.Sprintf("%d/%d/%d", z, x, y))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

type loadResult struct {
	n, errors                int
	rps, mean, p50, p99, max float64
	bytes                    float64
}

// loadTiles fetches /tiles/units/{t}.mvt for the tiles in turn, n requests
// by c clients.
func loadTiles(ctx context.Context, client *http.Client, base string, ts []string, n, c int, timeout time.Duration) (loadResult, error) {
	return loadTilesQuery(ctx, client, base, ts, "", n, c, timeout)
}

// loadTilesQuery is loadTiles with a query string (e.g. "?as_of=…").
func loadTilesQuery(ctx context.Context, client *http.Client, base string, ts []string, query string, n, c int, timeout time.Duration) (loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var next, errs, bytes atomic.Int64
	lat := make([]float64, n)
	var wg sync.WaitGroup
	start := time.Now()
	var firstErr error
	var once sync.Once
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/tiles/units/"+ts[i%len(ts)]+".mvt"+query, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					once.Do(func() { firstErr = err })
					lat[i] = math.NaN()
					continue
				}
				k, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = float64(time.Since(t0).Microseconds()) / 1000
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
					errs.Add(1)
					once.Do(func() { firstErr = fmt.Errorf("%s: %s", req.URL, resp.Status) })
				}
				bytes.Add(k)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	var ok []float64
	for _, v := range lat {
		if !math.IsNaN(v) && v > 0 {
			ok = append(ok, v)
		}
	}
	if len(ok) == 0 {
		return loadResult{}, fmt.Errorf("no answer: %v", firstErr)
	}
	if errs.Load() > 0 {
		fmt.Printf("  (errors: %d, first %v)\n", errs.Load(), firstErr)
	}
	if c == 1 && len(ok) > 1 {
		ok = ok[1:] // the first fetch of a tile warms connections and PostgreSQL's buffers
	}
	sort.Float64s(ok)
	var sum float64
	for _, v := range ok {
		sum += v
	}
	return loadResult{n: len(ok), errors: int(errs.Load()), rps: float64(len(lat)) / el.Seconds(),
		mean: sum / float64(len(ok)), p50: ok[len(ok)/2], p99: ok[len(ok)*99/100], max: ok[len(ok)-1],
		bytes: float64(bytes.Load()) / float64(len(lat))}, nil
}
