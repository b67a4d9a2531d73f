package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// objectRoutes registers the managed-object API: the class catalogue,
// single objects, spatial queries, statistics and bulk import.
func (s *Server) objectRoutes(r *mux.Router) {
	s.handleWrite(r, "/v1/objects:import", auth.Edit, s.countImport("objects", s.importObjects), http.MethodPost)
	s.handle(r, "/v1/classes", s.listClasses, http.MethodGet)
	s.handleWrite(r, "/v1/classes", auth.Administer, s.addClass, http.MethodPost)
	s.handle(r, "/v1/objects", s.listObjects, http.MethodGet)
	s.handleWrite(r, "/v1/objects", auth.Edit, s.createObject, http.MethodPost)
	// Before {code}: "unassigned" is no object code (none fits a class).
	s.handle(r, "/v1/objects/unassigned", s.unassignedObjects, http.MethodGet)
	s.handle(r, "/v1/objects/{code}", s.getObject, http.MethodGet)
	s.handleWrite(r, "/v1/objects/{code}", auth.Edit, s.putObject, http.MethodPut)
	s.handleWrite(r, "/v1/objects/{code}", auth.Edit, s.deleteObject, http.MethodDelete)
	s.handle(r, "/v1/stats/{code}", s.stats, http.MethodGet)
}

type objectProps struct {
	Code          string          `json:"code"`
	Class         string          `json:"class"`
	ClassName     string          `json:"class_name"`
	Attrs         json.RawMessage `json:"attrs"`
	GridCode      *string         `json:"grid_code"`
	CommunityCode *string         `json:"community_code"`
	StreetCode    *string         `json:"street_code"`
	DistrictCode  *string         `json:"district_code"`
	CreatedAt     string          `json:"created_at"`
	UpdatedAt     string          `json:"updated_at"`
	UpdatedBy     string          `json:"updated_by"`
	DistanceM     *float64        `json:"distance_m,omitempty"`
}

type objectFeature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties objectProps     `json:"properties"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toObjectFeature(o data.ObjectRow) objectFeature {
	p := objectProps{
		Code: o.Code, Class: o.Class, ClassName: o.ClassName, Attrs: o.Attrs,
		GridCode: nullable(o.Grid), CommunityCode: nullable(o.Community), StreetCode: nullable(o.Street), DistrictCode: nullable(o.District),
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, UpdatedBy: o.UpdatedBy,
	}
	if o.Distance != nil {
		d := roundTo(*o.Distance, 3)
		p.DistanceM = &d
	}
	return objectFeature{Type: "Feature", ID: o.Code, Geometry: o.GeoJSON, Properties: p}
}

// listClasses: GET /v1/classes
func (s *Server) listClasses(w http.ResponseWriter, r *http.Request) error {
	classes, err := s.store.Classes(r.Context())
	if err != nil {
		return err
	}
	out := make([]grid.Class, 0, len(classes))
	for _, c := range classes {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b grid.Class) int { return strings.Compare(a.Code, b.Code) })
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"classes": out})
	return nil
}

// addClass: POST /v1/classes {"code","kind","major","major_name","minor","name","geometry_types"}
func (s *Server) addClass(w http.ResponseWriter, r *http.Request) error {
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	var c grid.Class
	if err := decodeJSON(raw, &c, "a class object"); err != nil {
		return err
	}
	if err := s.store.AddClass(r.Context(), c); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/classes")
	writeJSON(w, http.StatusCreated, ctJSON, c)
	return nil
}

// objectFromBody reads a GeoJSON Feature with properties code, class and
// attrs, its geometry given in crs.
func objectFromBody(w http.ResponseWriter, r *http.Request, crs geo.CRS) (*grid.Object, error) {
	raw, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	var in struct {
		Type       string          `json:"type"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties struct {
			Code  string          `json:"code"`
			Class string          `json:"class"`
			Attrs json.RawMessage `json:"attrs"`
		} `json:"properties"`
	}
	const want = `a GeoJSON Feature {"type":"Feature","geometry":…,"properties":{"code":…,"class":…,"attrs":{…}}}`
	if err := decodeJSON(raw, &in, want); err != nil {
		return nil, err
	}
	if in.Type != "Feature" {
		return nil, badRequest("Not a GeoJSON Feature", fmt.Sprintf("type is %q, want %s", in.Type, want))
	}
	o := &grid.Object{Code: in.Properties.Code, Class: in.Properties.Class, Attrs: in.Properties.Attrs}
	if t := bytes.TrimSpace(o.Attrs); bytes.Equal(t, []byte("null")) {
		o.Attrs = nil
	}
	if g := bytes.TrimSpace(in.Geometry); len(g) > 0 && !bytes.Equal(g, []byte("null")) {
		geom, err := geo.DecodeGeometry(g, "geometry")
		if err != nil {
			return nil, invalidMember("geometry", err.Error())
		}
		if crs != geo.WGS84 {
			// Checked as sent, so the message names the system; the
			// store checks the converted geometry again.
			if err := geo.CheckRange(geom); err != nil {
				return nil, invalidMember("geometry", err.Error()+inCRS(crs))
			}
		}
		o.Geometry = geo.GeometryToWGS84(crs, geom)
	}
	return o, nil
}

// writeObject answers a stored object with its ETag, its geometry in crs.
// The ETag is the object's whatever the crs: it belongs to the URL, which
// has the crs in it, and a PUT's If-Match compares it with the stored one.
func writeObject(w http.ResponseWriter, status int, o *data.ObjectRow, crs geo.CRS) error {
	var err error
	if o.GeoJSON, err = geometryFromWGS84(crs, o.GeoJSON); err != nil {
		return err
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", "/v1/objects/"+url.PathEscape(o.Code))
	}
	w.Header().Set("ETag", o.ETag)
	setContentCRS(w, crs)
	writeJSON(w, status, ctGeoJSON, toObjectFeature(*o))
	return nil
}

// objectsFromWGS84 converts the geometry of a page of objects.
func objectsFromWGS84(crs geo.CRS, rows []data.ObjectRow) error {
	for i := range rows {
		var err error
		if rows[i].GeoJSON, err = geometryFromWGS84(crs, rows[i].GeoJSON); err != nil {
			return err
		}
	}
	return nil
}

// createObject: POST /v1/objects?crs= with a GeoJSON Feature.
func (s *Server) createObject(w http.ResponseWriter, r *http.Request) error {
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	o, err := objectFromBody(w, r, crs)
	if err != nil {
		return err
	}
	if err := s.store.CreateObject(r.Context(), o); err != nil {
		return err
	}
	s.syncTiles(r.Context())
	row, err := s.store.GetObject(r.Context(), o.Code)
	if err != nil {
		return notFoundAs(err, "no object with code %q", o.Code)
	}
	return writeObject(w, http.StatusCreated, row, crs)
}

// getObject: GET /v1/objects/{code}?crs=, honouring If-None-Match (304).
func (s *Server) getObject(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	o, err := s.store.GetObject(r.Context(), code)
	if err != nil {
		return notFoundAs(err, "no object with code %q", code)
	}
	if err := needRead(r, o.Grid); err != nil {
		return err
	}
	if notModified(w, r, o.ETag) {
		return nil
	}
	return writeObject(w, http.StatusOK, o, crs)
}

// putObject: PUT /v1/objects/{code} replaces an object; a moved one is
// assigned again. With If-Match the object must still have that ETag (412
// otherwise), checked atomically with the write. An unknown code is a 404
// (RFC 9110 §13.2.1: the answer without the precondition wins).
func (s *Server) putObject(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	o, err := objectFromBody(w, r, crs)
	if err != nil {
		return err
	}
	if err := samePathCode(&o.Code, code, "; an object's code cannot change"); err != nil {
		return err
	}
	row, err := s.store.ReplaceObject(r.Context(), o, entityTags(r, "If-Match"))
	if err != nil {
		return notFoundAs(err, "no object with code %q (create it with POST /v1/objects)", code)
	}
	s.syncTiles(r.Context())
	return writeObject(w, http.StatusOK, row, crs)
}

// deleteObject: DELETE /v1/objects/{code}, honouring If-Match like PUT.
func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	if err := s.store.DeleteObjectIf(r.Context(), code, entityTags(r, "If-Match")); err != nil {
		return notFoundAs(err, "no object with code %q", code)
	}
	s.syncTiles(r.Context())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseLonLat reads "lon,lat".
func parseLonLat(q url.Values, name string) (*[2]float64, error) {
	s := q.Get(name)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return nil, &paramError{name, fmt.Sprintf("%s=%q: want lon,lat", name, geo.Excerpt(s, geo.MaxExcerpt))}
	}
	var p [2]float64
	for i, part := range parts {
		v, ok := geo.ParseNumber(part)
		if !ok {
			return nil, &paramError{name, fmt.Sprintf("%s value %d (%q) is not a number", name, i+1, geo.Excerpt(part, geo.MaxExcerpt))}
		}
		p[i] = v
	}
	if !(p[0] >= -180 && p[0] <= 180) {
		return nil, &paramError{name, fmt.Sprintf("%s: longitude %g is out of range [-180, 180]", name, p[0])}
	}
	if !(p[1] >= -90 && p[1] <= 90) {
		return nil, &paramError{name, fmt.Sprintf("%s: latitude %g is out of range [-90, 90]", name, p[1])}
	}
	return &p, nil
}

// classParam checks class= against the catalogue, so a typo is a 400, not
// an empty answer.
func (s *Server) classParam(r *http.Request) (string, error) {
	class := r.URL.Query().Get("class")
	if class == "" {
		return "", nil
	}
	classes, err := s.store.Classes(r.Context())
	if err != nil {
		return "", err
	}
	if _, ok := classes[class]; !ok {
		return "", &paramError{"class", fmt.Sprintf("unknown class %q (GET /v1/classes lists them)", geo.Excerpt(class, geo.MaxExcerpt))}
	}
	return class, nil
}

// objectFilter reads the query of GET /v1/objects; bbox, near and nearest
// are read in crs.
func (s *Server) objectFilter(r *http.Request, crs geo.CRS) (data.ObjectFilter, error) {
	q := r.URL.Query()
	f := data.ObjectFilter{Scopes: readScopes(r)}
	var err error
	var given []string
	for _, name := range []string{"bbox", "within", "near", "nearest"} {
		if q.Get(name) != "" {
			given = append(given, name)
		}
	}
	if q.Get("radius") != "" && q.Get("near") == "" {
		return f, &paramError{"radius", "radius goes with near=lon,lat"}
	}
	if q.Get("k") != "" && q.Get("nearest") == "" {
		return f, &paramError{"k", "k goes with nearest=lon,lat"}
	}
	if len(given) != 1 {
		param := strings.Join(given, ",")
		if param == "" {
			param = "bbox,within,near,nearest"
		}
		return f, &paramError{param, fmt.Sprintf("give exactly one of bbox=minLon,minLat,maxLon,maxLat, within=<unit code>, near=lon,lat&radius=<m> and nearest=lon,lat&k=<n>; got %d", len(given))}
	}
	if f.BBox, err = parseBBox(q.Get("bbox")); err != nil {
		return f, crsError(err, crs)
	}
	f.BBox = bboxToWGS84(crs, f.BBox)
	if f.Within = q.Get("within"); f.Within != "" {
		if _, err := s.store.GetUnit(r.Context(), grid.BaseLayer, f.Within, data.GeometryNone); errors.Is(err, data.ErrNotFound) {
			return f, &paramError{"within", fmt.Sprintf("within=%q: no unit with this code", f.Within)}
		} else if err != nil {
			return f, err
		}
	}
	if f.Near, err = parseLonLat(q, "near"); err != nil {
		return f, crsError(err, crs)
	}
	f.Near = pointToWGS84(crs, f.Near)
	if f.Near != nil {
		if q.Get("radius") == "" {
			return f, &paramError{"radius", "near=lon,lat needs radius=<metres>"}
		}
		if f.Radius, err = parseFloatParam(q, "radius", 0, data.MaxRadiusM); err != nil {
			return f, err
		}
		if f.Radius == 0 {
			return f, &paramError{"radius", fmt.Sprintf("radius=%s: the radius must be more than 0 metres", q.Get("radius"))}
		}
	}
	if f.Nearest, err = parseLonLat(q, "nearest"); err != nil {
		return f, crsError(err, crs)
	}
	f.Nearest = pointToWGS84(crs, f.Nearest)
	if f.Nearest != nil {
		if q.Get("k") == "" {
			return f, &paramError{"k", "nearest=lon,lat needs k=<number of objects>"}
		}
		if f.K, err = parseIntParam(q, "k", 0, 1, data.MaxNearestK); err != nil {
			return f, err
		}
	}
	if f.Class, err = s.classParam(r); err != nil {
		return f, err
	}
	if f.Limit, err = parseIntParam(q, "limit", data.DefaultObjectLimit, 1, data.MaxObjectLimit); err != nil {
		return f, err
	}
	f.Cursor = q.Get("cursor")
	return f, nil
}

// listObjects: GET /v1/objects?bbox=|within=|near=&radius=|nearest=&k= [&class=&limit=&cursor=&crs=]
func (s *Server) listObjects(w http.ResponseWriter, r *http.Request) error {
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	f, err := s.objectFilter(r, crs)
	if err != nil {
		return err
	}
	p, err := s.store.ListObjects(r.Context(), f)
	if err != nil {
		return err
	}
	if err := objectsFromWGS84(crs, p.Objects); err != nil {
		return err
	}
	setContentCRS(w, crs)
	writePage(w, r, p.Objects, toObjectFeature, p.Next)
	return nil
}

// unassignedObjects: GET /v1/objects/unassigned?limit=&cursor=&crs=
func (s *Server) unassignedObjects(w http.ResponseWriter, r *http.Request) error {
	if err := needRead(r, ""); err != nil {
		return err
	}
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	limit, err := parseIntParam(r.URL.Query(), "limit", data.DefaultObjectLimit, 1, data.MaxObjectLimit)
	if err != nil {
		return err
	}
	p, err := s.store.UnassignedObjects(r.Context(), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	if err := objectsFromWGS84(crs, p.Objects); err != nil {
		return err
	}
	setContentCRS(w, crs)
	writePage(w, r, p.Objects, toObjectFeature, p.Next)
	return nil
}

// stats: GET /v1/stats/{code}?of=objects|events&by=…&from=&to=[&f=json|csv|xlsx].
// Without of=, by=status or a time range means events (objects have
// neither), anything else objects.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	if err := needRead(r, mux.Vars(r)["code"]); err != nil {
		return err
	}
	q := r.URL.Query()
	of := q.Get("of")
	if of == "" {
		of = "objects"
		if q.Get("by") == "status" || q.Has("from") || q.Has("to") {
			of = "events"
		}
	}
	switch of {
	case "objects":
		return s.objectStats(w, r)
	case "events":
		return s.eventStats(w, r)
	}
	return &paramError{"of", fmt.Sprintf("of=%q: statistics are of objects or events", of)}
}

// eventStats: GET /v1/stats/{code}?of=events&by=status|class&from=&to=
func (s *Server) eventStats(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	q := r.URL.Query()
	by := q.Get("by")
	if by == "" {
		by = "status"
	}
	cfg, err := s.store.EventConfig(r.Context())
	if err != nil {
		return err
	}
	from, to, err := periodParams(q, cfg)
	if err != nil {
		return err
	}
	format, err := statsFormat(r)
	if err != nil {
		return err
	}
	st, err := s.store.EventStats(r.Context(), code, by, from, to)
	if err != nil {
		return notFoundAs(err, "no unit with code %q in layer %q", code, grid.BaseLayer)
	}
	if format != "json" {
		return s.writeStatsTable(w, r, format, "events", code, eventStatsTable(st))
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"of": "events", "by": st.By, "from": st.From, "to": st.To, "unit": st.Unit, "children": st.Children})
	return nil
}

// objectStats: GET /v1/stats/{code}?by=class
func (s *Server) objectStats(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	by := r.URL.Query().Get("by")
	if by == "" {
		by = "class"
	}
	if by != "class" {
		return &paramError{"by", fmt.Sprintf("by=%q: objects are counted by class (by=class)", by)}
	}
	format, err := statsFormat(r)
	if err != nil {
		return err
	}
	st, err := s.store.Stats(r.Context(), code)
	if err != nil {
		return notFoundAs(err, "no unit with code %q in layer %q", code, grid.BaseLayer)
	}
	if format != "json" {
		return s.writeStatsTable(w, r, format, "objects", code, objectStatsTable(st))
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"of": "objects", "unit": st.Unit, "children": st.Children, "by": by})
	return nil
}
