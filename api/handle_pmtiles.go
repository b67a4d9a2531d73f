package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/gorilla/mux"

	"gridmap/tiles/pmtiles"
)

// pmtilesDirs holds each server's PMTiles directory (ServePMTiles). It
// lives here rather than in Server so that PMTiles stays in this file.
var pmtilesDirs sync.Map // *Server → *pmtiles.Dir

// ServePMTiles makes the server answer /pmtiles/… from the archives
// (NAME.pmtiles) in dir. Without it those routes answer 404.
func (s *Server) ServePMTiles(dir string) error {
	d, err := pmtiles.OpenDir(dir, s.log)
	if err != nil {
		return err
	}
	pmtilesDirs.Store(s, d)
	return nil
}

func (s *Server) pmtilesDir() *pmtiles.Dir {
	if d, ok := pmtilesDirs.Load(s); ok {
		return d.(*pmtiles.Dir)
	}
	return nil
}

// pmtilesRoutes registers the PMTiles archives: their tiles, TileJSON,
// and the files themselves with Range requests (MapLibre's pmtiles://).
func (s *Server) pmtilesRoutes(r *mux.Router) {
	s.handle(r, "/pmtiles", s.pmtilesList, http.MethodGet, http.MethodHead)
	s.handle(r, "/pmtiles/{name}/{z}/{x}/{y}.mvt", s.pmtilesTile, http.MethodGet, http.MethodHead)
	s.handle(r, "/pmtiles/{name}.json", s.pmtilesTileJSON, http.MethodGet, http.MethodHead)
	s.handle(r, "/pmtiles/{name}.pmtiles", s.pmtilesFile, http.MethodGet, http.MethodHead)
}

// pmtilesArchive is the directory and the archive name the path names, or
// a 404 when no directory is configured or it does not hold the archive.
func (s *Server) pmtilesArchive(r *http.Request) (*pmtiles.Dir, string, error) {
	name := mux.Vars(r)["name"]
	d := s.pmtilesDir()
	if d == nil {
		return nil, name, notFound("no PMTiles directory is configured (gridmap serve --pmtiles-dir DIR)")
	}
	if _, err := d.File(name); err != nil {
		names := d.Names()
		there := "there are none"
		if len(names) > 0 {
			there = "there are " + strings.Join(names, ", ")
		}
		return nil, name, notFound("no PMTiles archive %q: %s", name, there)
	}
	return d, name, nil
}

// pmtilesList: GET /pmtiles, the archives and where their TileJSON is.
func (s *Server) pmtilesList(w http.ResponseWriter, r *http.Request) error {
	type archive struct {
		Name     string `json:"name"`
		TileJSON string `json:"tilejson"`
		URL      string `json:"url"`
	}
	out := []archive{}
	if d := s.pmtilesDir(); d != nil {
		base := baseURL(r) + "/pmtiles/"
		for _, n := range d.Names() {
			out = append(out, archive{Name: n, TileJSON: base + n + ".json", URL: base + n + pmtiles.Ext})
		}
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"archives": out})
	return nil
}

// pmtilesTile: GET /pmtiles/{name}/{z}/{x}/{y}.mvt through go-pmtiles'
// server. A tile the archive leaves out inside its zooms and bounds has no
// features: 204, as on /tiles; outside them, 404.
func (s *Server) pmtilesTile(w http.ResponseWriter, r *http.Request) error {
	zxy, err := tileParams(r)
	if err != nil {
		return err
	}
	d, name, err := s.pmtilesArchive(r)
	if err != nil {
		return err
	}
	t, err := d.Tile(r.Context(), name, zxy[0], zxy[1], zxy[2])
	switch {
	case errors.Is(err, pmtiles.ErrNoArchive):
		return notFound("no PMTiles archive %q", name)
	case errors.Is(err, pmtiles.ErrNoTile):
		return notFound("%v", err)
	case err != nil:
		return err
	}
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=0, must-revalidate")
	h.Set("Vary", "Accept-Encoding")
	body, encoding, etag := t.Data, t.Encoding, t.ETag
	if encoding != "" && !acceptsEncoding(r.Header.Get("Accept-Encoding"), encoding) {
		if encoding != "gzip" {
			return fmt.Errorf("archive %q stores %s tiles and the client does not accept %s", name, encoding, encoding)
		}
		raw, err := gunzip(body)
		if err != nil {
			return fmt.Errorf("tile %s/%d/%d/%d: %w", name, zxy[0], zxy[1], zxy[2], err)
		}
		body, encoding = raw, ""
		etag = strings.TrimSuffix(etag, `"`) + `-identity"`
	}
	if etag == "" {
		etag = `"empty"`
	}
	if notModified(w, r, etag) {
		return nil
	}
	h.Set("ETag", etag)
	if t.Data == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	h.Set("Content-Type", "application/vnd.mapbox-vector-tile")
	if encoding != "" {
		h.Set("Content-Encoding", encoding)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	return nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// pmtilesTileJSON: GET /pmtiles/{name}.json, TileJSON 3.0.0 from the
// archive's header and metadata, its tiles on /pmtiles/{name}/{z}/{x}/{y}.mvt.
func (s *Server) pmtilesTileJSON(w http.ResponseWriter, r *http.Request) error {
	d, name, err := s.pmtilesArchive(r)
	if err != nil {
		return err
	}
	info, err := d.Info(name)
	if err != nil {
		return err
	}
	b, err := info.TileJSON(baseURL(r) + "/pmtiles/" + name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, json.RawMessage(b))
	return nil
}

// pmtilesFile: GET /pmtiles/{name}.pmtiles, the archive itself with Range
// requests, If-Range and ETag (MapLibre's pmtiles protocol reads it so).
func (s *Server) pmtilesFile(w http.ResponseWriter, r *http.Request) error {
	d, name, err := s.pmtilesArchive(r)
	if err != nil {
		return err
	}
	gone := notFound("no PMTiles archive %q", name)
	p, err := d.File(name)
	if err != nil {
		return gone
	}
	f, err := os.Open(p)
	if err != nil {
		return gone
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", pmtiles.ContentType)
	h.Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
	h.Set("Cache-Control", "public, max-age=0, must-revalidate")
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return nil
}
