package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/geo"
)

// cmdBench: gridmap bench objects|events|memory|edits|export|province — measurements on a database of
// their own, so nothing real is touched.
func cmdBench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "events" {
		return benchEvents(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "memory" {
		return benchMemory(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "edits" {
		return benchEdits(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "export" {
		return benchExport(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "province" {
		return benchProvince(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "objects" {
		return fmt.Errorf("usage: gridmap bench objects|events|memory|edits|export|province [flags]")
	}
	return benchObjects(ctx, args[1:])
}

// benchObjects: gridmap bench objects — the object import next to a raw
// COPY of the same file, then the object queries on what it loaded.
func benchObjects(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench objects", flag.ContinueOnError)
	rows := fs.Int64("rows", 1600000, "objects to load")
	district := fs.String("district", "440306", "the district to build (宝安区: 10 streets, 142 communities)")
	gpc := fs.Int("grids-per-community", 34, "grids per community (34 × 142 ≈ 4,833, Bao'an's count)")
	dbName := fs.String("database", "gridmap_bench", "scratch database created (and dropped) on DATABASE_URL's server")
	keep := fs.Bool("keep", false, "keep the scratch database")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the import to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, drop, err := scratchStore(ctx, *dbName, *keep)
	if err != nil {
		return err
	}
	defer drop()
	defer s.Close()

	d := demo.Defaults
	d.Scale, d.District, d.GridsPerCommunity = "small", *district, *gpc
	res, took, err := benchCity(ctx, s, d)
	if err != nil {
		return err
	}
	fmt.Printf("city: district %s, %d streets, %d communities, %d grids in %.1fs\n", *district,
		res.Counts["street"], res.Counts["community"], res.Counts["grid"], took.Seconds())

	// The same rows for both loads: a CSV file of points.
	dir, err := os.MkdirTemp("", "gridmap-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "objects.csv")
	t := time.Now()
	size, err := writeObjectsCSV(ctx, s, file, *rows)
	if err != nil {
		return err
	}
	fmt.Printf("file: %d rows, %.1f MB CSV written in %.1fs\n", *rows, float64(size)/1e6, time.Since(t).Seconds())

	raw, err := benchRawCopy(ctx, s, file)
	if err != nil {
		return err
	}
	imp, err := benchImport(ctx, s, file, *cpuprofile)
	if err != nil {
		return err
	}
	fmt.Printf("ratio import / raw COPY: %.2f×\n", imp.Seconds()/raw.Seconds())
	return benchQueries(ctx, s, *district)
}

// benchCity builds the demo city o in the scratch store and says how long
// it took.
func benchCity(ctx context.Context, s *data.Store, o demo.Options) (*demo.Result, time.Duration, error) {
	t := time.Now()
	res, err := demo.Build(ctx, s, o)
	if err != nil {
		return nil, 0, err
	}
	if !res.Import.OK() {
		return nil, 0, fmt.Errorf("bench city failed validation")
	}
	return res, time.Since(t), nil
}

// benchRawCopy copies the file into a bare table: the physical limit of a
// load.
func benchRawCopy(ctx context.Context, s *data.Store, file string) (time.Duration, error) {
	if _, err := s.Pool.Exec(ctx, `CREATE TABLE bare (code text, class text, lon float8, lat float8, attrs text)`); err != nil {
		return 0, err
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	c, err := s.Pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	t := time.Now()
	tag, err := c.Conn().PgConn().CopyFrom(ctx, f, `COPY bare FROM STDIN (FORMAT csv, HEADER)`)
	raw := time.Since(t)
	if err != nil {
		return 0, err
	}
	fmt.Printf("raw COPY into a bare table: %d rows in %.2fs (%.0f rows/s)\n", tag.RowsAffected(), raw.Seconds(), float64(tag.RowsAffected())/raw.Seconds())
	return raw, nil
}

// benchImport loads the file through gridmap's import (check, assign,
// merge, counts), under the CPU profiler when cpuprofile names a file.
func benchImport(ctx context.Context, s *data.Store, file, cpuprofile string) (time.Duration, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	stream, err := geo.NewStream(f, geo.FormatCSV)
	if err != nil {
		return 0, err
	}
	if cpuprofile != "" {
		pf, err := os.Create(cpuprofile)
		if err != nil {
			return 0, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return 0, err
		}
	}
	t := time.Now()
	rep, err := s.ImportObjects(ctx, stream, data.ObjectImportOptions{})
	imp := time.Since(t)
	pprof.StopCPUProfile()
	if err != nil {
		return 0, err
	}
	fmt.Printf("gridmap import objects:     %d rows in %.2fs (%.0f rows/s): %d inserted, %d unassigned, %d rejected\n",
		rep.Rows, imp.Seconds(), float64(rep.Rows)/imp.Seconds(), rep.Inserted, rep.Unassigned, rep.Rejected)
	for i, e := range rep.Errors {
		if i == 5 {
			break
		}
		fmt.Printf("  rejected %s %d %s: %s\n", e.Kind, e.Pos, e.Code, e.Reason)
	}
	return imp, nil
}

func writeObjectsCSV(ctx context.Context, s *data.Store, name string, n int64) (int64, error) {
	stream, err := demo.Objects(ctx, s, n, 42, true)
	if err != nil {
		return 0, err
	}
	f, err := os.Create(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := csv.NewWriter(bw)
	_ = w.Write([]string{"code", "class", "lon", "lat", "attrs"})
	for {
		rec, err := stream.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		p := rec.Geometry.(orb.Point)
		attrs, _ := json.Marshal(rec.Properties["attrs"])
		_ = w.Write([]string{rec.Properties["code"].(string), rec.Properties["class"].(string),
			fmt.Sprintf("%.7f", p[0]), fmt.Sprintf("%.7f", p[1]), string(attrs)})
	}
	w.Flush()
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), w.Error()
}

// benchQueries times the object queries on the loaded data: each 200
// times at random places inside the district's grids.
func benchQueries(ctx context.Context, s *data.Store, district string) error {
	pts, err := benchPoints(ctx, s)
	if err != nil {
		return err
	}
	type query struct {
		name string
		run  func(p orb.Point) (int, error)
	}
	list := func(f data.ObjectFilter) (int, error) {
		page, err := s.ListObjects(ctx, f)
		if err != nil {
			return 0, err
		}
		return len(page.Objects), nil
	}
	queries := []query{
		{"bbox of the z14 tile around the point (limit 10000)", func(p orb.Point) (int, error) {
			b := maptile.At(p, 14).Bound()
			return list(data.ObjectFilter{BBox: &[4]float64{b.Min[0], b.Min[1], b.Max[0], b.Max[1]}, Limit: 10000})
		}},
		{"nearest k=10", func(p orb.Point) (int, error) {
			return list(data.ObjectFilter{Nearest: &[2]float64{p[0], p[1]}, K: 10})
		}},
		{"radius 500 m (limit 10000)", func(p orb.Point) (int, error) {
			return list(data.ObjectFilter{Near: &[2]float64{p[0], p[1]}, Radius: 500, Limit: 10000})
		}},
		{"stats by class, district " + district, func(orb.Point) (int, error) {
			st, err := s.Stats(ctx, district)
			if err != nil {
				return 0, err
			}
			return len(st.Children), nil
		}},
	}
	fmt.Println("query latency over 200 runs (p50 / p95 / max), rows per answer (mean):")
	for _, q := range queries {
		ds, total, err := timeRuns(pts, q.run)
		if err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		fmt.Printf("  %-52s %7.2f / %7.2f / %7.2f ms   %8.1f rows\n", q.name,
			ms(ds[len(ds)/2]), ms(ds[len(ds)*95/100]), ms(ds[len(ds)-1]), float64(total)/float64(len(ds)))
	}
	return nil
}

// benchPoints are 200 points inside grids of the store, the same for
// every run on the same city.
func benchPoints(ctx context.Context, s *data.Store) ([]orb.Point, error) {
	var pts []orb.Point
	rows, err := s.Pool.Query(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units
		WHERE valid_to IS NULL AND level = 'grid' ORDER BY md5(code) LIMIT 200) x`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p orb.Point
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			return nil, err
		}
		pts = append(pts, p)
	}
	return pts, rows.Err()
}

// timeRuns runs run at each point and returns the latencies, sorted, and
// the rows answered in all.
func timeRuns(pts []orb.Point, run func(orb.Point) (int, error)) ([]time.Duration, int, error) {
	var ds []time.Duration
	total := 0
	for _, p := range pts {
		t := time.Now()
		n, err := run(p)
		if err != nil {
			return nil, 0, err
		}
		ds = append(ds, time.Since(t))
		total += n
	}
	sortDurations(ds)
	return ds, total, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// scratchStore creates (dropping any old one) a database of the given name
// on DATABASE_URL's server and opens it; drop removes it unless keep.
func scratchStore(ctx context.Context, name string, keep bool) (*data.Store, func(), error) {
	u, err := url.Parse(databaseURL())
	if err != nil {
		return nil, nil, err
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return nil, nil, err
	}
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		conn.Close(ctx)
		return nil, nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		conn.Close(ctx)
		return nil, nil, err
	}
	drop := func() {
		if !keep {
			conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		}
		conn.Close(context.Background())
	}
	u.Path = "/" + name
	s, err := data.Open(ctx, u.String())
	if err != nil {
		drop()
		return nil, nil, err
	}
	return s, drop, nil
}
