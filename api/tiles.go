package api

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"gridmap/tiles"
)

// tileRoutes registers the vector tiles, their TileJSON and the wall style.
func (s *Server) tileRoutes(r *mux.Router) {
	r.HandleFunc("/tiles/{layer}/{z}/{x}/{y}.mvt", s.tile).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/tiles/{layer}.json", s.tileJSON).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/styles/wall.json", s.wallStyle).Methods(http.MethodGet, http.MethodHead)
}

// tile: GET /tiles/{layer}/{z}/{x}/{y}.mvt. An empty tile is 204 No
// Content (MapLibre draws nothing, as for an empty 200).
func (s *Server) tile(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	if _, ok := s.tiles.Catalogue.Layer(v["layer"]); !ok {
		notFound(w, r, fmt.Sprintf("no tileset %q: there are %s", v["layer"], strings.Join(s.tiles.Catalogue.Names(), ", ")))
		return
	}
	var zxy [3]int
	for i, k := range []string{"z", "x", "y"} {
		n, err := strconv.Atoi(v[k])
		if err != nil {
			badParam(w, r, k, fmt.Sprintf("%s=%q is not an integer", k, v[k]))
			return
		}
		zxy[i] = n
	}
	if err := tiles.CheckTile(zxy[0], zxy[1], zxy[2]); err != nil {
		var te *tiles.TileError
		if errors.As(err, &te) {
			badParam(w, r, "z/x/y", err.Error())
			return
		}
	}
	mvt, err := s.tiles.Render(r.Context(), v["layer"], zxy[0], zxy[1], zxy[2])
	if err != nil {
		fail(w, r, err)
		return
	}
	writeTile(w, r, mvt)
}

// writeTile answers a tile with a content ETag (same data, same bytes, same
// tag), 304 on If-None-Match, gzip when the client takes it, 204 when empty.
func writeTile(w http.ResponseWriter, r *http.Request, mvt []byte) {
	sum := sha256.Sum256(mvt)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=0, must-revalidate")
	h.Set("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if len(mvt) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Content-Type", "application/vnd.mapbox-vector-tile")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		_, _ = zw.Write(mvt)
		_ = zw.Close()
		h.Set("Content-Encoding", "gzip")
		mvt = b.Bytes()
	}
	h.Set("Content-Length", strconv.Itoa(len(mvt)))
	_, _ = w.Write(mvt)
}

// baseURL is the scheme and host the client used.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		host = fh
	}
	return scheme + "://" + host
}

// tileJSON: GET /tiles/{layer}.json (TileJSON 3.0.0).
func (s *Server) tileJSON(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["layer"]
	l, ok := s.tiles.Catalogue.Layer(name)
	if !ok {
		notFound(w, r, fmt.Sprintf("no tileset %q: there are %s", name, strings.Join(s.tiles.Catalogue.Names(), ", ")))
		return
	}
	tj, err := tiles.Describe(r.Context(), s.store.Pool, l, baseURL(r)+"/tiles/"+name)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tj)
}

// wallStyle: GET /styles/wall.json, the dark command-centre style.
func (s *Server) wallStyle(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, tiles.WallStyle(baseURL(r)))
}
