package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/paulmach/orb/geojson"

	"gridmap/data"
	"gridmap/grid"
)

// objectRoutes registers the managed-object API: the class catalogue,
// single objects, spatial queries, statistics and bulk import.
func (s *Server) objectRoutes(r *mux.Router) {
	r.HandleFunc("/v1/objects:import", s.importObjects).Methods(http.MethodPost)
	r.HandleFunc("/v1/classes", s.listClasses).Methods(http.MethodGet)
	r.HandleFunc("/v1/classes", s.addClass).Methods(http.MethodPost)
	r.HandleFunc("/v1/objects", s.listObjects).Methods(http.MethodGet)
	r.HandleFunc("/v1/objects", s.createObject).Methods(http.MethodPost)
	// Before {code}: "unassigned" is no object code (none fits a class).
	r.HandleFunc("/v1/objects/unassigned", s.unassignedObjects).Methods(http.MethodGet)
	r.HandleFunc("/v1/objects/{code}", s.getObject).Methods(http.MethodGet)
	r.HandleFunc("/v1/objects/{code}", s.putObject).Methods(http.MethodPut)
	r.HandleFunc("/v1/objects/{code}", s.deleteObject).Methods(http.MethodDelete)
	r.HandleFunc("/v1/stats/{code}", s.stats).Methods(http.MethodGet)
}

// Problem types of the object API (docs/api.md, Objects).
const (
	probInvalid  = "https://gridmap.dev/problems/invalid"
	probConflict = "https://gridmap.dev/problems/conflict"
)

// maxObjectBodyBytes caps the body of a single object or class.
const maxObjectBodyBytes = 1 << 20

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
	DistanceM     *float64        `json:"distance_m,omitempty"`
}

type objectFeature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties objectProps     `json:"properties"`
}

type objectCollection struct {
	Type           string          `json:"type"`
	Features       []objectFeature `json:"features"`
	NumberReturned int             `json:"numberReturned"`
	Links          []link          `json:"links,omitempty"`
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
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	}
	if o.Distance != nil {
		d := roundTo(*o.Distance, 3)
		p.DistanceM = &d
	}
	return objectFeature{Type: "Feature", ID: o.Code, Geometry: o.GeoJSON, Properties: p}
}

func writeGeoJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/geo+json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// objectFail answers the errors of the object store: rule violations as
// 422 naming the member, a taken code as 409, a bad filter as 400.
func objectFail(w http.ResponseWriter, r *http.Request, err error) {
	var inv *data.InvalidError
	var fe *data.FilterError
	switch {
	case errors.As(err, &inv):
		writeProblem(w, r, Problem{Type: probInvalid, Title: "Invalid " + inv.Field, Status: http.StatusUnprocessableEntity,
			Param: inv.Field, Detail: inv.Msg})
	case errors.As(err, &fe):
		badParam(w, r, fe.Param, fe.Msg)
	case errors.Is(err, data.ErrExists):
		writeProblem(w, r, Problem{Type: probConflict, Title: "Already exists", Status: http.StatusConflict, Detail: err.Error()})
	default:
		fail(w, r, err)
	}
}

// readBody reads a request body of at most maxObjectBodyBytes; on failure
// it has answered (413 or 400) and returns nil.
func readBody(w http.ResponseWriter, r *http.Request) []byte {
	return readBodyMax(w, r, maxObjectBodyBytes)
}

// readBodyMax reads a request body of at most limit bytes; on failure it
// has answered (413 or 400) and returns nil.
func readBodyMax(w http.ResponseWriter, r *http.Request, limit int64) []byte {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeProblem(w, r, Problem{Type: probTooLarge, Title: "Body too large", Status: http.StatusRequestEntityTooLarge,
				Detail:     fmt.Sprintf("the body may hold at most %d bytes", limit),
				Extensions: map[string]any{"limit_bytes": limit}})
			return nil
		}
		writeProblem(w, r, Problem{Type: probBadRequest, Title: "Unreadable body", Status: http.StatusBadRequest, Detail: err.Error()})
		return nil
	}
	return raw
}

// decodeJSON unmarshals a body; on failure it has answered: malformed JSON
// is a 400, a member of the wrong JSON type a 422 naming it.
func decodeJSON(w http.ResponseWriter, r *http.Request, raw []byte, v any, want string) bool {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return true
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		field := strings.TrimPrefix(te.Field, "properties.")
		writeProblem(w, r, Problem{Type: probInvalid, Title: "Invalid " + field, Status: http.StatusUnprocessableEntity, Param: field,
			Detail: fmt.Sprintf("%s is a JSON %s, want %s", te.Field, te.Value, jsonTypeName(te.Type.Kind().String()))})
		return false
	}
	writeProblem(w, r, Problem{Type: probBadRequest, Title: "Malformed JSON", Status: http.StatusBadRequest,
		Detail: fmt.Sprintf("want %s: %v", want, err)})
	return false
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// listClasses: GET /v1/classes
func (s *Server) listClasses(w http.ResponseWriter, r *http.Request) {
	classes, err := s.store.Classes(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	out := make([]grid.Class, 0, len(classes))
	for _, c := range classes {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b grid.Class) int { return strings.Compare(a.Code, b.Code) })
	writeJSON(w, http.StatusOK, map[string]any{"classes": out})
}

// addClass: POST /v1/classes {"code","kind","major","major_name","minor","name","geometry_types"}
func (s *Server) addClass(w http.ResponseWriter, r *http.Request) {
	raw := readBody(w, r)
	if raw == nil {
		return
	}
	var c grid.Class
	if !decodeJSON(w, r, raw, &c, "a class object") {
		return
	}
	if err := s.store.AddClass(r.Context(), c); err != nil {
		objectFail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/classes")
	writeJSON(w, http.StatusCreated, c)
}

// objectFromBody reads a GeoJSON Feature with properties code, class and
// attrs; on failure it has answered and returns nil.
func objectFromBody(w http.ResponseWriter, r *http.Request) *grid.Object {
	raw := readBody(w, r)
	if raw == nil {
		return nil
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
	if !decodeJSON(w, r, raw, &in, want) {
		return nil
	}
	if in.Type != "Feature" {
		writeProblem(w, r, Problem{Type: probBadRequest, Title: "Not a GeoJSON Feature", Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("type is %q, want %s", in.Type, want)})
		return nil
	}
	o := &grid.Object{Code: in.Properties.Code, Class: in.Properties.Class, Attrs: in.Properties.Attrs}
	if t := bytes.TrimSpace(o.Attrs); bytes.Equal(t, []byte("null")) {
		o.Attrs = nil
	}
	if g := bytes.TrimSpace(in.Geometry); len(g) > 0 && !bytes.Equal(g, []byte("null")) {
		geom, err := geojson.UnmarshalGeometry(g)
		if err != nil {
			objectFail(w, r, &data.InvalidError{Field: "geometry", Msg: fmt.Sprintf("geometry: %v", err)})
			return nil
		}
		if geom.Coordinates == nil {
			objectFail(w, r, &data.InvalidError{Field: "geometry", Msg: fmt.Sprintf("geometry type %q is not supported: use %s", geom.Type, strings.Join(grid.GeometryTypeNames, ", "))})
			return nil
		}
		o.Geometry = geom.Coordinates
	}
	return o
}

// writeObject answers the stored object.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, status int, code string) {
	o, err := s.store.GetObject(r.Context(), code)
	if errors.Is(err, data.ErrNotFound) {
		notFound(w, r, fmt.Sprintf("no object with code %q", code))
		return
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	s.writeObjectRow(w, r, status, o)
}

// writeObjectRow answers a stored object with its ETag.
func (s *Server) writeObjectRow(w http.ResponseWriter, r *http.Request, status int, o *data.ObjectRow) {
	if status == http.StatusCreated {
		w.Header().Set("Location", "/v1/objects/"+url.PathEscape(o.Code))
	}
	w.Header().Set("ETag", o.ETag)
	writeGeoJSONStatus(w, status, toObjectFeature(*o))
}

// entityTags reads the entity-tags of an If-Match or If-None-Match header
// (RFC 9110 §13.1): a comma-separated list of "tag", W/"tag" or *, over
// any number of header lines. A malformed entry is kept as it is, so it
// matches nothing. No header (or an empty one) gives nil.
func entityTags(r *http.Request, name string) []string {
	var out []string
	for _, v := range r.Header.Values(name) {
		for v != "" {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			var tag string
			if q := strings.IndexByte(v, '"'); q == 0 || (q == 2 && strings.HasPrefix(v, "W/")) {
				if end := strings.IndexByte(v[q+1:], '"'); end >= 0 {
					tag, v = v[:q+1+end+1], v[q+1+end+1:]
				}
			}
			if tag == "" { // * or malformed: up to the next comma
				tag, v, _ = strings.Cut(v, ",")
				tag = strings.TrimRight(tag, " \t")
			}
			out = append(out, tag)
		}
	}
	return out
}

// notModified reports whether If-None-Match names etag (weak comparison,
// or *), so a GET answers 304; it has then answered.
func notModified(w http.ResponseWriter, r *http.Request, etag string) bool {
	for _, t := range entityTags(r, "If-None-Match") {
		if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			w.Header().Set("ETag", etag)
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

// writeFailed answers the errors of a conditional write: an unknown code
// is a 404 (RFC 9110 §13.2.1: the answer without the precondition wins),
// a failed If-Match a 412 naming the current ETag.
func writeFailed(w http.ResponseWriter, r *http.Request, code, hint string, err error) {
	var stale *data.StaleError
	switch {
	case errors.Is(err, data.ErrNotFound):
		notFound(w, r, fmt.Sprintf("no object with code %q%s", code, hint))
	case errors.As(err, &stale):
		writeProblem(w, r, Problem{Type: probStale, Title: "Stale version", Status: http.StatusPreconditionFailed,
			Detail: fmt.Sprintf("object %s has changed since the version named in If-Match: its current ETag is %s; GET it again, reapply the change and send If-Match: %s",
				stale.Code, stale.Current, stale.Current),
			Extensions: map[string]any{"etag": stale.Current}})
	default:
		objectFail(w, r, err)
	}
}

// createObject: POST /v1/objects with a GeoJSON Feature.
func (s *Server) createObject(w http.ResponseWriter, r *http.Request) {
	o := objectFromBody(w, r)
	if o == nil {
		return
	}
	if err := s.store.CreateObject(r.Context(), o); err != nil {
		objectFail(w, r, err)
		return
	}
	s.syncTiles(r.Context())
	s.writeObject(w, r, http.StatusCreated, o.Code)
}

// getObject: GET /v1/objects/{code}, honouring If-None-Match (304).
func (s *Server) getObject(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	o, err := s.store.GetObject(r.Context(), code)
	if errors.Is(err, data.ErrNotFound) {
		notFound(w, r, fmt.Sprintf("no object with code %q", code))
		return
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	if notModified(w, r, o.ETag) {
		return
	}
	s.writeObjectRow(w, r, http.StatusOK, o)
}

// putObject: PUT /v1/objects/{code} replaces an object; a moved one is
// assigned again. With If-Match the object must still have that ETag (412
// otherwise), checked atomically with the write.
func (s *Server) putObject(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	o := objectFromBody(w, r)
	if o == nil {
		return
	}
	if o.Code == "" {
		o.Code = code
	}
	if o.Code != code {
		badParam(w, r, "code", fmt.Sprintf("the body's code %q differs from the path's %q; an object's code cannot change", o.Code, code))
		return
	}
	row, err := s.store.ReplaceObject(r.Context(), o, entityTags(r, "If-Match"))
	if err != nil {
		writeFailed(w, r, code, " (create it with POST /v1/objects)", err)
		return
	}
	s.syncTiles(r.Context())
	s.writeObjectRow(w, r, http.StatusOK, row)
}

// deleteObject: DELETE /v1/objects/{code}, honouring If-Match like PUT.
func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	if err := s.store.DeleteObjectIf(r.Context(), code, entityTags(r, "If-Match")); err != nil {
		writeFailed(w, r, code, "", err)
		return
	}
	s.syncTiles(r.Context())
	w.WriteHeader(http.StatusNoContent)
}

// parseLonLat reads "lon,lat".
func parseLonLat(q url.Values, name string) (*[2]float64, error) {
	s := q.Get(name)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return nil, &paramError{name, fmt.Sprintf("%s=%q: want lon,lat", name, s)}
	}
	var p [2]float64
	for i, part := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil {
			return nil, &paramError{name, fmt.Sprintf("%s value %d (%q) is not a number", name, i+1, part)}
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
		return "", &paramError{"class", fmt.Sprintf("unknown class %q (GET /v1/classes lists them)", class)}
	}
	return class, nil
}

// objectFilter reads the query of GET /v1/objects.
func (s *Server) objectFilter(r *http.Request) (data.ObjectFilter, error) {
	q := r.URL.Query()
	var f data.ObjectFilter
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
		return f, err
	}
	if f.Within = q.Get("within"); f.Within != "" {
		if _, err := s.store.GetUnit(r.Context(), grid.BaseLayer, f.Within, data.GeometryNone); errors.Is(err, data.ErrNotFound) {
			return f, &paramError{"within", fmt.Sprintf("within=%q: no unit with this code", f.Within)}
		} else if err != nil {
			return f, err
		}
	}
	if f.Near, err = parseLonLat(q, "near"); err != nil {
		return f, err
	}
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
		return f, err
	}
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

// listObjects: GET /v1/objects?bbox=|within=|near=&radius=|nearest=&k= [&class=&limit=&cursor=]
func (s *Server) listObjects(w http.ResponseWriter, r *http.Request) {
	f, err := s.objectFilter(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	p, err := s.store.ListObjects(r.Context(), f)
	if err != nil {
		objectFail(w, r, err)
		return
	}
	s.writeObjectPage(w, r, p)
}

// unassignedObjects: GET /v1/objects/unassigned?limit=&cursor=
func (s *Server) unassignedObjects(w http.ResponseWriter, r *http.Request) {
	limit, err := parseIntParam(r.URL.Query(), "limit", data.DefaultObjectLimit, 1, data.MaxObjectLimit)
	if err != nil {
		fail(w, r, err)
		return
	}
	p, err := s.store.UnassignedObjects(r.Context(), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		objectFail(w, r, err)
		return
	}
	s.writeObjectPage(w, r, p)
}

// writeObjectPage answers a page; when more follow, it links to the next.
func (s *Server) writeObjectPage(w http.ResponseWriter, r *http.Request, p *data.ObjectPage) {
	fc := objectCollection{Type: "FeatureCollection", Features: make([]objectFeature, len(p.Objects)), NumberReturned: len(p.Objects)}
	for i, o := range p.Objects {
		fc.Features[i] = toObjectFeature(o)
	}
	fc.Links = nextLink(r, p.Next)
	writeGeoJSON(w, fc)
}

// nextLink is the link to the page after this one (the request with its
// cursor replaced), or none when cursor is empty.
func nextLink(r *http.Request, cursor string) []link {
	if cursor == "" {
		return nil
	}
	next := *r.URL
	q := next.Query()
	q.Set("cursor", cursor)
	next.RawQuery = q.Encode()
	return []link{{Rel: "next", Href: next.RequestURI(), Type: "application/geo+json"}}
}

// stats: GET /v1/stats/{code}?of=objects|events&by=…&from=&to=. Without
// of=, by=status or a time range means events (objects have neither),
// anything else objects.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
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
		s.objectStats(w, r)
	case "events":
		s.eventStats(w, r)
	default:
		badParam(w, r, "of", fmt.Sprintf("of=%q: statistics are of objects or events", of))
	}
}

// eventStats: GET /v1/stats/{code}?of=events&by=status|class&from=&to=
func (s *Server) eventStats(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	q := r.URL.Query()
	by := q.Get("by")
	if by == "" {
		by = "status"
	}
	cfg, err := s.store.EventConfig(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	from, err := timeParam(q, "from", cfg)
	if err != nil {
		fail(w, r, err)
		return
	}
	to, err := timeParam(q, "to", cfg)
	if err != nil {
		fail(w, r, err)
		return
	}
	if from != nil && to != nil && !from.Before(*to) {
		badParam(w, r, "to", "to must be after from")
		return
	}
	st, err := s.store.EventStats(r.Context(), code, by, from, to)
	if errors.Is(err, data.ErrNotFound) {
		notFound(w, r, fmt.Sprintf("no unit with code %q in layer %q", code, grid.BaseLayer))
		return
	}
	if err != nil {
		objectFail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{"of": "events", "by": st.By, "from": st.From, "to": st.To, "unit": st.Unit, "children": st.Children})
}

// objectStats: GET /v1/stats/{code}?by=class
func (s *Server) objectStats(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	by := r.URL.Query().Get("by")
	if by == "" {
		by = "class"
	}
	if by != "class" {
		badParam(w, r, "by", fmt.Sprintf("by=%q: objects are counted by class (by=class)", by))
		return
	}
	st, err := s.store.Stats(r.Context(), code)
	if errors.Is(err, data.ErrNotFound) {
		notFound(w, r, fmt.Sprintf("no unit with code %q in layer %q", code, grid.BaseLayer))
		return
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"of": "objects", "unit": st.Unit, "children": st.Children, "by": by})
}
