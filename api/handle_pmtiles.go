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
	r.HandleFunc("/pmtiles", s.pmtilesList).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/pmtiles/{name}/{z}/{x}/{y}.mvt", s.pmtilesTile).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/pmtiles/{name}.json", s.pmtilesTileJSON).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/pmtiles/{name}.pmtiles", s.pmtilesFile).Methods(http.MethodGet, http.MethodHead)
}

// pmtilesArchive is the directory, or a 404 when none is configured or it
// does not hold name.
func (s *Server) pmtilesArchive(w http.ResponseWriter, r *http.Request, name string) (*pmtiles.Dir, bool) {
	d := s.pmtilesDir()
	if d == nil {
		notFound(w, r, "no PMTiles directory is configured (gridmap serve --pmtiles-dir DIR)")
		return nil, false
	}
	if _, err := d.File(name); err != nil {
		names := d.Names()
		there := "there are none"
		if len(names) > 0 {
			there = "there are " + strings.Join(names, ", ")
		}
		notFound(w, r, fmt.Sprintf("no PMTiles archive %q: %s", name, there))
		return nil, false
	}
	return d, true
}

// pmtilesList: GET /pmtiles, the archives and where their TileJSON is.
func (s *Server) pmtilesList(w http.ResponseWriter, r *http.Request) {
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
	writeJSON(w, http.StatusOK, map[string]any{"archives": out})
}

// pmtilesTile: GET /pmtiles/{name}/{z}/{x}/{y}.mvt through go-pmtiles'
// server. A tile the archive leaves out inside its zooms and bounds has no
// features: 204, as on /tiles; outside them, 404.
func (s *Server) pmtilesTile(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	zxy, ok := tileParams(w, r)
	if !ok {
		return
	}
	d, ok := s.pmtilesArchive(w, r, v["name"])
	if !ok {
		return
	}
	t, err := d.Tile(r.Context(), v["name"], zxy[0], zxy[1], zxy[2])
	switch {
	case errors.Is(err, pmtiles.ErrNoArchive):
		notFound(w, r, fmt.Sprintf("no PMTiles archive %q", v["name"]))
		return
	case errors.Is(err, pmtiles.ErrNoTile):
		notFound(w, r, err.Error())
		return
	case err != nil:
		fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=0, must-revalidate")
	h.Set("Vary", "Accept-Encoding")
	body, encoding, etag := t.Data, t.Encoding, t.ETag
	if encoding != "" && !strings.Contains(r.Header.Get("Accept-Encoding"), encoding) {
		if encoding != "gzip" {
			fail(w, r, fmt.Errorf("archive %q stores %s tiles and the client does not accept %s", v["name"], encoding, encoding))
			return
		}
		raw, err := gunzip(body)
		if err != nil {
			fail(w, r, fmt.Errorf("tile %s/%d/%d/%d: %w", v["name"], zxy[0], zxy[1], zxy[2], err))
			return
		}
		body, encoding = raw, ""
		etag = strings.TrimSuffix(etag, `"`) + `-identity"`
	}
	if etag == "" {
		etag = `"empty"`
	}
	h.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if t.Data == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Content-Type", "application/vnd.mapbox-vector-tile")
	if encoding != "" {
		h.Set("Content-Encoding", encoding)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
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
func (s *Server) pmtilesTileJSON(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	d, ok := s.pmtilesArchive(w, r, name)
	if !ok {
		return
	}
	info, err := d.Info(name)
	if err != nil {
		fail(w, r, err)
		return
	}
	b, err := info.TileJSON(baseURL(r) + "/pmtiles/" + name)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, json.RawMessage(b))
}

// pmtilesFile: GET /pmtiles/{name}.pmtiles, the archive itself with Range
// requests, If-Range and ETag (MapLibre's pmtiles protocol reads it so).
func (s *Server) pmtilesFile(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	d, ok := s.pmtilesArchive(w, r, name)
	if !ok {
		return
	}
	p, err := d.File(name)
	if err != nil {
		notFound(w, r, fmt.Sprintf("no PMTiles archive %q", name))
		return
	}
	f, err := os.Open(p)
	if err != nil {
		notFound(w, r, fmt.Sprintf("no PMTiles archive %q", name))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", pmtiles.ContentType)
	h.Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
	h.Set("Cache-Control", "public, max-age=0, must-revalidate")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
