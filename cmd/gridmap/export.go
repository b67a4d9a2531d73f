package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gridmap/api"
	"gridmap/grid"
	"gridmap/tiles"
	"gridmap/tiles/pmtiles"
)

// cmdExport: gridmap export pmtiles — a PMTiles v3 archive of tilesets;
// gridmap export features — a collection as a file (exportfeatures.go).
func cmdExport(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "features" {
		return cmdExportFeatures(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "pmtiles" {
		return errors.New("usage: gridmap export pmtiles --out FILE [--layers units,objects] [--minzoom 0] [--maxzoom 14] [--bbox minLon,minLat,maxLon,maxLat]\n       gridmap export features COLLECTION --out FILE [--format geojson|csv|gpkg|fgb|…] (see gridmap export features -h)")
	}
	fs := flag.NewFlagSet("export pmtiles", flag.ContinueOnError)
	out := fs.String("out", "", "archive to write (required; written beside it, then renamed into place)")
	layers := fs.String("layers", "units,objects", "tilesets to put in the archive, comma-separated")
	minZoom := fs.Int("minzoom", 0, "lowest zoom")
	maxZoom := fs.Int("maxzoom", 14, "highest zoom")
	bboxFlag := fs.String("bbox", "", "minLon,minLat,maxLon,maxLat to cover (default: the extent of the store's districts)")
	workers := fs.Int("workers", envInt("GRIDMAP_EXPORT_WORKERS", runtime.NumCPU()), "tiles rendered at once (GRIDMAP_EXPORT_WORKERS)")
	name := fs.String("name", "", "metadata name (default: gridmap and the tilesets)")
	desc := fs.String("description", "", "metadata description (default: the tilesets' descriptions)")
	attr := fs.String("attribution", "", "metadata attribution (default: gridmap)")
	quiet := fs.Bool("quiet", false, "print only the summary")
	renderer := fs.String("tile-renderer", envOr("GRIDMAP_TILE_RENDERER", api.TileRendererMemory), "what draws unit tiles: memory (the units loaded once into memory) or postgis (ST_AsMVT) (GRIDMAP_TILE_RENDERER)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("usage: gridmap export pmtiles --out FILE [flags] (see gridmap export pmtiles -h)")
	}
	o := pmtiles.Options{MinZoom: *minZoom, MaxZoom: *maxZoom, Workers: *workers, Name: *name, Description: *desc, Attribution: *attr}
	for _, l := range strings.Split(*layers, ",") {
		if l = strings.TrimSpace(l); l != "" {
			o.Layers = append(o.Layers, l)
		}
	}
	if *bboxFlag != "" {
		b, err := parseBBox(*bboxFlag)
		if err != nil {
			return err
		}
		o.BBox = &b
	}
	if !*quiet {
		o.Progress = exportProgress(os.Stderr)
	}
	s, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		return err
	}
	r := &tiles.Renderer{Pool: s.Pool, Catalogue: cat}
	switch *renderer {
	case api.TileRendererMemory:
		// Loaded in one snapshot: the archive is of one state of the units.
		_, stored, err := s.CurrentUnitVersions(ctx, nil)
		if err != nil {
			return err
		}
		units := make([]grid.Unit, len(stored))
		for i, u := range stored {
			units[i] = u.Unit
		}
		mem := tiles.NewMemUnits(units)
		r.Units = func() *tiles.MemUnits { return mem }
	case api.TileRendererPostGIS:
	default:
		return fmt.Errorf("--tile-renderer %q: want %s or %s", *renderer, api.TileRendererMemory, api.TileRendererPostGIS)
	}
	st, err := pmtiles.ExportFile(ctx, r, o, *out)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: %s of %s at z%d–%d over %s\n", *out, mib(st.Bytes), strings.Join(o.Layers, "+"), st.MinZoom, st.MaxZoom, fmtBBox(st.Bounds))
	fmt.Printf("  %d tiles rendered, %d with features written (%d distinct contents, %d directory entries, %d leaf directories)\n",
		st.Rendered, st.Tiles, st.Unique, st.Entries, st.Leaves)
	fmt.Printf("  tile data %s gzipped; %.1f s (%.0f tiles/s)\n", mib(st.TileBytes), st.Seconds, float64(st.Rendered)/st.Seconds)
	return nil
}

// exportProgress prints a line per zoom, and every few seconds within a long one.
func exportProgress(w io.Writer) func(pmtiles.Progress) {
	var last time.Duration
	return func(p pmtiles.Progress) {
		if p.ZoomDone != p.ZoomTotal && p.Elapsed-last < 5*time.Second {
			return
		}
		last = p.Elapsed
		fmt.Fprintf(w, "z%-2d %8d/%d tiles   total %d/%d, %d written   %6.1fs\n", p.Zoom, p.ZoomDone, p.ZoomTotal, p.Done, p.Total, p.Written, p.Elapsed.Seconds())
	}
}

func parseBBox(s string) ([4]float64, error) {
	var b [4]float64
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return b, fmt.Errorf("--bbox %q: want minLon,minLat,maxLon,maxLat", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return b, fmt.Errorf("--bbox %q: %q is not a number", s, p)
		}
		b[i] = v
	}
	return b, nil
}

func fmtBBox(b [4]float64) string {
	return fmt.Sprintf("%.5f,%.5f,%.5f,%.5f", b[0], b[1], b[2], b[3])
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

// defaultPMTilesDir is served when it exists and no directory is named.
const defaultPMTilesDir = ".data/pmtiles"

// servePMTiles has the server answer /pmtiles/ from dir (or the default
// directory, when it exists).
func servePMTiles(srv *api.Server, dir string, log *slog.Logger) error {
	if dir == "" {
		if st, err := os.Stat(defaultPMTilesDir); err != nil || !st.IsDir() {
			return nil
		}
		dir = defaultPMTilesDir
	}
	if err := srv.ServePMTiles(dir); err != nil {
		return err
	}
	log.Info("serving PMTiles", "dir", dir)
	return nil
}
