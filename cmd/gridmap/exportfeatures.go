package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"gridmap/data"
	"gridmap/export"
	"gridmap/geo"
)

// whereFlags collects repeated --where name=value.
type whereFlags map[string]string

func (w whereFlags) String() string { return fmt.Sprint(map[string]string(w)) }

func (w whereFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("--where %q: want name=value", s)
	}
	w[k] = v
	return nil
}

// cmdExportFeatures: gridmap export features COLLECTION --out FILE — the
// route GET /v1/exports/{collection} from the command line, on the
// database directly: no heavy slot, no timeout, no scope (the command has
// the database's credentials).
func cmdExportFeatures(ctx context.Context, args []string) error {
	const usage = "usage: gridmap export features COLLECTION --out FILE [--format geojson|geojsonseq|ndjson|csv|gpkg|fgb] [--crs wgs84|gcj02|bd09] [--geometry wkt|lonlat] [--bom] [--bbox minLon,minLat,maxLon,maxLat] [--where property=value …]"
	fs := flag.NewFlagSet("export features", flag.ContinueOnError)
	out := fs.String("out", "", "file to write (required; written beside it, then renamed into place)")
	format := fs.String("format", "", "geojson, geojsonseq, ndjson, csv, gpkg or fgb (default: from --out's extension)")
	crsFlag := fs.String("crs", "wgs84", "CRS of the positions: wgs84, gcj02 or bd09")
	geometry := fs.String("geometry", export.CSVWKT, "csv: wkt or lonlat")
	bom := fs.Bool("bom", false, "csv: start with a UTF-8 byte order mark (for Excel)")
	bboxFlag := fs.String("bbox", "", "minLon,minLat,maxLon,maxLat (WGS-84): features that intersect it")
	where := whereFlags{}
	fs.Var(where, "where", "property=value: an equality filter on a queryable (repeatable)")
	// The collection before the flags or after them.
	var collection string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		collection, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if collection == "" && fs.NArg() == 1 {
		collection = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return errors.New(usage)
	}
	if *out == "" || collection == "" {
		return errors.New(usage)
	}
	name := *format
	if name == "" {
		ext := strings.ToLower(filepath.Ext(*out))
		for _, f := range export.Formats {
			if ext == f.Ext {
				name = f.Name
			}
		}
		if ext == ".json" {
			name = "geojson"
		}
		if name == "" {
			return fmt.Errorf("--format: %q does not say which (.geojson, .geojsons, .ndjson, .csv, .gpkg, .fgb); give --format", filepath.Base(*out))
		}
	}
	f, ok := export.Lookup(name)
	if !ok || !f.Geometry {
		return fmt.Errorf("--format %q: use geojson, geojsonseq, ndjson, csv, gpkg or fgb", name)
	}
	crs, err := geo.ParseCRS(*crsFlag)
	if err != nil {
		return fmt.Errorf("--crs: %w", err)
	}
	q := data.FeatureQuery{Collection: collection}
	if len(where) > 0 {
		q.Props = where
	}
	if *bboxFlag != "" {
		b, err := parseBBox(*bboxFlag)
		if err != nil {
			return err
		}
		q.BBox = &orb.Bound{Min: orb.Point{b[0], b[1]}, Max: orb.Point{b[2], b[3]}}
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := s.FeatureCollection(ctx, collection)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	start := time.Now()
	w, err := f.New(tmp, c.Schema, export.Options{CRS: crs, CSVGeometry: *geometry, BOM: *bom, TempDir: filepath.Dir(*out)})
	if err != nil {
		tmp.Close()
		return err
	}
	rows := 0
	err = s.Features(ctx, q, func(r *geo.Row) error { rows++; return w.Write(r) })
	if err != nil {
		w.Abort()
	} else {
		err = w.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	took := time.Since(start).Seconds()
	fmt.Printf("wrote %s: %d features of %s as %s (%s, %s) in %.1f s (%.0f rows/s)\n", *out, rows, collection, f.Name, mib(st.Size()), crs, took, float64(rows)/took)
	return nil
}
