// Package pmtiles writes PMTiles v3 archives of gridmap's tilesets and
// serves a directory of them. It is the only package (with cmd/gridmap)
// that imports github.com/protomaps/go-pmtiles, which pulls in the cloud
// SDKs: keep it that way.
//
// Archive layout (the usual order of the specification): the 127-byte
// header, the root directory, the gzipped JSON metadata, the leaf
// directories, then the tile data in ascending tile ID order (clustered).
// Tiles are gzipped MVT; empty tiles are left out; identical tiles are
// stored once (every entry points at the same offset) and consecutive IDs
// with the same content share one run-length entry.
package pmtiles

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	gzip "github.com/klauspost/compress/gzip"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	pm "github.com/protomaps/go-pmtiles/pmtiles"

	"gridmap/tiles"
)

// Options say what to export.
type Options struct {
	// Layers are tileset names of the catalogue (units, objects); their
	// source layers go into one archive, concatenated per tile.
	Layers           []string
	MinZoom, MaxZoom int
	// BBox is minLon, minLat, maxLon, maxLat (WGS 84); nil is the extent
	// of the store's districts.
	BBox *[4]float64
	// Workers render tiles concurrently (default GOMAXPROCS); tiles are
	// still written in tile ID order.
	Workers int
	// Name, Description and Attribution go into the metadata; empty ones
	// get defaults from the tilesets.
	Name, Description, Attribution string
	// TempDir holds the tile data while the archive is built ("" is the
	// system's temporary directory).
	TempDir string
	// MaxTiles refuses exports that would render more tiles (default
	// DefaultMaxTiles).
	MaxTiles int64
	// Progress, when set, is called after every tile, in tile ID order.
	Progress func(Progress)

	// tempBase names the tile data's temporary after the output (ExportFile).
	tempBase string
}

// DefaultMaxTiles bounds an export: more tiles than this is a bbox or a
// zoom range that was not meant (z22 over a city is billions of tiles).
const DefaultMaxTiles = 4 << 20

// Progress is how far an export is.
type Progress struct {
	Zoom                int
	ZoomDone, ZoomTotal int64 // tiles of this zoom rendered / to render
	Done, Total         int64 // tiles rendered / to render, all zooms
	Written             int64 // tiles with features so far
	Elapsed             time.Duration
}

// ZoomStats are the tiles of one zoom level.
type ZoomStats struct {
	Zoom     int   `json:"zoom"`
	Rendered int64 `json:"rendered"`
	Tiles    int64 `json:"tiles"`     // with features, written
	RawBytes int64 `json:"raw_bytes"` // uncompressed MVT of the written tiles
}

// Stats say what an export wrote.
type Stats struct {
	Rendered  int64       `json:"rendered"`   // tiles rendered (the bbox's tiles at every zoom)
	Tiles     int64       `json:"tiles"`      // addressed tiles: rendered with features
	Unique    int64       `json:"unique"`     // distinct tile contents stored
	Entries   int64       `json:"entries"`    // directory entries after run-length encoding
	Leaves    int         `json:"leaves"`     // leaf directories
	TileBytes int64       `json:"tile_bytes"` // the tile data section (gzipped, deduplicated)
	Bytes     int64       `json:"bytes"`      // the whole archive
	MinZoom   int         `json:"minzoom"`    // of the tiles written
	MaxZoom   int         `json:"maxzoom"`
	Bounds    [4]float64  `json:"bounds"`
	Seconds   float64     `json:"seconds"`
	Zooms     []ZoomStats `json:"zooms"`
}

// worldBounds is what tiles.Describe answers for a store without districts.
var worldBounds = [4]float64{-180, -85.05112878, 180, 85.05112878}

// maxLat is the Web Mercator limit.
const maxLat = 85.0511287798066

// ExportFile writes the archive to path, atomically: to a temporary file
// beside it, renamed into place when complete. It first removes what
// exports to path killed before they could clean up left behind (see
// tempfile.go); an export that fails or is cancelled removes its own.
func ExportFile(ctx context.Context, r *tiles.Renderer, o Options, path string) (Stats, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	if o.TempDir == "" {
		o.TempDir = dir
	}
	o.tempBase = base
	for _, d := range slices.Compact([]string{dir, o.TempDir}) {
		if _, err := removeLeftovers(d, base); err != nil {
			return Stats{}, fmt.Errorf("remove the leftovers of earlier exports: %w", err)
		}
	}
	f, err := createTemp(dir, base, kindArchive)
	if err != nil {
		return Stats{}, err
	}
	done := false
	defer func() {
		if !done {
			removeTemp(f)
		}
	}()
	st, err := Export(ctx, r, o, f)
	if err != nil {
		return st, err
	}
	if err := f.Sync(); err != nil {
		return st, err
	}
	if err := f.Close(); err != nil {
		return st, err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return st, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return st, err
	}
	inUse.Delete(f.Name())
	done = true
	return st, nil
}

// Export renders the tiles of o.Layers covering o.BBox at every zoom of
// o.MinZoom–o.MaxZoom and writes them to w as a PMTiles v3 archive.
func Export(ctx context.Context, r *tiles.Renderer, o Options, w io.Writer) (Stats, error) {
	start := time.Now()
	layers, err := resolveLayers(r.Catalogue, o.Layers)
	if err != nil {
		return Stats{}, err
	}
	if o.MinZoom < 0 || o.MaxZoom > tiles.MaxZoom || o.MinZoom > o.MaxZoom {
		return Stats{}, fmt.Errorf("zooms %d–%d: want 0 ≤ minzoom ≤ maxzoom ≤ %d", o.MinZoom, o.MaxZoom, tiles.MaxZoom)
	}
	bounds, err := exportBounds(ctx, r, layers[0], o.BBox)
	if err != nil {
		return Stats{}, err
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxTiles <= 0 {
		o.MaxTiles = DefaultMaxTiles
	}
	ranges := make([]tileRange, 0, o.MaxZoom-o.MinZoom+1)
	var total int64
	for z := o.MinZoom; z <= o.MaxZoom; z++ {
		tr := coverRange(z, bounds)
		ranges = append(ranges, tr)
		total += tr.count()
	}
	if total > o.MaxTiles {
		return Stats{}, fmt.Errorf("%d tiles to render at z%d–%d over %v: more than the limit of %d (narrow --bbox or lower --maxzoom)",
			total, o.MinZoom, o.MaxZoom, bounds, o.MaxTiles)
	}

	var data *os.File
	if o.tempBase != "" {
		data, err = createTemp(o.TempDir, o.tempBase, kindData)
	} else {
		data, err = os.CreateTemp(o.TempDir, "gridmap-pmtiles-data-*")
	}
	if err != nil {
		return Stats{}, err
	}
	defer removeTemp(data)
	dataBuf := bufio.NewWriterSize(data, 1<<20)

	st := Stats{Rendered: total, Bounds: bounds}
	var (
		entries []pm.EntryV3
		seen    = map[[sha256.Size]byte]pm.EntryV3{} // content → where it is stored
		offset  uint64
		done    int64
	)
	zi := -1
	var zoomDone int64
	err = renderInOrder(ctx, r, layers, ranges, o.Workers, func(t rendered) error {
		if zi < 0 || st.Zooms[zi].Zoom != t.z {
			st.Zooms = append(st.Zooms, ZoomStats{Zoom: t.z})
			zi++
			zoomDone = 0
		}
		zs := &st.Zooms[zi]
		zs.Rendered++
		done++
		zoomDone++
		if len(t.raw) > 0 {
			zs.Tiles++
			zs.RawBytes += int64(len(t.raw))
			st.Tiles++
			if at, ok := seen[t.sum]; ok {
				last := &entries[len(entries)-1]
				if t.id == last.TileID+uint64(last.RunLength) && last.Offset == at.Offset {
					last.RunLength++
				} else {
					entries = append(entries, pm.EntryV3{TileID: t.id, Offset: at.Offset, Length: at.Length, RunLength: 1})
				}
			} else {
				if _, err := dataBuf.Write(t.gz); err != nil {
					return err
				}
				e := pm.EntryV3{TileID: t.id, Offset: offset, Length: uint32(len(t.gz)), RunLength: 1}
				seen[t.sum] = e
				entries = append(entries, e)
				offset += uint64(len(t.gz))
			}
		}
		if o.Progress != nil {
			o.Progress(Progress{Zoom: t.z, ZoomDone: zoomDone, ZoomTotal: ranges[t.z-o.MinZoom].count(),
				Done: done, Total: total, Written: st.Tiles, Elapsed: time.Since(start)})
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if len(entries) == 0 {
		return st, fmt.Errorf("no tile of %s at z%d–%d over %v has a feature: nothing to write", strings.Join(o.Layers, ","), o.MinZoom, o.MaxZoom, bounds)
	}
	if err := dataBuf.Flush(); err != nil {
		return st, err
	}
	st.Unique = int64(len(seen))
	st.Entries = int64(len(entries))
	st.TileBytes = int64(offset)

	minZ, _, _ := pm.IDToZxy(entries[0].TileID)
	maxZ, _, _ := pm.IDToZxy(entries[len(entries)-1].TileID)
	st.MinZoom, st.MaxZoom = int(minZ), int(maxZ)
	meta, err := pm.SerializeMetadata(metadata(layers, o, minZ, maxZ, bounds), pm.Gzip)
	if err != nil {
		return st, fmt.Errorf("metadata: %w", err)
	}
	h := pm.HeaderV3{
		AddressedTilesCount: uint64(st.Tiles),
		TileContentsCount:   uint64(st.Unique),
		TileCompression:     pm.Gzip,
		TileType:            pm.Mvt,
		MinLonE7:            e7(bounds[0]),
		MinLatE7:            e7(bounds[1]),
		MaxLonE7:            e7(bounds[2]),
		MaxLatE7:            e7(bounds[3]),
		CenterZoom:          centerZoom(bounds, minZ, maxZ),
		CenterLonE7:         e7((bounds[0] + bounds[2]) / 2),
		CenterLatE7:         e7((bounds[1] + bounds[3]) / 2),
	}
	if _, err := data.Seek(0, io.SeekStart); err != nil {
		return st, err
	}
	n, leaves, err := writeArchive(w, h, entries, meta, data, offset)
	if err != nil {
		return st, err
	}
	st.Leaves = leaves
	st.Bytes = n
	st.Seconds = time.Since(start).Seconds()
	return st, nil
}

// writeArchive writes header, root directory, metadata, leaf directories
// and the tile data (dataLen bytes read from data) of entries, which are in
// ascending tile ID order. h carries the tile type and compression, the
// counts of addressed tiles and contents, bounds and centre; the rest is
// filled in here. It returns the bytes written and the leaf directories.
func writeArchive(w io.Writer, h pm.HeaderV3, entries []pm.EntryV3, meta []byte, data io.Reader, dataLen uint64) (int64, int, error) {
	rootBytes, leafBytes, leaves := pm.BuildDirectories(entries, 16384-pm.HeaderV3LenBytes, pm.Gzip)
	h.SpecVersion = 3
	h.Clustered = true
	h.InternalCompression = pm.Gzip
	h.TileEntriesCount = uint64(len(entries))
	minZ, _, _ := pm.IDToZxy(entries[0].TileID)
	maxZ, _, _ := pm.IDToZxy(entries[len(entries)-1].TileID)
	h.MinZoom, h.MaxZoom = minZ, maxZ
	h.RootOffset = pm.HeaderV3LenBytes
	h.RootLength = uint64(len(rootBytes))
	h.MetadataOffset = h.RootOffset + h.RootLength
	h.MetadataLength = uint64(len(meta))
	h.LeafDirectoryOffset = h.MetadataOffset + h.MetadataLength
	h.LeafDirectoryLength = uint64(len(leafBytes))
	h.TileDataOffset = h.LeafDirectoryOffset + h.LeafDirectoryLength
	h.TileDataLength = dataLen
	cw := &countingWriter{w: w}
	for _, b := range [][]byte{pm.SerializeHeader(h), rootBytes, meta, leafBytes} {
		if _, err := cw.Write(b); err != nil {
			return cw.n, leaves, err
		}
	}
	if _, err := io.CopyN(cw, data, int64(dataLen)); err != nil {
		return cw.n, leaves, fmt.Errorf("tile data: %w", err)
	}
	return cw.n, leaves, nil
}

// resolveLayers finds the tilesets; their source layers must not share a
// name, since one tile holds them all.
func resolveLayers(cat *tiles.Catalogue, names []string) ([]*tiles.Tileset, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("no layers to export: choose among %s", strings.Join(cat.Names(), ", "))
	}
	var out []*tiles.Tileset
	sources := map[string]string{}
	for _, n := range names {
		l, ok := cat.Tileset(n)
		if !ok {
			return nil, fmt.Errorf("no tileset %q: choose among %s", n, strings.Join(cat.Names(), ", "))
		}
		if slices.Contains(out, l) {
			return nil, fmt.Errorf("tileset %q named twice", n)
		}
		if l.Timed() {
			return nil, fmt.Errorf("tileset %q changes with the clock and with every report: an archive of it would be stale when written; serve it live from /tiles/%s", n, n)
		}
		for _, s := range l.Sources {
			if other, dup := sources[s.ID]; dup {
				return nil, fmt.Errorf("tilesets %s and %s both have a source layer %q", other, n, s.ID)
			}
			sources[s.ID] = n
		}
		out = append(out, l)
	}
	return out, nil
}

// exportBounds is the bbox asked for, or the store's district extent.
func exportBounds(ctx context.Context, r *tiles.Renderer, l *tiles.Tileset, bbox *[4]float64) ([4]float64, error) {
	var b [4]float64
	if bbox != nil {
		b = *bbox
	} else {
		tj, err := tiles.Describe(ctx, r.Pool, l, "")
		if err != nil {
			return b, err
		}
		if tj.Bounds == worldBounds {
			return b, errors.New("the store holds no districts to take the extent from: give a bbox")
		}
		b = tj.Bounds
	}
	for _, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return b, fmt.Errorf("bbox %v is not finite", b)
		}
	}
	if b[0] < -180 || b[2] > 180 || b[1] < -90 || b[3] > 90 {
		return b, fmt.Errorf("bbox %v is outside -180,-90,180,90", b)
	}
	b[1], b[3] = math.Max(b[1], -maxLat), math.Min(b[3], maxLat)
	if b[0] >= b[2] || b[1] >= b[3] {
		return b, fmt.Errorf("bbox %v is empty: want minLon < maxLon and minLat < maxLat (within ±%.4f°)", b, maxLat)
	}
	return b, nil
}

// tileRange is the tiles of zoom z covering a bbox.
type tileRange struct{ z, x0, y0, x1, y1 int }

func (t tileRange) count() int64 { return int64(t.x1-t.x0+1) * int64(t.y1-t.y0+1) }

// ids lists the range's tile IDs in ascending order.
func (t tileRange) ids() []uint64 {
	out := make([]uint64, 0, t.count())
	for x := t.x0; x <= t.x1; x++ {
		for y := t.y0; y <= t.y1; y++ {
			out = append(out, pm.ZxyToID(uint8(t.z), uint32(x), uint32(y)))
		}
	}
	slices.Sort(out)
	return out
}

func coverRange(z int, b [4]float64) tileRange {
	x0, y1 := lonLatTile(z, b[0], b[1])
	x1, y0 := lonLatTile(z, b[2], b[3])
	return tileRange{z, x0, y0, x1, y1}
}

// lonLatTile is the tile of zoom z holding a point (Web Mercator, XYZ).
func lonLatTile(z int, lon, lat float64) (int, int) {
	n := float64(uint64(1) << uint(z))
	x := int(math.Floor((lon + 180) / 360 * n))
	s := math.Sin(lat * math.Pi / 180)
	y := int(math.Floor((0.5 - math.Log((1+s)/(1-s))/(4*math.Pi)) * n))
	clamp := func(v int) int { return max(0, min(int(n)-1, v)) }
	return clamp(x), clamp(y)
}

// TileBounds is a tile's extent: minLon, minLat, maxLon, maxLat.
func TileBounds(z, x, y int) [4]float64 {
	n := float64(uint64(1) << uint(z))
	lon := func(x int) float64 { return float64(x)/n*360 - 180 }
	lat := func(y int) float64 { return math.Atan(math.Sinh(math.Pi*(1-2*float64(y)/n))) * 180 / math.Pi }
	return [4]float64{lon(x), lat(y + 1), lon(x + 1), lat(y)}
}

// centerZoom shows the bbox about four tiles across, within the archive's zooms.
func centerZoom(b [4]float64, minZ, maxZ uint8) uint8 {
	z := int(math.Floor(math.Log2(4 * 360 / (b[2] - b[0]))))
	return uint8(max(int(minZ), min(int(maxZ), z)))
}

func e7(v float64) int32 { return int32(math.Round(v * 1e7)) }

// metadata is the archive's JSON metadata: TileJSON-like names and the
// vector_layers of the chosen tilesets, their zooms cut to the archive's.
func metadata(layers []*tiles.Tileset, o Options, minZ, maxZ uint8, b [4]float64) map[string]any {
	var names, descs []string
	var vls []any
	for _, l := range layers {
		names = append(names, l.Name)
		descs = append(descs, l.Name+": "+l.Description)
		for _, s := range l.Sources {
			lo, hi := max(s.MinZoom, int(minZ)), min(s.MaxZoom, int(maxZ))
			if lo > hi {
				continue
			}
			vls = append(vls, map[string]any{"id": s.ID, "description": s.Description, "minzoom": lo, "maxzoom": hi, "fields": s.Fields})
		}
	}
	name, desc, attr := o.Name, o.Description, o.Attribution
	if name == "" {
		name = "gridmap " + strings.Join(names, "+")
	}
	if desc == "" {
		desc = strings.Join(descs, "; ")
	}
	if attr == "" {
		attr = "gridmap"
	}
	return map[string]any{
		"name": name, "description": desc, "attribution": attr, "version": "1.0.0",
		"type": "overlay", "format": "pbf", "generator": "gridmap export pmtiles",
		"gridmap":       map[string]any{"layers": names, "bbox": b, "minzoom": o.MinZoom, "maxzoom": o.MaxZoom},
		"vector_layers": vls,
	}
}

// rendered is one tile, ready to write.
type rendered struct {
	id      uint64
	z, x, y int
	raw     []byte // uncompressed MVT (empty: no features)
	gz      []byte
	sum     [sha256.Size]byte
	err     error
}

// renderInOrder renders every tile of the ranges with a pool of workers
// and hands them to write in ascending tile ID order; at most a window of
// tiles is in flight, so memory stays bounded.
func renderInOrder(ctx context.Context, r *tiles.Renderer, layers []*tiles.Tileset, ranges []tileRange, workers int,
	write func(rendered) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		rendered
		out chan rendered
	}
	jobs := make(chan job)
	order := make(chan chan rendered, 8*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			for j := range jobs {
				t := j.rendered
				t.err = renderTile(ctx, r, layers, &t, &buf, zw)
				j.out <- t
			}
		}()
	}
	// The dispatcher queues each tile's result channel in order, then the job.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		for _, tr := range ranges {
			for _, id := range tr.ids() {
				_, x, y := pm.IDToZxy(id)
				j := job{rendered: rendered{id: id, z: tr.z, x: int(x), y: int(y)}, out: make(chan rendered, 1)}
				select {
				case order <- j.out:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- j:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	err := func() error {
		for out := range order {
			var t rendered
			select {
			case t = <-out:
			case <-ctx.Done():
				return ctx.Err()
			}
			if t.err != nil {
				return t.err
			}
			if err := write(t); err != nil {
				return err
			}
		}
		return ctx.Err()
	}()
	cancel()
	for range order { // let the dispatcher finish
	}
	wg.Wait()
	return err
}

// renderTile concatenates the layers' MVTs of one tile (an MVT is a list
// of layers), gzips and hashes it.
func renderTile(ctx context.Context, r *tiles.Renderer, layers []*tiles.Tileset, t *rendered, buf *bytes.Buffer, zw *gzip.Writer) error {
	for _, l := range layers {
		b, err := r.Render(ctx, l.Name, t.z, t.x, t.y)
		if err != nil {
			return err
		}
		t.raw = append(t.raw, b...)
	}
	if len(t.raw) == 0 {
		return nil
	}
	t.sum = sha256.Sum256(t.raw)
	buf.Reset()
	zw.Reset(buf)
	if _, err := zw.Write(t.raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	t.gz = bytes.Clone(buf.Bytes())
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
