package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

const (
	defaultListLimit = 1000
	maxListLimit     = 10000
)

type feature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties unitProps       `json:"properties"`
}

type unitProps struct {
	Code       string     `json:"code"`
	Name       string     `json:"name"`
	Level      grid.Level `json:"level"`
	ParentCode *string    `json:"parent_code"`
	Layer      string     `json:"layer"`
	AreaM2     float64    `json:"area_m2"`
	Complete   bool       `json:"complete"`
	Version    int        `json:"version"`
	ValidFrom  string     `json:"valid_from"`
}

type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
	Type string `json:"type,omitempty"`
}

type featureCollection struct {
	Type           string    `json:"type"`
	Features       []feature `json:"features"`
	NumberReturned int       `json:"numberReturned"`
	Links          []link    `json:"links,omitempty"`
}

var nullGeometry = json.RawMessage("null")

func toFeature(u data.UnitRow) feature {
	g := u.Geometry
	if g == nil {
		g = nullGeometry
	}
	return feature{Type: "Feature", ID: u.Code, Geometry: g, Properties: unitProps{
		Code: u.Code, Name: u.Name, Level: u.Level, ParentCode: u.ParentCode, Layer: u.Layer,
		AreaM2: roundTo(u.AreaM2, 1), Complete: u.Complete, Version: u.Version, ValidFrom: u.ValidFrom,
	}}
}

func roundTo(v float64, decimals int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', decimals, 64), 64)
	return p
}

func writeGeoJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/geo+json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// listUnits: GET /v1/units?level=&parent=&layer=&bbox=&geometry=&limit=&cursor=
func (s *Server) listUnits(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := s.unitFilter(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	f.Level, err = parseLevel(q.Get("level"))
	if err != nil {
		fail(w, r, err)
		return
	}
	f.Parent = q.Get("parent")
	if f.BBox, err = parseBBox(q.Get("bbox")); err != nil {
		fail(w, r, err)
		return
	}
	s.writeUnits(w, r, f)
}

// unitFilter reads what every unit list shares: layer, geometry, paging.
func (s *Server) unitFilter(r *http.Request) (data.UnitFilter, error) {
	q := r.URL.Query()
	var f data.UnitFilter
	var err error
	if f.Layer, err = s.layerParam(r); err != nil {
		return f, err
	}
	if f.Geometry, err = parseGeometryMode(q.Get("geometry"), data.GeometryFull); err != nil {
		return f, err
	}
	if f.Limit, err = parseIntParam(q, "limit", defaultListLimit, 1, maxListLimit); err != nil {
		return f, err
	}
	f.After = q.Get("cursor")
	return f, nil
}

// writeUnits answers a page of units; a full page links to the next one.
func (s *Server) writeUnits(w http.ResponseWriter, r *http.Request, f data.UnitFilter) {
	rows, err := s.store.ListUnits(r.Context(), f)
	if err != nil {
		fail(w, r, err)
		return
	}
	fc := featureCollection{Type: "FeatureCollection", Features: make([]feature, len(rows)), NumberReturned: len(rows)}
	for i, u := range rows {
		fc.Features[i] = toFeature(u)
	}
	if len(rows) == f.Limit {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", rows[len(rows)-1].Code)
		next.RawQuery = q.Encode()
		fc.Links = append(fc.Links, link{Rel: "next", Href: next.RequestURI(), Type: "application/geo+json"})
	}
	writeGeoJSON(w, fc)
}

// getUnit: GET /v1/units/{code}, with an ETag; If-None-Match gives a 304.
func (s *Server) getUnit(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	layer, err := s.layerParam(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	mode, err := parseGeometryMode(r.URL.Query().Get("geometry"), data.GeometryFull)
	if err != nil {
		fail(w, r, err)
		return
	}
	u, err := s.store.GetUnit(r.Context(), layer, code, mode)
	if errors.Is(err, data.ErrNotFound) {
		notFound(w, r, fmt.Sprintf("no unit with code %q in layer %q", code, layer))
		return
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	// A unit's ETag follows its version (every changing import makes a
	// new one) and the geometry mode of the answer.
	etag := `"` + u.Revision + "-" + string(mode) + `"`
	if notModified(w, r, etag) {
		return
	}
	w.Header().Set("ETag", etag)
	writeGeoJSON(w, toFeature(*u))
}

// unitChildren: GET /v1/units/{code}/children
func (s *Server) unitChildren(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	f, err := s.unitFilter(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	if _, err := s.store.GetUnit(r.Context(), f.Layer, code, data.GeometryNone); errors.Is(err, data.ErrNotFound) {
		notFound(w, r, fmt.Sprintf("no unit with code %q in layer %q", code, f.Layer))
		return
	} else if err != nil {
		fail(w, r, err)
		return
	}
	f.Parent = code
	s.writeUnits(w, r, f)
}

// importUnits: POST /v1/units:import?repair=&tolerance=&complete=&layer=
func (s *Server) importUnits(w http.ResponseWriter, r *http.Request) {
	defer s.metrics.imported(w, "units")
	s.runImport(w, r, false)
}

// validateUnits: POST /v1/units:validate — the same checks, nothing written.
func (s *Server) validateUnits(w http.ResponseWriter, r *http.Request) { s.runImport(w, r, true) }

func (s *Server) runImport(w http.ResponseWriter, r *http.Request, dryRun bool) {
	q := r.URL.Query()
	opts := data.ImportOptions{DryRun: dryRun, Actor: r.Header.Get("X-Actor"), Reason: q.Get("reason")}
	var err error
	if opts.Repair, err = parseBoolParam(q, "repair"); err != nil {
		fail(w, r, err)
		return
	}
	if opts.Complete, err = parseBoolParam(q, "complete"); err != nil {
		fail(w, r, err)
		return
	}
	if t := q.Get("tolerance"); t != "" {
		if opts.ToleranceM2, err = parseFloatParam(q, "tolerance", 0, 1e12); err != nil {
			fail(w, r, err)
			return
		}
	}
	layer := q.Get("layer")
	if layer != "" && !grid.ValidLayerName(layer) {
		badParam(w, r, "layer", fmt.Sprintf("layer %q: use lower-case letters, digits and _ (at most 32, starting with a letter)", layer))
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxImportBytes)
	features, err := geo.DecodeFeatureCollection(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeProblem(w, r, Problem{Type: probTooLarge, Title: "Body too large", Status: http.StatusRequestEntityTooLarge,
				Detail:     fmt.Sprintf("an import body may hold at most %d bytes", s.opts.MaxImportBytes),
				Extensions: map[string]any{"limit_bytes": s.opts.MaxImportBytes}})
		default:
			writeProblem(w, r, Problem{Type: probBadRequest, Title: "Malformed GeoJSON", Status: http.StatusBadRequest, Detail: err.Error()})
		}
		return
	}
	drafts, bad := grid.DraftsFromFeatures(features, layer)
	rep, err := s.store.ImportUnits(r.Context(), drafts, bad, opts)
	if err != nil {
		fail(w, r, err)
		return
	}
	if !rep.OK() {
		writeProblem(w, r, Problem{Type: probViolations, Title: "Topology or coding rules violated", Status: http.StatusUnprocessableEntity,
			Detail:     fmt.Sprintf("%d violation(s) in %d feature(s); nothing was written", len(rep.Violations), len(features)),
			Extensions: map[string]any{"violations": rep.Violations, "warnings": rep.Warnings, "units": rep.Units}})
		return
	}
	if !dryRun && rep.Inserted+rep.Updated > 0 {
		// Read-your-writes: a locate right after the import sees it.
		if err := s.RefreshLocator(r.Context()); err != nil {
			s.log.Error("refresh locator after import", "err", err)
		}
		// and a tile right after it too.
		s.syncTiles(r.Context())
	}
	status := http.StatusOK
	if rep.Inserted > 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, rep)
}

// topologyIssues: GET /v1/topology/issues?parent=&layer=&tolerance=
func (s *Server) topologyIssues(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	layer, err := s.layerParam(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	var tol float64
	if q.Get("tolerance") != "" {
		if tol, err = parseFloatParam(q, "tolerance", 0, 1e12); err != nil {
			fail(w, r, err)
			return
		}
	}
	parent := q.Get("parent")
	if parent != "" {
		if _, err := s.store.GetUnit(r.Context(), layer, parent, data.GeometryNone); errors.Is(err, data.ErrNotFound) {
			notFound(w, r, fmt.Sprintf("no unit with code %q in layer %q", parent, layer))
			return
		} else if err != nil {
			fail(w, r, err)
			return
		}
	}
	rep, err := s.store.TopologyIssues(r.Context(), layer, parent, tol)
	if err != nil {
		fail(w, r, err)
		return
	}
	issues := append(append([]grid.Violation{}, rep.Violations...), rep.Warnings...)
	writeJSON(w, http.StatusOK, map[string]any{"layer": layer, "parent": parent, "units_checked": rep.Units, "issues": issues, "seconds": roundTo(rep.Seconds, 3)})
}
