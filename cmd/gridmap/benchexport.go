package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"gridmap/data"
	"gridmap/data/demo"
)

// benchExport: gridmap bench export — GET /v1/exports/objects of a
// scratch database holding --rows demo objects, in each format, from a
// gridmap serve started afresh for each case: rows per second, bytes, and
// the server process's resident memory before and at its peak (VmHWM).
// Each format runs twice, over one street's objects and over all of
// them, so that memory independent of the number of rows shows as two
// equal peaks.
func benchExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench export", flag.ContinueOnError)
	rows := fs.Int64("rows", 1600000, "demo objects to load (the realistic mix: points, lines, polygons)")
	district := fs.String("district", "440306", "the district to build (宝安区)")
	gpc := fs.Int("grids-per-community", 34, "grids per community")
	formats := fs.String("formats", "geojson,csv,gpkg", "export formats to measure, comma-separated")
	server := fs.String("server", "", "the gridmap binary to measure (default: this one)")
	dbName := fs.String("database", "gridmap_bench_export", "scratch database created (and dropped) on DATABASE_URL's server")
	keep := fs.Bool("keep", false, "keep the scratch database")
	reuse := fs.Bool("reuse", false, "measure the kept scratch database as it is (after a run with --keep)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bin := *server
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	var s *data.Store
	drop := func() {}
	var err error
	if *reuse {
		s, err = openStoreAt(ctx, *dbName)
	} else {
		s, drop, err = scratchStore(ctx, *dbName, *keep)
	}
	if err != nil {
		return err
	}
	defer drop()
	if !*reuse {
		d := demo.Defaults
		d.Scale, d.District, d.GridsPerCommunity = "small", *district, *gpc
		res, took, err := benchCity(ctx, s, d)
		if err != nil {
			s.Close()
			return err
		}
		fmt.Printf("city: district %s, %d streets, %d communities, %d grids in %.1fs\n", *district,
			res.Counts["street"], res.Counts["community"], res.Counts["grid"], took.Seconds())
		t := time.Now()
		stream, err := demo.Objects(ctx, s, *rows, 42, false)
		if err != nil {
			s.Close()
			return err
		}
		rep, err := s.ImportObjects(ctx, stream, data.ObjectImportOptions{})
		if err != nil {
			s.Close()
			return err
		}
		fmt.Printf("objects: %d imported in %.1fs\n", rep.Inserted, time.Since(t).Seconds())
	}
	// The smaller case: the objects of the district's first street.
	var street string
	var inStreet, all int64
	err = s.Pool.QueryRow(ctx, `SELECT street_code, count(*), sum(count(*)) OVER ()::bigint FROM objects
		WHERE street_code IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 1`).Scan(&street, &inStreet, &all)
	s.Close()
	if err != nil {
		return fmt.Errorf("count objects: %w", err)
	}
	u, err := url.Parse(databaseURL())
	if err != nil {
		return err
	}
	u.Path = "/" + *dbName
	dbURL := u.String()

	fmt.Printf("server %s; peak RSS is the server process's VmHWM, started afresh for each case\n", bin)
	fmt.Printf("%-8s %-28s %10s %9s %11s %10s %10s %10s\n", "format", "selection", "rows", "seconds", "rows/s", "MB", "RSS start", "RSS peak")
	for _, f := range strings.Split(*formats, ",") {
		for _, c := range []struct {
			name  string
			query string
			rows  int64
		}{
			{fmt.Sprintf("street %s", street), "&street_code=" + street, inStreet},
			{"all objects", "", all},
		} {
			p, err := startServer(ctx, bin, dbURL)
			if err != nil {
				return err
			}
			start, _ := p.memory()
			t := time.Now()
			n, status, err := download(p.base + "/v1/exports/objects?f=" + f + c.query)
			took := time.Since(t)
			_, peak := p.memory()
			p.stop()
			if err != nil {
				return fmt.Errorf("%s %s: %w", f, c.name, err)
			}
			if status != http.StatusOK {
				return fmt.Errorf("%s %s: status %d", f, c.name, status)
			}
			fmt.Printf("%-8s %-28s %10d %9.1f %11.0f %10.1f %7.0f MB %7.0f MB\n", f, c.name, c.rows, took.Seconds(),
				float64(c.rows)/took.Seconds(), float64(n)/1e6, float64(start)/1e6, float64(peak)/1e6)
		}
	}
	return nil
}

// download reads a whole answer and counts its bytes.
func download(u string) (int64, int, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return n, resp.StatusCode, err
}

// openStoreAt opens the database name on DATABASE_URL's server.
func openStoreAt(ctx context.Context, name string) (*data.Store, error) {
	u, err := url.Parse(databaseURL())
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return data.Open(ctx, u.String())
}
