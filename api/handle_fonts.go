package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
)

// fontRoutes serves the glyph ranges of the wall style's labels.
func (s *Server) fontRoutes(r *mux.Router) {
	s.handle(r, "/fonts/{fontstack}/{range}.pbf", s.glyphRange, http.MethodGet, http.MethodHead)
}

// glyphRange: GET /fonts/{fontstack}/{start}-{end}.pbf. Every fontstack is
// answered with the one font the server has (MapLibre asks by the name in
// the style's text-font).
func (s *Server) glyphRange(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	lo, hi, ok := strings.Cut(v["range"], "-")
	start, err1 := strconv.Atoi(lo)
	end, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || end != start+255 {
		return &paramError{"range", fmt.Sprintf("glyph range %q: want START-END with END = START+255", v["range"])}
	}
	b, err := s.glyphs.Range(v["fontstack"], start)
	if err != nil {
		return &paramError{"range", err.Error()}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(b)
	return nil
}
