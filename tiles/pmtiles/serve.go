package pmtiles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	pm "github.com/protomaps/go-pmtiles/pmtiles"
)

// Ext is the file name extension of an archive.
const Ext = ".pmtiles"

// ContentType is the media type of an archive (PMTiles specification).
const ContentType = "application/vnd.pmtiles"

// ErrNoArchive is an archive name the directory does not hold.
var ErrNoArchive = errors.New("no such archive")

// ErrNoTile is a tile outside an archive's zooms or bounds.
var ErrNoTile = errors.New("tile outside the archive")

// Info is what an archive's header and metadata say.
type Info struct {
	Header   pm.HeaderV3
	Metadata map[string]any
	metadata []byte // JSON
}

// Bounds are minLon, minLat, maxLon, maxLat.
func (i *Info) Bounds() [4]float64 {
	h := i.Header
	return [4]float64{float64(h.MinLonE7) / 1e7, float64(h.MinLatE7) / 1e7, float64(h.MaxLonE7) / 1e7, float64(h.MaxLatE7) / 1e7}
}

// TileJSON is the TileJSON 3.0.0 of the archive, its tiles under base
// (base/{z}/{x}/{y}.mvt), built by go-pmtiles from header and metadata.
func (i *Info) TileJSON(base string) ([]byte, error) {
	return pm.CreateTileJSON(i.Header, i.metadata, base)
}

// ReadInfo reads an archive's header and metadata.
func ReadInfo(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := readHeader(f, path)
	if err != nil {
		return nil, err
	}
	raw, err := pm.DeserializeMetadataBytes(io.NewSectionReader(f, int64(h.MetadataOffset), int64(h.MetadataLength)), h.InternalCompression)
	if err != nil {
		return nil, fmt.Errorf("%s: metadata: %w", path, err)
	}
	info := &Info{Header: h, metadata: raw}
	if err := json.Unmarshal(raw, &info.Metadata); err != nil {
		return nil, fmt.Errorf("%s: metadata: %w", path, err)
	}
	return info, nil
}

func readHeader(f io.Reader, path string) (pm.HeaderV3, error) {
	hb := make([]byte, pm.HeaderV3LenBytes)
	if _, err := io.ReadFull(f, hb); err != nil {
		return pm.HeaderV3{}, fmt.Errorf("%s: header: %w", path, err)
	}
	h, err := pm.DeserializeHeader(hb)
	if err != nil {
		return pm.HeaderV3{}, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// Dir serves the archives of a directory: tiles through go-pmtiles'
// server (which caches the directories), header and metadata read as asked.
type Dir struct {
	path string
	srv  *pm.Server
}

// directoryCacheMB is the go-pmtiles directory cache.
const directoryCacheMB = 64

// OpenDir serves the archives in path; log gets go-pmtiles' messages at
// debug level.
func OpenDir(path string, log *slog.Logger) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("PMTiles directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("PMTiles directory %s is not a directory", abs)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := pm.NewServer("file://"+filepath.ToSlash(abs), "", slog.NewLogLogger(log.Handler(), slog.LevelDebug), directoryCacheMB, "")
	if err != nil {
		return nil, err
	}
	srv.Start()
	return &Dir{path: abs, srv: srv}, nil
}

// Path is the directory served.
func (d *Dir) Path() string { return d.path }

// Names lists the archives.
func (d *Dir) Names() []string {
	ents, _ := os.ReadDir(d.path)
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), Ext); ok && e.Type().IsRegular() && validName.MatchString(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// File is the path of the archive name; ErrNoArchive when there is none.
func (d *Dir) File(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("%w %q", ErrNoArchive, name)
	}
	p := filepath.Join(d.path, name+Ext)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w %q", ErrNoArchive, name)
	}
	return p, nil
}

// Info reads the header and metadata of the archive name.
func (d *Dir) Info(name string) (*Info, error) {
	p, err := d.File(name)
	if err != nil {
		return nil, err
	}
	return ReadInfo(p)
}

// Tile is one stored tile.
type Tile struct {
	Data        []byte // as stored: compressed with Encoding; nil for a tile the archive leaves out (no features)
	Encoding    string // Content-Encoding of Data: gzip, br, zstd or "" for none
	ContentType string
	ETag        string
}

// Tile fetches z/x/y from the MVT archive name through go-pmtiles' server.
// A tile inside the archive's zooms and bounds that it does not hold has
// no features (export leaves empty tiles out): Data is nil. ErrNoArchive
// and ErrNoTile are the two ways of not finding it.
func (d *Dir) Tile(ctx context.Context, name string, z, x, y int) (Tile, error) {
	p, err := d.File(name)
	if err != nil {
		return Tile{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return Tile{}, fmt.Errorf("%w %q", ErrNoArchive, name)
	}
	h, err := readHeader(f, p)
	f.Close()
	if err != nil {
		return Tile{}, err
	}
	info := &Info{Header: h}
	if h.TileType != pm.Mvt {
		return Tile{}, fmt.Errorf("%w: %s holds %s tiles, not MVT", ErrNoTile, name, strings.TrimPrefix(extOf(h.TileType), "."))
	}
	if z < int(h.MinZoom) || z > int(h.MaxZoom) {
		return Tile{}, fmt.Errorf("%w: %s holds zooms %d–%d, not %d", ErrNoTile, name, h.MinZoom, h.MaxZoom, z)
	}
	if tb, ab := TileBounds(z, x, y), info.Bounds(); tb[2] <= ab[0] || tb[0] >= ab[2] || tb[3] <= ab[1] || tb[1] >= ab[3] {
		return Tile{}, fmt.Errorf("%w: tile %d/%d/%d is outside the bounds of %s %v", ErrNoTile, z, x, y, name, ab)
	}
	status, headers, body := d.srv.Get(ctx, fmt.Sprintf("/%s/%d/%d/%d.mvt", name, z, x, y))
	switch status {
	case 200:
		return Tile{Data: body, Encoding: headers["Content-Encoding"], ContentType: headers["Content-Type"], ETag: headers["ETag"]}, nil
	case 204:
		return Tile{}, nil
	case 404:
		if strings.Contains(string(body), "Archive") {
			return Tile{}, fmt.Errorf("%w %q", ErrNoArchive, name)
		}
		return Tile{}, fmt.Errorf("%w: %s", ErrNoTile, body)
	case 499:
		if err := ctx.Err(); err != nil {
			return Tile{}, err
		}
	}
	return Tile{}, fmt.Errorf("pmtiles %s %d/%d/%d: %d %s", name, z, x, y, status, body)
}

func extOf(t pm.TileType) string {
	switch t {
	case pm.Mvt:
		return ".mvt"
	case pm.Png:
		return ".png"
	case pm.Jpeg:
		return ".jpg"
	case pm.Webp:
		return ".webp"
	case pm.Avif:
		return ".avif"
	case pm.Mlt:
		return ".mlt"
	}
	return ""
}
