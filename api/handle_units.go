package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

const (
	defaultListLimit = 1000
	maxListLimit     = 10000
)

type unitFeature struct {
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

var nullGeometry = json.RawMessage("null")

func toUnitFeature(u data.UnitRow) unitFeature {
	g := u.Geometry
	if g == nil {
		g = nullGeometry
	}
	return unitFeature{Type: "Feature", ID: u.Code, Geometry: g, Properties: unitProps{
		Code: u.Code, Name: u.Name, Level: u.Level, ParentCode: u.ParentCode, Layer: u.Layer,
		AreaM2: roundTo(u.AreaM2, 1), Complete: u.Complete, Version: u.Version, ValidFrom: u.ValidFrom,
	}}
}

func roundTo(v float64, decimals int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', decimals, 64), 64)
	return p
}

// unitRoutes registers the unit hierarchy: lists, single units, imports
// and the topology report.
func (s *Server) unitRoutes(r *mux.Router) {
	s.handle(r, "/v1/units", s.listUnits, http.MethodGet)
	s.handleWrite(r, "/v1/units:import", auth.Edit, s.countImport("units", s.importUnits), http.MethodPost)
	s.handle(r, "/v1/units:validate", s.validateUnits, http.MethodPost)
	// Before {code}: "changes" is no unit code.
	s.handle(r, "/v1/units/changes", s.unitChanges, http.MethodGet)
	s.handle(r, "/v1/units/{code}", s.getUnit, http.MethodGet)
	s.handle(r, "/v1/units/{code}/children", s.unitChildren, http.MethodGet)
	s.handle(r, "/v1/units/{code}/history", s.unitHistory, http.MethodGet)
	s.handle(r, "/v1/topology/issues", s.topologyIssues, http.MethodGet)
}

// listUnits: GET /v1/units?level=&parent=&layer=&bbox=&geometry=&limit=&cursor=&as_of=&crs=
func (s *Server) listUnits(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := s.unitFilter(r)
	if err != nil {
		return err
	}
	if f.Level, err = parseLevel(q.Get("level")); err != nil {
		return err
	}
	f.Parent = q.Get("parent")
	if f.BBox, err = parseBBox(q.Get("bbox")); err != nil {
		return crsError(err, f.crs)
	}
	f.BBox = bboxToWGS84(f.crs, f.BBox)
	return s.writeUnits(w, r, f)
}

// unitList is a unit list's filter and the coordinate system of its
// answer.
type unitList struct {
	data.UnitFilter
	crs geo.CRS
}

// unitFilter reads what every unit list shares: layer, geometry, paging,
// as_of, crs.
func (s *Server) unitFilter(r *http.Request) (unitList, error) {
	q := r.URL.Query()
	var f unitList
	var err error
	if f.crs, err = crsParam(r); err != nil {
		return f, err
	}
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
	if f.AsOf, err = s.asOfParam(r); err != nil {
		return f, err
	}
	// Professional layers' codes are their own: a scope names base units,
	// and those layers are read whole, as their tiles are.
	if f.Layer == grid.BaseLayer {
		f.Scopes = readScopes(r)
	}
	return f, nil
}

// writeUnits answers a page of units; a full page links to the next one.
func (s *Server) writeUnits(w http.ResponseWriter, r *http.Request, f unitList) error {
	rows, err := s.store.ListUnits(r.Context(), f.UnitFilter)
	if err != nil {
		return err
	}
	var next string
	if len(rows) == f.Limit {
		next = rows[len(rows)-1].Code
	}
	for i := range rows {
		if rows[i].Geometry, err = geometryFromWGS84(f.crs, rows[i].Geometry); err != nil {
			return err
		}
	}
	setContentCRS(w, f.crs)
	writePage(w, r, rows, toUnitFeature, next)
	return nil
}

// getUnit: GET /v1/units/{code}?layer=&geometry=&as_of=&crs=, with an ETag;
// If-None-Match gives a 304.
func (s *Server) getUnit(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	layer, err := s.layerParam(r)
	if err != nil {
		return err
	}
	mode, err := parseGeometryMode(r.URL.Query().Get("geometry"), data.GeometryFull)
	if err != nil {
		return err
	}
	asOf, err := s.asOfParam(r)
	if err != nil {
		return err
	}
	if layer == grid.BaseLayer {
		if err := needRead(r, code); err != nil {
			return err
		}
	}
	u, err := s.store.GetUnitAsOf(r.Context(), layer, code, mode, asOf)
	if err != nil {
		return notFoundAs(err, "no unit with code %q in layer %q%s", code, layer, atInstant(asOf))
	}
	// A unit's ETag follows its version (every changing import makes a
	// new one) and the geometry mode of the answer. Not the crs: an ETag
	// belongs to its URL, which has the crs in it, and an edit's If-Match
	// reads the revision only.
	etag := `"` + u.Revision + "-" + string(mode) + `"`
	if notModified(w, r, etag) {
		return nil
	}
	if u.Geometry, err = geometryFromWGS84(crs, u.Geometry); err != nil {
		return err
	}
	w.Header().Set("ETag", etag)
	setContentCRS(w, crs)
	writeJSON(w, http.StatusOK, ctGeoJSON, toUnitFeature(*u))
	return nil
}

// unitExists checks that code names a current unit of layer (a 404
// otherwise).
func (s *Server) unitExists(r *http.Request, layer, code string) error {
	return s.unitExistsAt(r, layer, code, nil)
}

// unitExistsAt checks that code named a unit of layer at asOf (now when
// nil; a 404 otherwise).
func (s *Server) unitExistsAt(r *http.Request, layer, code string, asOf *time.Time) error {
	_, err := s.store.GetUnitAsOf(r.Context(), layer, code, data.GeometryNone, asOf)
	return notFoundAs(err, "no unit with code %q in layer %q%s", code, layer, atInstant(asOf))
}

// atInstant names an as_of instant in a message ("" for now).
func atInstant(asOf *time.Time) string {
	if asOf == nil {
		return ""
	}
	return " as of " + asOf.Format(time.RFC3339Nano)
}

// unitChildren: GET /v1/units/{code}/children?layer=&geometry=&limit=&cursor=&as_of=&crs=
func (s *Server) unitChildren(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	f, err := s.unitFilter(r)
	if err != nil {
		return err
	}
	if err := s.unitExistsAt(r, f.Layer, code, f.AsOf); err != nil {
		return err
	}
	f.Parent = code
	return s.writeUnits(w, r, f)
}

// importUnits: POST /v1/units:import?repair=&tolerance=&complete=&layer=
func (s *Server) importUnits(w http.ResponseWriter, r *http.Request) error {
	return s.checkAndImportUnits(w, r, false)
}

// validateUnits: POST /v1/units:validate — the same checks, nothing written.
func (s *Server) validateUnits(w http.ResponseWriter, r *http.Request) error {
	return s.checkAndImportUnits(w, r, true)
}

// checkAndImportUnits reads a FeatureCollection of units, checks it, and
// unless dryRun writes it.
func (s *Server) checkAndImportUnits(w http.ResponseWriter, r *http.Request, dryRun bool) error {
	q := r.URL.Query()
	if len(r.Header.Values("X-Actor")) > 0 {
		return &paramError{"X-Actor", "X-Actor is not read: who writes is the credential's identity (Authorization), never a header; leave it out"}
	}
	opts := data.UnitImportOptions{DryRun: dryRun, Reason: q.Get("reason")}
	if id := identityOf(r); id != nil {
		opts.Actor = id.Actor
	}
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	if opts.Repair, err = parseBoolParam(q, "repair"); err != nil {
		return err
	}
	if opts.Complete, err = parseBoolParam(q, "complete"); err != nil {
		return err
	}
	if q.Get("tolerance") != "" {
		if opts.ToleranceM2, err = parseFloatParam(q, "tolerance", 0, 1e12); err != nil {
			return err
		}
	}
	if opts.MaxFindings, err = parseIntParam(q, "max_violations", data.DefaultMaxFindings, 1, maxListLimit); err != nil {
		return err
	}
	layer := q.Get("layer")
	if layer != "" && !grid.ValidLayerName(layer) {
		return &paramError{"layer", fmt.Sprintf("layer %q: use lower-case letters, digits and _ (at most 32, starting with a letter)", geo.Excerpt(layer, geo.MaxExcerpt))}
	}
	raw, err := readBodyMax(w, r, s.opts.MaxImportBytes)
	if errors.As(err, new(*http.MaxBytesError)) {
		return tooLarge("an import body", s.opts.MaxImportBytes, "")
	}
	if err != nil {
		return err
	}
	features, err := geo.ParseFeatureCollection(raw)
	if err != nil {
		return badRequest("Malformed GeoJSON", err.Error())
	}
	if err := featuresToWGS84(crs, features); err != nil {
		return err
	}
	drafts, bad := grid.DraftsFromFeatures(features, layer)
	if !dryRun {
		if err := needUnits(r, drafts); err != nil {
			return err
		}
	}
	rep, err := s.store.ImportUnits(r.Context(), drafts, bad, opts)
	if err != nil {
		return err
	}
	if rep.Violations, err = violationsFromWGS84(crs, rep.Violations); err != nil {
		return err
	}
	if rep.Warnings, err = violationsFromWGS84(crs, rep.Warnings); err != nil {
		return err
	}
	setContentCRS(w, crs)
	if !rep.OK() {
		ext := map[string]any{"violations": rep.Violations, "warnings": rep.Warnings, "units": rep.Units}
		if rep.ViolationsTruncated != nil {
			ext["violations_truncated"] = rep.ViolationsTruncated
		}
		if rep.WarningsTruncated != nil {
			ext["warnings_truncated"] = rep.WarningsTruncated
		}
		return &Problem{Type: probViolations, Title: "Topology or coding rules violated", Status: http.StatusUnprocessableEntity,
			Detail:     fmt.Sprintf("%d violation(s) in %d feature(s); nothing was written", rep.ViolationCount(), len(features)),
			Extensions: ext}
	}
	if !dryRun && rep.Inserted+rep.Updated > 0 {
		// Read-your-writes: a locate right after the import sees it.
		if err := s.RefreshLocator(r.Context()); err != nil {
			s.log.Error("refresh locator after import", "err", err)
		}
		// and a tile right after it too.
		s.syncTiles(r.Context())
	}
	writeJSON(w, createdOr(rep.Inserted > 0), ctJSON, rep)
	return nil
}

// topologyIssues: GET /v1/topology/issues?parent=&layer=&tolerance=
func (s *Server) topologyIssues(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	layer, err := s.layerParam(r)
	if err != nil {
		return err
	}
	var tol float64
	if q.Get("tolerance") != "" {
		if tol, err = parseFloatParam(q, "tolerance", 0, 1e12); err != nil {
			return err
		}
	}
	parent := q.Get("parent")
	if layer == grid.BaseLayer {
		// A scoped reader checks its own subtree: without a parent the
		// whole layer would be read.
		if err := needRead(r, parent); err != nil {
			return err
		}
	}
	if parent != "" {
		if err := s.unitExists(r, layer, parent); err != nil {
			return err
		}
	}
	rep, err := s.store.TopologyIssues(r.Context(), layer, parent, tol)
	if err != nil {
		return err
	}
	issues := append(append([]grid.Violation{}, rep.Violations...), rep.Warnings...)
	out := map[string]any{"layer": layer, "parent": parent, "units_checked": rep.Units, "issues": issues, "seconds": roundTo(rep.Seconds, 3)}
	if left := mergeCounts(rep.ViolationsTruncated, rep.WarningsTruncated); left != nil {
		out["issues_truncated"] = left
	}
	writeJSON(w, http.StatusOK, ctJSON, out)
	return nil
}

// mergeCounts adds counts by rule; nil when there are none.
func mergeCounts(ms ...map[string]int) map[string]int {
	var out map[string]int
	for _, m := range ms {
		for k, n := range m {
			if out == nil {
				out = map[string]int{}
			}
			out[k] += n
		}
	}
	return out
}

// needUnits checks that the caller may write every unit of an import: an
// editor's scope covers a base unit by its code (a child's code starts
// with its parent's, and a child lies inside its parent, so a unit in
// scope stays in scope whatever its new outline); the units of other
// layers (professional grids, whose codes are their own) are an admin's.
func needUnits(r *http.Request, drafts []grid.Draft) error {
	codes := make([]string, 0, len(drafts))
	for _, d := range drafts {
		if d.Layer != grid.BaseLayer {
			if err := need(r, auth.Administer); err != nil {
				return err
			}
			continue
		}
		codes = append(codes, d.Code)
	}
	return need(r, auth.Edit, codes...)
}
