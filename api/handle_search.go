package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"gridmap/data"
	"gridmap/geo"
)

// searchHit is one result of GET /v1/search.
type searchHit struct {
	Type  string      `json:"type"`
	Code  string      `json:"code"`
	Label string      `json:"label"`
	Name  string      `json:"name,omitempty"`
	Level string      `json:"level,omitempty"`
	Layer string      `json:"layer,omitempty"`
	Class string      `json:"class,omitempty"`
	Score int         `json:"score"`
	BBox  *[4]float64 `json:"bbox,omitempty"`
	Point *[2]float64 `json:"point,omitempty"`
}

var searchTypes = []string{data.SearchUnit, data.SearchObject, data.SearchEvent}

func (s *Server) searchRoutes(r *mux.Router) {
	s.handle(r, "/v1/search", s.search, http.MethodGet)
}

// search: GET /v1/search?q=&limit=&types=unit,object,event&crs=
func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	// Unknown and repeated parameters are refused before this by the
	// OpenAPI contract's middleware (api/openapi/search.yaml).
	q := r.URL.Query()
	crs, err := geo.ParseCRS(q.Get("crs"))
	if err != nil {
		return &paramError{"crs", "crs: " + err.Error()}
	}
	f := data.SearchFilter{Q: strings.TrimSpace(q.Get("q")), Scopes: readScopes(r)}
	switch n := utf8.RuneCountInString(f.Q); {
	case n == 0:
		return &paramError{"q", "query parameter q is required: the text to look for (a name, part of a name, or the start of a code)"}
	case n > data.MaxSearchQuery:
		return &paramError{"q", fmt.Sprintf("q has %d characters; at most %d", n, data.MaxSearchQuery)}
	}
	if f.Limit, err = parseIntParam(q, "limit", data.DefaultSearchLimit, 1, data.MaxSearchLimit); err != nil {
		return err
	}
	if t := q.Get("types"); t != "" {
		for _, typ := range strings.Split(t, ",") {
			if !slices.Contains(searchTypes, typ) {
				return &paramError{"types", fmt.Sprintf("types=%q: %q is not unit, object or event", geo.Excerpt(t, geo.MaxExcerpt), geo.Excerpt(typ, geo.MaxExcerpt))}
			}
			f.Types = append(f.Types, typ)
		}
	}
	hits, err := s.store.Search(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]searchHit, len(hits))
	for i, h := range hits {
		out[i] = searchHit{Type: h.Type, Code: h.Code, Label: h.Name, Level: string(h.Level), Layer: h.Layer,
			Class: h.Class, Score: h.Score, BBox: h.BBox, Point: h.Point}
		if h.Type == data.SearchUnit {
			out[i].Name = h.Name
		}
		// A box's corners are converted each on its own: the offsets of
		// GCJ-02 and BD-09 vary by metres across a unit.
		if b := out[i].BBox; b != nil {
			b[0], b[1] = geo.FromWGS84(crs, b[0], b[1])
			b[2], b[3] = geo.FromWGS84(crs, b[2], b[3])
		}
		if p := out[i].Point; p != nil {
			p[0], p[1] = geo.FromWGS84(crs, p[0], p[1])
		}
	}
	w.Header().Set("Content-Crs", "<"+crs.URI()+">")
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"query": f.Q, "results": out})
	return nil
}
