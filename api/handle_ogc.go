package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"gridmap/cql2"
	"gridmap/data"
	"gridmap/geo"
)

// OGC API – Features at /ogc: Part 1 Core (landing page, conformance,
// collections, items, single items; GeoJSON and HTML; OpenAPI 3.0 at
// /openapi.json), Part 2 (crs, bbox-crs, Content-Crs) and Part 3
// (queryables, property filters, filter). The collections and their rows
// are data/features.go's; this file speaks the standard.

// ogcConformance lists the conformance classes /ogc/conformance declares:
// Part 3's filter classes with exactly the CQL2 classes package cql2
// implements.
var ogcConformance = append([]string{
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
	"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
	"http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
	"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
}, cql2.Conformance...)

// ogcRoutes registers /ogc and below.
func (s *Server) ogcRoutes(r *mux.Router) {
	s.handle(r, "/ogc", s.ogcLanding, http.MethodGet)
	s.handle(r, "/ogc/api", s.ogcAPI, http.MethodGet)
	s.handle(r, "/ogc/conformance", s.ogcConformance, http.MethodGet)
	s.handle(r, "/ogc/collections", s.ogcCollections, http.MethodGet)
	s.handle(r, "/ogc/collections/{collectionId}", s.ogcCollection, http.MethodGet)
	s.handle(r, "/ogc/collections/{collectionId}/queryables", s.ogcQueryables, http.MethodGet)
	s.handle(r, "/ogc/collections/{collectionId}/items", s.ogcItems, http.MethodGet)
	s.handle(r, "/ogc/collections/{collectionId}/items/{featureId}", s.ogcItem, http.MethodGet)
}

// ogcLink is a link of OGC API (RFC 8288 members as JSON).
type ogcLink struct {
	Href  string `json:"href"`
	Rel   string `json:"rel"`
	Type  string `json:"type,omitempty"`
	Title string `json:"title,omitempty"`
}

// selfLinks are the self link of a resource in the format answered and
// the alternate in the other one.
func selfLinks(base, path string, f ogcFormat, jsonType string) []ogcLink {
	j := ogcLink{Href: base + path + "?f=json", Type: jsonType, Title: "This document as JSON"}
	h := ogcLink{Href: base + path + "?f=html", Type: "text/html", Title: "This document as HTML"}
	if f == formatHTML {
		h.Rel, j.Rel = "self", "alternate"
		return []ogcLink{h, j}
	}
	j.Rel, h.Rel = "self", "alternate"
	return []ogcLink{j, h}
}

type ogcLandingPage struct {
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Links       []ogcLink `json:"links"`
}

// ogcLanding: GET /ogc
func (s *Server) ogcLanding(w http.ResponseWriter, r *http.Request) error {
	f, err := ogcFormatOf(r, ctJSON)
	if err != nil {
		return err
	}
	base := ogcBaseURL(r)
	page := ogcLandingPage{
		Title:       "gridmap 网格化管理",
		Description: "The city's grid hierarchy (districts, streets, communities, grids), managed objects and events as OGC API – Features.",
		Links: append(selfLinks(base, "/ogc", f, ctJSON),
			// The OGC view first: OGC clients take the first service-desc
			// as the definition of the API rooted here (ogc_api.go).
			ogcLink{Href: base + "/ogc/api", Rel: "service-desc", Type: ctOpenAPI, Title: "The definition of this OGC API (OpenAPI 3.0, paths under /ogc)"},
			ogcLink{Href: base + "/openapi.json", Rel: "service-desc", Type: ctOpenAPI, Title: "The definition of the whole server (OpenAPI 3.0)"},
			ogcLink{Href: base + "/ogc/conformance", Rel: "conformance", Type: ctJSON, Title: "Conformance classes"},
			ogcLink{Href: base + "/ogc/collections", Rel: "data", Type: ctJSON, Title: "The collections"}),
	}
	if f == formatHTML {
		return renderOGC(w, "landing", page)
	}
	writeJSON(w, http.StatusOK, ctJSON, page)
	return nil
}

// ogcConformance: GET /ogc/conformance
func (s *Server) ogcConformance(w http.ResponseWriter, r *http.Request) error {
	f, err := ogcFormatOf(r, ctJSON)
	if err != nil {
		return err
	}
	out := map[string]any{"conformsTo": ogcConformance}
	if f == formatHTML {
		return renderOGC(w, "conformance", out)
	}
	writeJSON(w, http.StatusOK, ctJSON, out)
	return nil
}

type ogcExtent struct {
	Spatial struct {
		BBox [][4]float64 `json:"bbox"`
		CRS  string       `json:"crs"`
	} `json:"spatial"`
	Temporal struct {
		Interval [][2]*string `json:"interval"`
		TRS      string       `json:"trs"`
	} `json:"temporal"`
}

type ogcCollectionDoc struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Links       []ogcLink  `json:"links"`
	Extent      *ogcExtent `json:"extent,omitempty"`
	ItemType    string     `json:"itemType"`
	CRS         []string   `json:"crs"`
	StorageCRS  string     `json:"storageCrs"`
	// Kind is gridmap's: units, objects or events.
	Kind string `json:"kind"`
}

func collectionDoc(base string, c *data.Collection) ogcCollectionDoc {
	p := base + "/ogc/collections/" + url.PathEscape(c.ID)
	d := ogcCollectionDoc{ID: c.ID, Title: c.Title, Description: c.Description, ItemType: "feature", Kind: c.Kind,
		CRS: ogcCRSList(), StorageCRS: geo.CRS84URI,
		Links: []ogcLink{
			{Href: p + "?f=json", Rel: "self", Type: ctJSON, Title: "The collection"},
			{Href: p + "?f=html", Rel: "alternate", Type: "text/html", Title: "The collection as HTML"},
			{Href: p + "/items?f=json", Rel: "items", Type: ctGeoJSON, Title: c.Title + " (GeoJSON)"},
			{Href: p + "/items?f=html", Rel: "items", Type: "text/html", Title: c.Title + " (HTML)"},
			{Href: p + "/queryables", Rel: "http://www.opengis.net/def/rel/ogc/1.0/queryables", Type: ctSchemaJSON, Title: "Queryables"},
		}}
	if c.BBox != nil || c.Temporal[0] != nil || c.Temporal[1] != nil {
		e := &ogcExtent{}
		e.Spatial.CRS = geo.CRS84URI
		if c.BBox != nil {
			e.Spatial.BBox = [][4]float64{*c.BBox}
		} else {
			e.Spatial.BBox = [][4]float64{{-180, -90, 180, 90}}
		}
		e.Temporal.TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
		var iv [2]*string
		for i, t := range c.Temporal {
			if t != nil {
				s := t.UTC().Format(time.RFC3339Nano)
				iv[i] = &s
			}
		}
		e.Temporal.Interval = [][2]*string{iv}
		d.Extent = e
	}
	return d
}

type ogcCollectionsDoc struct {
	Links       []ogcLink          `json:"links"`
	Collections []ogcCollectionDoc `json:"collections"`
	CRS         []string           `json:"crs"`
}

// ogcCollections: GET /ogc/collections
func (s *Server) ogcCollections(w http.ResponseWriter, r *http.Request) error {
	f, err := ogcFormatOf(r, ctJSON)
	if err != nil {
		return err
	}
	cols, err := s.store.FeatureCollections(r.Context())
	if err != nil {
		return err
	}
	base := ogcBaseURL(r)
	doc := ogcCollectionsDoc{Links: selfLinks(base, "/ogc/collections", f, ctJSON), Collections: make([]ogcCollectionDoc, len(cols)), CRS: ogcCRSList()}
	for i := range cols {
		doc.Collections[i] = collectionDoc(base, &cols[i])
	}
	if f == formatHTML {
		return renderOGC(w, "collections", doc)
	}
	writeJSON(w, http.StatusOK, ctJSON, doc)
	return nil
}

// ogcCollectionOf reads {collectionId}: a 404 naming it when there is no
// such collection.
func (s *Server) ogcCollectionOf(r *http.Request) (*data.Collection, error) {
	id := mux.Vars(r)["collectionId"]
	c, err := s.store.FeatureCollection(r.Context(), id)
	if err != nil {
		return nil, notFoundAs(err, "no collection %q: GET /ogc/collections lists them", geo.Excerpt(id, geo.MaxExcerpt))
	}
	return c, nil
}

// ogcCollection: GET /ogc/collections/{collectionId}
func (s *Server) ogcCollection(w http.ResponseWriter, r *http.Request) error {
	f, err := ogcFormatOf(r, ctJSON)
	if err != nil {
		return err
	}
	c, err := s.ogcCollectionOf(r)
	if err != nil {
		return err
	}
	// The extent comes with the list; one collection's is not cheaper
	// to read than all of them (every level of a layer is one scan).
	cols, err := s.store.FeatureCollections(r.Context())
	if err != nil {
		return err
	}
	for i := range cols {
		if cols[i].ID == c.ID {
			c = &cols[i]
		}
	}
	doc := collectionDoc(ogcBaseURL(r), c)
	if f == formatHTML {
		return renderOGC(w, "collection", doc)
	}
	writeJSON(w, http.StatusOK, ctJSON, doc)
	return nil
}

// ogcQueryables: GET /ogc/collections/{collectionId}/queryables, a JSON
// Schema of the properties filters may name.
func (s *Server) ogcQueryables(w http.ResponseWriter, r *http.Request) error {
	f, err := ogcFormatOf(r, ctSchemaJSON)
	if err != nil {
		return err
	}
	c, err := s.ogcCollectionOf(r)
	if err != nil {
		return err
	}
	base := ogcBaseURL(r)
	props := map[string]any{}
	var names []string
	for _, q := range c.Queryables {
		props[q.Name] = queryableSchema(c, q)
		names = append(names, q.Name)
	}
	doc := map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     base + "/ogc/collections/" + url.PathEscape(c.ID) + "/queryables",
		"type":    "object", "title": c.Title, "properties": props, "additionalProperties": false,
	}
	if f == formatHTML {
		return renderOGC(w, "queryables", map[string]any{"Collection": c, "Names": names, "Properties": props})
	}
	writeJSON(w, http.StatusOK, ctSchemaJSON, doc)
	return nil
}

// queryableSchema is the JSON Schema of one queryable (Part 3: geometry
// by a format naming its type).
func queryableSchema(c *data.Collection, q data.Queryable) map[string]any {
	if q.Geometry {
		f := "geometry-any"
		switch c.Schema.GeometryType {
		case "MultiPolygon":
			f = "geometry-multipolygon"
		case "Point":
			f = "geometry-point"
		}
		return map[string]any{"title": q.Name, "format": f}
	}
	m := map[string]any{"title": q.Name}
	switch q.Type {
	case geo.Integer:
		m["type"] = "integer"
	case geo.Real:
		m["type"] = "number"
	case geo.Boolean:
		m["type"] = "boolean"
	case geo.Time:
		m["type"], m["format"] = "string", "date-time"
	default:
		m["type"] = "string"
	}
	return m
}

// ogcFilterLangs are the encodings filter-lang takes: CQL2's, and the
// names of the drafts, which GDAL 3.6 sends.
var ogcFilterLangs = []string{"cql2-text", "cql2-json", "cql-text", "cql-json"}

// ogcItemsParams are the standard parameters of items; a collection's
// queryables are its property filters.
var ogcItemsParams = []string{"f", "limit", "bbox", "bbox-crs", "datetime", "crs", "cursor", "filter", "filter-lang", "filter-crs"}

// ogcOutputCRS reads crs, the coordinate system of the answer's
// geometries.
func ogcOutputCRS(r *http.Request) (geo.CRS, error) { return ogcCRSParam(r, "crs") }

// setGeoJSON sets the headers of a GeoJSON answer in crs: Content-Crs
// names it (Part 2), on the answer only, never on a problem.
func setGeoJSON(w http.ResponseWriter, crs geo.CRS) {
	w.Header().Set("Content-Type", ctGeoJSON)
	w.Header().Set("Content-Crs", "<"+crs.URI()+">")
}

// ogcItems: GET /ogc/collections/{collectionId}/items
func (s *Server) ogcItems(w http.ResponseWriter, r *http.Request) error {
	c, err := s.ogcCollectionOf(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	names := append([]string{}, ogcItemsParams...)
	for _, qa := range c.Queryables {
		if !qa.Geometry {
			names = append(names, qa.Name)
		}
	}
	if err := ogcOnlyParams(q, names...); err != nil {
		return err
	}
	f, err := ogcFormatOf(r, ctGeoJSON)
	if err != nil {
		return err
	}
	fq := data.FeatureQuery{Collection: c.ID, Count: true, Scopes: readScopes(r), After: q.Get("cursor")}
	if fq.Limit, err = parseIntParam(q, "limit", ogcDefaultLimit, 1, ogcMaxLimit); err != nil {
		return err
	}
	if fq.BBox, err = ogcBBox(r); err != nil {
		return err
	}
	if fq.Time, err = ogcDatetime(r); err != nil {
		return err
	}
	for _, qa := range c.Queryables {
		if q.Has(qa.Name) {
			if fq.Props == nil {
				fq.Props = map[string]string{}
			}
			fq.Props[qa.Name] = q.Get(qa.Name)
		}
	}
	if err := s.ogcFilter(r, c, &fq); err != nil {
		return err
	}
	crs, err := ogcOutputCRS(r)
	if err != nil {
		return err
	}
	if f == formatHTML {
		return s.ogcItemsHTML(w, r, c, fq, crs)
	}
	return s.ogcItemsJSON(w, r, c, fq, crs)
}

// pageLinks are the links of an items page: self, alternate, next and
// prev (when there are such pages), collection.
func pageLinks(r *http.Request, f ogcFormat, info data.FeaturePageInfo) []ogcLink {
	base := ogcBaseURL(r)
	with := func(format, cursor string) string {
		u := *r.URL
		q := u.Query()
		q.Set("f", format)
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		u.RawQuery = q.Encode()
		return base + u.RequestURI()
	}
	self, alt := ogcLink{Href: with("json", ""), Type: ctGeoJSON, Title: "This page as GeoJSON"}, ogcLink{Href: with("html", ""), Type: "text/html", Title: "This page as HTML"}
	if f == formatHTML {
		self, alt = alt, self
	}
	self.Rel, alt.Rel = "self", "alternate"
	links := []ogcLink{self, alt}
	ct, format := ctGeoJSON, "json"
	if f == formatHTML {
		ct, format = "text/html", "html"
	}
	if info.Next != "" {
		links = append(links, ogcLink{Href: with(format, info.Next), Rel: "next", Type: ct, Title: "Next page"})
	}
	if info.Prev != "" {
		links = append(links, ogcLink{Href: with(format, info.Prev), Rel: "prev", Type: ct, Title: "Previous page"})
	}
	return append(links, ogcLink{Href: base + "/ogc/collections/" + url.PathEscape(mux.Vars(r)["collectionId"]) + "?f=json", Rel: "collection", Type: ctJSON, Title: "The collection"})
}

// flushAt is how much of an items answer is buffered before it is
// written out.
const flushAt = 64 << 10

// ogcItemsJSON streams a page as a GeoJSON FeatureCollection: the rows
// are encoded as the database sends them. An error after the first bytes
// went out can only end the connection: the client then sees a truncated
// body, never a complete-looking short page.
func (s *Server) ogcItemsJSON(w http.ResponseWriter, r *http.Request, c *data.Collection, fq data.FeatureQuery, crs geo.CRS) error {
	var b []byte
	started := false
	n := 0
	flush := func() error {
		if !started {
			setGeoJSON(w, crs)
			w.WriteHeader(http.StatusOK)
			started = true
		}
		_, err := w.Write(b)
		b = b[:0]
		return err
	}
	each := func(row *geo.Row, geometry []byte) error {
		if n == 0 {
			b = make([]byte, 0, flushAt+flushAt/4)
			b = ogcPageHead(b)
		} else {
			b = append(b, ',')
		}
		if geometry != nil {
			b = appendFeatureWith(b, &c.Schema, row, geometry)
		} else {
			row.Geometry = geo.GeometryFromWGS84(crs, row.Geometry)
			b = appendFeature(b, &c.Schema, row)
		}
		n++
		if len(b) >= flushAt {
			return flush()
		}
		return nil
	}
	var info data.FeaturePageInfo
	var err error
	if crs == geo.WGS84 {
		// PostGIS writes WGS-84 GeoJSON faster than decoding and
		// formatting it here (docs/benchmarks.md, "OGC items").
		info, err = s.store.FeaturePageGeoJSON(r.Context(), fq, each)
	} else {
		info, err = s.store.FeaturePage(r.Context(), fq, func(row *geo.Row) error { return each(row, nil) })
	}
	if err != nil {
		if started {
			if !isClientGone(r.Context()) {
				s.log.Error("items answer cut short", "path", r.URL.Path, "request_id", requestIDOf(r), "err", err)
			}
			panic(http.ErrAbortHandler)
		}
		return err
	}
	if n == 0 {
		b = ogcPageHead(b)
	}
	b = append(b, `],"numberMatched":`...)
	b = strconv.AppendInt(b, info.Matched, 10)
	b = append(b, `,"numberReturned":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `,"links":`...)
	b = appendJSON(b, pageLinks(r, formatJSON, info))
	b = append(b, "}\n"...)
	if err := flush(); err != nil {
		s.log.Debug("items answer not delivered", "err", err)
	}
	return nil
}

func ogcPageHead(b []byte) []byte {
	b = append(b, `{"type":"FeatureCollection","timeStamp":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339)
	return append(b, `","features":[`...)
}

// ogcItem: GET /ogc/collections/{collectionId}/items/{featureId}
func (s *Server) ogcItem(w http.ResponseWriter, r *http.Request) error {
	if err := ogcOnlyParams(r.URL.Query(), "f", "crs"); err != nil {
		return err
	}
	c, err := s.ogcCollectionOf(r)
	if err != nil {
		return err
	}
	f, err := ogcFormatOf(r, ctGeoJSON)
	if err != nil {
		return err
	}
	crs, err := ogcOutputCRS(r)
	if err != nil {
		return err
	}
	id := mux.Vars(r)["featureId"]
	var feature []byte
	var values map[string]string
	err = s.store.FeatureByID(r.Context(), data.FeatureQuery{Collection: c.ID, Scopes: readScopes(r)}, id, func(row *geo.Row) error {
		row.Geometry = geo.GeometryFromWGS84(crs, row.Geometry)
		feature = appendFeature(nil, &c.Schema, row)
		values = rowValues(&c.Schema, row)
		return nil
	})
	if err != nil {
		// Outside the caller's scope reads as absent: a 403 would say
		// that the code exists.
		return notFoundAs(err, "no feature %q in collection %s", geo.Excerpt(id, geo.MaxExcerpt), c.ID)
	}
	base := ogcBaseURL(r)
	p := "/ogc/collections/" + url.PathEscape(c.ID) + "/items/" + url.PathEscape(id)
	links := append(selfLinks(base, p, f, ctGeoJSON),
		ogcLink{Href: base + "/ogc/collections/" + url.PathEscape(c.ID) + "?f=json", Rel: "collection", Type: ctJSON, Title: "The collection"})
	if f == formatHTML {
		return renderOGC(w, "item", map[string]any{"Collection": c, "ID": id, "Values": values, "Fields": c.Schema.Fields, "Links": links})
	}
	// The feature's own object with links added before its last brace.
	feature = append(feature[:len(feature)-1], `,"links":`...)
	feature = appendJSON(feature, links)
	feature = append(feature, "}\n"...)
	setGeoJSON(w, crs)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(feature)
	return nil
}

// rowValues are a row's properties by name, for the HTML pages.
func rowValues(schema *geo.Schema, row *geo.Row) map[string]string {
	m := make(map[string]string, len(schema.Fields))
	for i, f := range schema.Fields {
		m[f.Name] = htmlValue(row.Values[i])
	}
	return m
}

// describeTime names a datetime for a page heading.
func describeTime(t *data.TimeRange) string {
	if t == nil {
		return ""
	}
	s := func(p *time.Time) string {
		if p == nil {
			return ".."
		}
		return p.UTC().Format(time.RFC3339Nano)
	}
	if t.Instant() {
		return s(t.Start)
	}
	return strings.Join([]string{s(t.Start), s(t.End)}, "/")
}
