package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/grid"
)

// benchProvince: gridmap bench province build|locator|objects|memunits — the province-scale
// units case of issue 15 (200,000 grids: the demo city at density 10) in a
// database of its own. build (re)creates the database and times the demo's
// generation and import; locator, run as a process of its own so its peak
// RSS is the locator's alone, times the server's full locator build (load
// every current unit, then grid.NewLocator), the memory it keeps and the
// in-memory locate rate; objects loads demo objects into it and measures
// what they cost per row and what statistics cost over 200,000 grids;
// memunits (read only: any database) times how the in-memory unit tiles
// follow edits (provinceMemUnits). scripts/provincebench.sh runs build and locator, the locate benchmarks and
// the tile latencies on that database.
func benchProvince(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "build" && args[0] != "locator" && args[0] != "objects" && args[0] != "memunits") {
		return fmt.Errorf("usage: gridmap bench province build|locator|objects|memunits [flags]")
	}
	fs := flag.NewFlagSet("bench province "+args[0], flag.ContinueOnError)
	dbName := fs.String("database", "gridmap_province", "the database on DATABASE_URL's server (build drops and creates it; kept afterwards)")
	density := fs.Int("density", 10, "build: grids per community × density (10: 197,000 grids)")
	rounds := fs.Int("rounds", 5, "locator: full builds timed")
	duration := fs.Duration("duration", 10*time.Second, "locator: how long the locate rate is measured")
	cpuprofile := fs.String("cpuprofile", "", "locator: write a CPU profile of the builds to this file; memunits: of the renders")
	rows := fs.Int64("rows", 2_000_000, "objects: demo objects to load (into an empty objects table)")
	applies := fs.Int("applies", 50, "memunits: Apply timed this many times per edit")
	chain := fs.Int("chain", 3000, "memunits: grids renamed one Apply after another")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *dbName == "gridmap" && args[0] != "memunits" { // memunits only reads
		return fmt.Errorf("--database gridmap: pick a database of its own, build drops it")
	}
	if args[0] == "build" {
		return provinceBuild(ctx, *dbName, *density)
	}
	u, err := url.Parse(databaseURL())
	if err != nil {
		return err
	}
	u.Path = "/" + *dbName
	if args[0] == "memunits" {
		return provinceMemUnits(ctx, u.String(), *applies, *chain, *cpuprofile)
	}
	if args[0] == "objects" {
		return provinceObjects(ctx, u.String(), *rows)
	}
	return provinceLocator(ctx, u.String(), *rounds, *duration, *cpuprofile)
}

// provinceObjects loads demo objects into the dense city and measures the
// table per row and the statistics, whose cost grows with the grids under
// a unit (object_counts has a row per grid and class).
func provinceObjects(ctx context.Context, dbURL string, rows int64) error {
	s, err := data.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	have, err := s.CountObjects(ctx)
	if err != nil {
		return err
	}
	if have > 0 {
		return fmt.Errorf("the database already holds %d objects: rebuild it with gridmap bench province build", have)
	}
	stream, err := demo.Objects(ctx, s, rows, 42, false)
	if err != nil {
		return err
	}
	// Skip, not abort: the demo generator places a few objects of the
	// dense city's thinnest grids across a district line (their codes then
	// name the wrong district); they are counted below.
	t := time.Now()
	rep, err := s.ImportObjects(ctx, stream, data.ObjectImportOptions{OnError: data.OnErrorSkip})
	if err != nil {
		return err
	}
	took := time.Since(t)
	fmt.Printf("import: %d rows in %.1fs (%.0f rows/s): %d inserted, %d unassigned, %d rejected\n",
		rep.Rows, took.Seconds(), float64(rep.Rows)/took.Seconds(), rep.Inserted, rep.Unassigned, rep.Rejected)
	if _, err := s.Pool.Exec(ctx, `VACUUM ANALYZE objects, object_counts`); err != nil {
		return err
	}
	var n, counts, heap, idx, countsBytes int64
	if err := s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM objects), (SELECT count(*) FROM object_counts),
		pg_table_size('objects'), pg_indexes_size('objects'), pg_total_relation_size('object_counts')`).Scan(&n, &counts, &heap, &idx, &countsBytes); err != nil {
		return err
	}
	fmt.Printf("objects: %d rows, table %.0f MB + indexes %.0f MB = %.0f bytes per object; object_counts %d rows, %.1f MB\n",
		n, float64(heap)/1e6, float64(idx)/1e6, float64(heap+idx)/float64(n), counts, float64(countsBytes)/1e6)
	fmt.Println("statistics (data.Stats), 20 runs each: p50 / max")
	// Bao'an (the demo's biggest district), its first street and that
	// street's first community.
	var street, community string
	if err := s.Pool.QueryRow(ctx, `SELECT s.code, (SELECT min(code) FROM units WHERE valid_to IS NULL AND parent_code = s.code)
		FROM units s WHERE s.valid_to IS NULL AND s.parent_code = '440306' ORDER BY s.code LIMIT 1`).Scan(&street, &community); err != nil {
		return err
	}
	for _, c := range []struct{ name, code string }{
		{"district 440306 (its streets)", "440306"},
		{"street " + street + " (its communities)", street},
		{"community " + community + " (its grids)", community},
	} {
		var ds []time.Duration
		var kids int
		for range 20 {
			t := time.Now()
			st, err := s.Stats(ctx, c.code)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			ds = append(ds, time.Since(t))
			kids = len(st.Children)
		}
		sortDurations(ds)
		fmt.Printf("  %-36s %7.2f / %7.2f ms  (%d children)\n", c.name, ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), kids)
	}
	return nil
}

func provinceBuild(ctx context.Context, dbName string, density int) error {
	s, drop, err := scratchStore(ctx, dbName, true)
	if err != nil {
		return err
	}
	defer drop()
	defer s.Close()
	d := demo.Defaults
	d.Density = density
	start := time.Now()
	d.Progress = func(format string, args ...any) {
		fmt.Printf("build: %6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	res, err := demo.Build(ctx, s, d)
	if err != nil {
		return err
	}
	if !res.Import.OK() {
		printReport(os.Stdout, res.Import)
		return fmt.Errorf("the dense city failed validation")
	}
	var units, vertices int64
	var size string
	if err := s.Pool.QueryRow(ctx, `SELECT count(*), sum(ST_NPoints(geom)), pg_size_pretty(pg_total_relation_size('units'))
		FROM units WHERE valid_to IS NULL`).Scan(&units, &vertices, &size); err != nil {
		return err
	}
	fmt.Printf("city: %d districts, %d streets, %d communities, %d grids (%d units, %d vertices; table units %s)\n",
		res.Counts[grid.District], res.Counts[grid.Street], res.Counts[grid.Community], res.Counts[grid.Grid], units, vertices, size)
	fmt.Printf("generate in PostGIS %.1fs, validate (all rules) + load %.1fs, total %.1fs\n",
		res.GenerateSeconds, res.Import.Seconds, time.Since(start).Seconds())
	return nil
}

// provinceLocator measures what rebuildLocator (api/server.go) does on
// start and after a change it cannot apply incrementally.
func provinceLocator(ctx context.Context, dbURL string, rounds int, duration time.Duration, cpuprofile string) error {
	s, err := data.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	base := heapInUse()
	rss0, _ := procMemory()
	var loc *grid.Locator
	var ids map[int64]grid.UnitKey
	fmt.Printf("%-6s %10s %10s %10s %10s %14s %14s\n", "round", "load", "index", "total", "CPU", "heap kept", "allocated")
	for r := 1; r <= rounds; r++ {
		loc, ids = nil, nil
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		cpu0 := cpuTime()
		t := time.Now()
		vs, units, err := s.CurrentUnitVersions(ctx, nil)
		if err != nil {
			return err
		}
		load := time.Since(t)
		t2 := time.Now()
		ids = make(map[int64]grid.UnitKey, len(vs))
		plain := make([]grid.Unit, len(units))
		for i, u := range units {
			ids[u.ID] = grid.UnitKey{Layer: u.Layer, Code: u.Code}
			plain[i] = u.Unit
		}
		loc = grid.NewLocator(plain)
		index := time.Since(t2)
		total := time.Since(t)
		cpu := cpuTime() - cpu0
		units, plain = nil, nil
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		fmt.Printf("%-6d %8.3f s %8.3f s %8.3f s %8.3f s %11.1f MB %11.1f MB   (%d units)\n", r, load.Seconds(), index.Seconds(), total.Seconds(),
			cpu.Seconds(), float64(heapInUse()-base)/1e6, float64(after.TotalAlloc-before.TotalAlloc)/1e6, loc.Len())
	}
	pprof.StopCPUProfile()
	rss, hwm := procMemory()
	fmt.Printf("process RSS: %.0f MB before the builds, %.0f MB after, peak %.0f MB (GOGC %s)\n",
		float64(rss0)/1e6, float64(rss)/1e6, float64(hwm)/1e6, gogc())

	pts, err := provincePoints(ctx, s, 65536)
	if err != nil {
		return err
	}
	inside := 0
	for _, p := range pts {
		if loc.Locate(p[0], p[1]).Grid != nil {
			inside++
		}
	}
	workers := runtime.GOMAXPROCS(0)
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(duration)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := w * 7919
			for time.Now().Before(stop) {
				for range 1024 {
					p := pts[i%len(pts)]
					_ = loc.Locate(p[0], p[1])
					i++
				}
				n.Add(1024)
			}
		}()
	}
	t, cpu0 := time.Now(), cpuTime()
	wg.Wait()
	el, cpu := time.Since(t), cpuTime()-cpu0
	// On the shared box the wall clock measures the other sessions too:
	// the CPU time this process got says what a point costs.
	fmt.Printf("locate in memory: %d goroutines, %d points (%.0f%% inside a grid): %.0f points/s wall; %.0f ns CPU per point (%.0f points per CPU second)\n",
		workers, len(pts), 100*float64(inside)/float64(len(pts)), float64(n.Load())/el.Seconds(),
		float64(cpu.Nanoseconds())/float64(n.Load()), float64(n.Load())/cpu.Seconds())
	runtime.KeepAlive(ids)
	return nil
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// procMemory is this process's resident set and its peak (VmRSS, VmHWM).
func procMemory() (rss, hwm int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmRSS" {
			rss = kb * 1024
		} else {
			hwm = kb * 1024
		}
	}
	return rss, hwm
}

func gogc() string {
	if v := os.Getenv("GOGC"); v != "" {
		return v
	}
	return "100"
}

// provincePoints draws n points over the units' extent with a fixed seed,
// as pgtest.RandomPoints does for the benchmarks.
func provincePoints(ctx context.Context, s *data.Store, n int) ([][2]float64, error) {
	var minX, minY, maxX, maxY *float64
	if err := s.Pool.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
		FROM (SELECT ST_Extent(geom) e FROM units WHERE valid_to IS NULL) x`).Scan(&minX, &minY, &maxX, &maxY); err != nil {
		return nil, err
	}
	if minX == nil {
		return nil, fmt.Errorf("no units: run gridmap bench province build first")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pts := make([][2]float64, n)
	for i := range pts {
		pts[i] = [2]float64{*minX + rng.Float64()*(*maxX-*minX), *minY + rng.Float64()*(*maxY-*minY)}
	}
	return pts, nil
}
