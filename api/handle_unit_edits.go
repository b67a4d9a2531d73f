package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// Unit edits (docs/api.md, Editing units): custom methods on units, each
// one checked transaction (data.EditUnits).

const probPreconditionRequired = "https://gridmap.dev/problems/precondition-required"

// editRoutes registers the edit operations.
func (s *Server) editRoutes(r *mux.Router) {
	s.handleWrite(r, "/v1/units/{code}", auth.Edit, s.editUnit(data.OpReshape), http.MethodPut)
	s.handleWrite(r, "/v1/units/{code}:retire", auth.Edit, s.editUnit(data.OpRetire), http.MethodPost)
	s.handleWrite(r, "/v1/units:merge", auth.Edit, s.editUnit(data.OpMerge), http.MethodPost)
	s.handleWrite(r, "/v1/units", auth.Edit, s.editUnit(data.OpCreate), http.MethodPost)
	s.handleWrite(r, "/v1/units/{code}:revert", auth.Edit, s.editUnit(data.OpRevert), http.MethodPost)
	s.handleWrite(r, "/v1/units/{code}:split", auth.Edit, s.editUnit(data.OpSplit), http.MethodPost)
}

// editBody is every member an edit's body may hold: a GeoJSON Feature for
// reshape and create, an object for the rest.
type editBody struct {
	Type       string          `json:"type"`
	ID         any             `json:"id"`
	BBox       []float64       `json:"bbox"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties *struct {
		Name       *string `json:"name"`
		Code       string  `json:"code"`
		ParentCode string  `json:"parent_code"`
		Level      string  `json:"level"`
	} `json:"properties"`
	Reason  *string  `json:"reason"`
	Into    string   `json:"into"`
	Codes   []string `json:"codes"`
	Keep    editKeep `json:"keep"`
	Version int      `json:"version"`
	// A split's line or pieces (handle_unit_split.go).
	Line   json.RawMessage `json:"line"`
	Pieces json.RawMessage `json:"pieces"`
}

// editParams are the query parameters an edit reads; any other is a 400.
var editParams = []string{"reason", "dry_run", "neighbours", "repair", "tolerance", "layer", "crs"}

// editUnit answers one edit operation.
func (s *Server) editUnit(op string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		for k := range q {
			if !slices.Contains(editParams, k) {
				return &paramError{k, fmt.Sprintf("unknown parameter %q: an edit reads %s", geo.Excerpt(k, geo.MaxExcerpt), strings.Join(editParams, ", "))}
			}
		}
		e := data.UnitEdit{Operation: op, Code: mux.Vars(r)["code"]}
		crs, err := crsParam(r)
		if err != nil {
			return err
		}
		if e.Layer, err = s.layerParam(r); err != nil {
			return err
		}
		if e.Layer != grid.BaseLayer {
			// Professional layers' units are an admin's, as on import.
			if err := need(r, auth.Administer); err != nil {
				return err
			}
		}
		if e.DryRun, err = parseBoolParam(q, "dry_run"); err != nil {
			return err
		}
		if e.Repair, err = parseBoolParam(q, "repair"); err != nil {
			return err
		}
		switch n := q.Get("neighbours"); n {
		case "", "keep":
		case "adjust":
			e.Adjust = true
		default:
			return &paramError{"neighbours", fmt.Sprintf("neighbours=%q: use adjust (the siblings give and take the area) or keep (the default: the outline must fit as it is)", geo.Excerpt(n, geo.MaxExcerpt))}
		}
		if q.Get("tolerance") != "" {
			if e.ToleranceM2, err = parseFloatParam(q, "tolerance", 0, 1e12); err != nil {
				return err
			}
		}
		raw, err := readBody(w, r)
		if err != nil {
			return err
		}
		var b editBody
		if len(strings.TrimSpace(string(raw))) > 0 {
			if err := decodeStrict(raw, &b, "a unit edit"); err != nil {
				return err
			}
		}
		e.Reason = q.Get("reason")
		if b.Reason != nil {
			e.Reason = *b.Reason
		}
		if strings.TrimSpace(e.Reason) == "" {
			return &data.InvalidError{Field: "reason", Msg: "an edit records why: send a reason (a body member or ?reason=)"}
		}
		if err := editArgs(op, &b, &e, crs); err != nil {
			return err
		}
		if op != data.OpCreate {
			if e.IfMatch, err = unitPrecondition(r); err != nil {
				return err
			}
		}
		res, err := s.store.EditUnits(r.Context(), e)
		if err != nil {
			return err
		}
		if rep := res.Report; rep != nil && !rep.OK() {
			setContentCRS(w, crs)
			return editViolations(rep, crs)
		}
		if !e.DryRun && (len(res.UnitsWritten) > 0 || len(res.UnitsRetired) > 0) {
			// Read-your-writes, as after an import.
			if err := s.RefreshLocator(r.Context()); err != nil {
				s.log.Error("refresh locator after edit", "err", err)
			}
			s.syncTiles(r.Context())
		}
		status := http.StatusOK
		if op == data.OpCreate && !e.DryRun {
			status = http.StatusCreated
		}
		if err := editResultFromWGS84(res, crs); err != nil {
			return err
		}
		setContentCRS(w, crs)
		writeJSON(w, status, ctJSON, res)
		return nil
	}
}

// editResultFromWGS84 converts what an edit answers with coordinates.
func editResultFromWGS84(res *data.UnitEditResult, crs geo.CRS) error {
	var err error
	if res.ChangedArea, err = geometryFromWGS84(crs, res.ChangedArea); err != nil {
		return err
	}
	if res.UnitsWrittenGeoJSON, err = collectionFromWGS84(crs, res.UnitsWrittenGeoJSON); err != nil {
		return err
	}
	res.Warnings, err = violationsFromWGS84(crs, res.Warnings)
	return err
}

// editArgs moves the body's members into the edit, as the operation reads
// them; positions are read in crs.
func editArgs(op string, b *editBody, e *data.UnitEdit, crs geo.CRS) error {
	feature := op == data.OpReshape || op == data.OpCreate
	if feature {
		if b.Type != "Feature" {
			return &data.InvalidError{Field: "type", Msg: fmt.Sprintf("a %s sends a GeoJSON Feature (\"type\": \"Feature\")", op)}
		}
		if b.Properties != nil {
			e.Name = b.Properties.Name
			if e.Name != nil && strings.TrimSpace(*e.Name) == "" {
				return &data.InvalidError{Field: "name", Msg: "a unit's name cannot be empty"}
			}
		}
		if len(b.Geometry) > 0 && string(b.Geometry) != "null" {
			g, err := geo.DecodeGeometry(b.Geometry, "geometry")
			if err != nil {
				return &data.InvalidError{Field: "geometry", Msg: err.Error()}
			}
			if err := geo.CheckRange(g); err != nil {
				return &data.InvalidError{Field: "geometry", Msg: err.Error() + inCRS(crs)}
			}
			mp, err := geo.MultiPolygonOf(geo.GeometryToWGS84(crs, g))
			if err != nil {
				return &data.InvalidError{Field: "geometry", Msg: err.Error()}
			}
			if e.Geometry, err = geo.EWKB(mp); err != nil {
				return err
			}
		}
		if op == data.OpReshape && e.Geometry == nil && e.Name == nil {
			return &data.InvalidError{Field: "geometry", Msg: "a reshape changes the geometry, properties.name or both: the Feature has neither"}
		}
	} else if b.Type != "" || b.Geometry != nil || b.Properties != nil {
		return &data.InvalidError{Field: "type", Msg: fmt.Sprintf("a %s sends a JSON object (not a Feature): see docs/api.md, Editing units", op)}
	}
	if op != data.OpSplit && (b.Line != nil || b.Pieces != nil) {
		return &data.InvalidError{Field: "line", Msg: fmt.Sprintf("line and pieces are a split's (POST /v1/units/{code}:split), not a %s's", op)}
	}
	switch op {
	case data.OpSplit:
		return splitArgs(b, e, crs)
	case data.OpCreate:
		if b.Properties != nil {
			e.Code, e.Parent = b.Properties.Code, b.Properties.ParentCode
			if b.Properties.Level != "" {
				l, err := grid.ParseLevel(b.Properties.Level)
				if err != nil {
					return &data.InvalidError{Field: "level", Msg: err.Error()}
				}
				e.Level = l
			}
		}
		if e.Parent == "" && e.Code != "" {
			for _, l := range []grid.Level{grid.Street, grid.Community, grid.Grid} {
				if len(e.Code) == l.CodeLen() {
					e.Parent = grid.ParentCode(l, e.Code)
				}
			}
		}
	case data.OpRetire:
		e.Into = b.Into
		if e.Into == "" {
			return &data.InvalidError{Field: "into", Msg: "name the sibling that takes the retired unit's area: {\"into\": code}"}
		}
	case data.OpMerge:
		e.Codes, e.Keep = b.Codes, b.Keep.code
		if b.Keep.index != nil {
			return &data.InvalidError{Field: "keep", Msg: "keep names the code that survives the merge (a string, one of codes)"}
		}
	case data.OpRevert:
		if b.Version <= 0 {
			return &data.InvalidError{Field: "version", Msg: "name the version to go back to: {\"version\": N}"}
		}
		e.Version = b.Version
	}
	return nil
}

// unitPrecondition reads If-Match: the ETags of the units the edit names,
// as GET /v1/units/{code} sends them ("<revision>-<geometry mode>"; any
// mode names the revision). Missing is a 428.
func unitPrecondition(r *http.Request) ([]string, error) {
	tags := entityTags(r, "If-Match")
	if len(tags) == 0 || slices.Contains(tags, "*") {
		return nil, &Problem{Type: probPreconditionRequired, Title: "Precondition required", Status: http.StatusPreconditionRequired,
			Detail: "an edit of units needs If-Match with the ETag of each unit it names, as GET /v1/units/{code} sends it (not *): edits made on a stale map are refused"}
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.Trim(strings.TrimPrefix(t, "W/"), `"`)
		rev, _, _ := strings.Cut(t, "-")
		out = append(out, rev)
	}
	return out, nil
}

// editViolations is the 422 of an edit the rules refuse: the import's
// problem, and the findings again as a GeoJSON FeatureCollection
// (violations_geojson) that QGIS or the editor page can draw as it is.
func editViolations(rep *data.UnitImportReport, crs geo.CRS) error {
	var err error
	if rep.Violations, err = violationsFromWGS84(crs, rep.Violations); err != nil {
		return err
	}
	if rep.Warnings, err = violationsFromWGS84(crs, rep.Warnings); err != nil {
		return err
	}
	ext := map[string]any{"violations": rep.Violations, "warnings": rep.Warnings, "units": rep.Units,
		"violations_geojson": violationFeatures(rep.Violations)}
	if rep.ViolationsTruncated != nil {
		ext["violations_truncated"] = rep.ViolationsTruncated
	}
	return &Problem{Type: probViolations, Title: "Topology or coding rules violated", Status: http.StatusUnprocessableEntity,
		Detail:     fmt.Sprintf("%d violation(s); nothing was written", rep.ViolationCount()),
		Extensions: ext}
}

type violationFeature struct {
	Type       string          `json:"type"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties map[string]any  `json:"properties"`
}

func violationFeatures(vs []grid.Violation) map[string]any {
	fs := make([]violationFeature, 0, len(vs))
	for _, v := range vs {
		g := v.Geometry
		if len(g) == 0 && len(v.Location) == 2 {
			g, _ = json.Marshal(map[string]any{"type": "Point", "coordinates": v.Location})
		}
		if len(g) == 0 {
			g = nullGeometry
		}
		p := map[string]any{"rule": v.Rule, "severity": v.Severity, "message": v.Message, "codes": v.Codes}
		if v.AreaM2 != nil {
			p["area_m2"] = roundTo(*v.AreaM2, 1)
		}
		fs = append(fs, violationFeature{Type: "Feature", Geometry: g, Properties: p})
	}
	return map[string]any{"type": "FeatureCollection", "features": fs}
}
