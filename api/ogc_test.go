package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"gridmap/auth"
	"gridmap/data/demo"
	"gridmap/geo"
)

const (
	ctHTML       = "text/html"
	ctSchemaJSON = "application/schema+json"
)

type ogcLink struct {
	Href, Rel, Type, Title string
}

type ogcFeature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties map[string]any  `json:"properties"`
	Links      []ogcLink       `json:"links"`
}

type ogcPage struct {
	Type           string       `json:"type"`
	TimeStamp      string       `json:"timeStamp"`
	NumberMatched  int          `json:"numberMatched"`
	NumberReturned int          `json:"numberReturned"`
	Features       []ogcFeature `json:"features"`
	Links          []ogcLink    `json:"links"`
}

func linkOf(links []ogcLink, rel string) *ogcLink {
	for i := range links {
		if links[i].Rel == rel {
			return &links[i]
		}
	}
	return nil
}

// ogcItems GETs a page of items and checks it is GeoJSON whose counts add
// up.
func ogcItems(t *testing.T, e *apiEnv, path string, header ...string) (ogcPage, reply) {
	t.Helper()
	r := e.with(http.MethodGet, path, "", header...)
	var p ogcPage
	expect(t, r, http.StatusOK, ctGeoJSON, &p)
	if p.Type != "FeatureCollection" || p.NumberReturned != len(p.Features) || p.NumberMatched < p.NumberReturned {
		t.Fatalf("%s: %s with numberReturned %d, numberMatched %d and %d features", path, p.Type, p.NumberReturned, p.NumberMatched, len(p.Features))
	}
	if _, err := time.Parse(time.RFC3339, p.TimeStamp); err != nil {
		t.Fatalf("%s: timeStamp %q", path, p.TimeStamp)
	}
	return p, r
}

// relative turns an absolute link of the server into a path for e.get.
func relative(t *testing.T, e *apiEnv, href string) string {
	t.Helper()
	if !strings.HasPrefix(href, e.url+"/") {
		t.Fatalf("link %q is not an absolute URL of the server %s", href, e.url)
	}
	return strings.TrimPrefix(href, e.url)
}

func TestOGCLandingConformanceCollections(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)

	var landing struct {
		Title string
		Links []ogcLink
	}
	expect(t, e.get("/ogc"), http.StatusOK, ctJSON, &landing)
	for rel, typ := range map[string]string{"self": ctJSON, "alternate": "text/html", "service-desc": "application/vnd.oai.openapi+json;version=3.0",
		"conformance": ctJSON, "data": ctJSON} {
		l := linkOf(landing.Links, rel)
		if l == nil || l.Type != typ {
			t.Fatalf("landing link %s: %+v", rel, l)
		}
	}
	// The OGC view first (GDAL takes the first), the whole server's next.
	var descs []string
	for _, l := range landing.Links {
		if l.Rel == "service-desc" {
			descs = append(descs, l.Href)
		}
	}
	if strings.Join(descs, " ") != e.url+"/ogc/api "+e.url+"/openapi.json" {
		t.Errorf("service-desc links %v", descs)
	}
	var api struct {
		OpenAPI string
		Servers []struct{ URL string }
		Paths   map[string]struct {
			Get struct {
				Parameters []struct{ Name, In string }
			}
		}
	}
	expect(t, e.get("/ogc/api"), http.StatusOK, "application/vnd.oai.openapi+json", &api)
	if api.OpenAPI != "3.0.3" || len(api.Servers) != 1 || api.Servers[0].URL != e.url+"/ogc" {
		t.Errorf("/ogc/api: %+v", api)
	}
	var params []string
	for _, p := range api.Paths["/collections/grids/items"].Get.Parameters {
		params = append(params, p.Name)
	}
	if ps := strings.Join(params, ","); !strings.Contains(ps, "limit,bbox") || !strings.Contains(ps, "parent_code") || strings.Contains(ps, "geometry") {
		t.Errorf("/ogc/api grids items parameters %s", ps)
	}
	// HTML by f or by a browser's Accept; a 406 when nothing fits.
	for _, r := range []reply{e.get("/ogc?f=html"), e.with(http.MethodGet, "/ogc", "", "Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")} {
		expect(t, r, http.StatusOK, ctHTML, nil)
		if !strings.Contains(string(r.Body), "gridmap") || !strings.Contains(string(r.Body), `href="`+e.url+`/ogc/collections"`) {
			t.Errorf("landing page: %s", r.Body)
		}
	}
	expect(t, e.with(http.MethodGet, "/ogc", "", "Accept", "application/json, text/html;q=0.5"), http.StatusOK, ctJSON, nil)
	expectProblem(t, e.get("/ogc?f=xml"), http.StatusBadRequest, typeBadParam, "f", "json or html")
	expectProblem(t, e.with(http.MethodGet, "/ogc/collections", "", "Accept", "image/png"), http.StatusNotAcceptable, "https://gridmap.dev/problems/not-acceptable", "", "image/png")

	var conf struct{ ConformsTo []string }
	expect(t, e.get("/ogc/conformance"), http.StatusOK, ctJSON, &conf)
	if !strings.Contains(strings.Join(conf.ConformsTo, " "), "ogcapi-features-1/1.0/conf/core") || !strings.Contains(strings.Join(conf.ConformsTo, " "), "ogcapi-features-2/1.0/conf/crs") {
		t.Errorf("conformance %v", conf.ConformsTo)
	}

	var cols struct {
		Collections []struct {
			ID, Title, ItemType, StorageCrs string
			CRS                             []string
			Links                           []ogcLink
			Extent                          struct {
				Spatial struct {
					BBox [][]float64
				}
				Temporal struct{ Interval [][]*string }
			}
		}
		CRS []string
	}
	expect(t, e.get("/ogc/collections"), http.StatusOK, ctJSON, &cols)
	var ids []string
	for _, c := range cols.Collections {
		ids = append(ids, c.ID)
		if c.ItemType != "feature" || c.StorageCrs != geo.CRS84URI || len(c.CRS) != 3 || c.CRS[1] != geo.GCJ02URI {
			t.Errorf("collection %s: itemType %q storageCrs %q crs %v", c.ID, c.ItemType, c.StorageCrs, c.CRS)
		}
		if l := linkOf(c.Links, "items"); l == nil || l.Type != ctGeoJSON || l.Href != e.url+"/ogc/collections/"+c.ID+"/items?f=json" {
			t.Errorf("collection %s items link %+v", c.ID, l)
		}
	}
	if got := strings.Join(ids, ","); got != "districts,streets,communities,grids,objects,events" {
		t.Fatalf("collections %s", got)
	}
	g := cols.Collections[3]
	if b := g.Extent.Spatial.BBox; len(b) != 1 || b[0][0] < 114 || b[0][2] > 114.7 || g.Extent.Temporal.Interval[0][0] == nil || g.Extent.Temporal.Interval[0][1] != nil {
		t.Errorf("grids extent %+v", g.Extent)
	}
	expectProblem(t, e.get("/ogc/collections/parks"), http.StatusNotFound, typeNotFound, "", "parks")
	expectProblem(t, e.get("/ogc/collections/other-grids/items"), http.StatusNotFound, typeNotFound, "", "other-grids")
	var one struct{ ID, Title string }
	expect(t, e.get("/ogc/collections/communities"), http.StatusOK, ctJSON, &one)
	if one.ID != "communities" || !strings.Contains(one.Title, "社区") {
		t.Errorf("one collection %+v", one)
	}
	for _, p := range []string{"/ogc/collections?f=html", "/ogc/collections/grids?f=html", "/ogc/conformance?f=html", "/ogc/collections/grids/queryables?f=html"} {
		r := e.get(p)
		expect(t, r, http.StatusOK, ctHTML, nil)
		if !strings.Contains(string(r.Body), "grids") && !strings.Contains(string(r.Body), "conf/core") {
			t.Errorf("%s: %s", p, r.Body)
		}
	}

	var qs struct {
		Schema     string `json:"$schema"`
		Type       string
		Properties map[string]map[string]any
	}
	expect(t, e.get("/ogc/collections/grids/queryables"), http.StatusOK, ctSchemaJSON, &qs)
	if qs.Type != "object" || qs.Properties["parent_code"]["type"] != "string" || qs.Properties["version"]["type"] != "integer" ||
		qs.Properties["valid_from"]["format"] != "date-time" || qs.Properties["geometry"]["format"] != "geometry-multipolygon" {
		t.Errorf("queryables %+v", qs)
	}
	expect(t, e.get("/ogc/collections/events/queryables"), http.StatusOK, ctSchemaJSON, &qs)
	if qs.Properties["reported_at"]["format"] != "date-time" || qs.Properties["geometry"]["format"] != "geometry-point" {
		t.Errorf("event queryables %+v", qs)
	}
}

func TestOGCItems(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := tableState(t, e)
	total := sqlStrings(t, e.store, `SELECT count(*) FROM units WHERE valid_to IS NULL AND level = 'grid'`)[0]

	// Default page: 10, exact numberMatched, an absolute next link.
	p, r := ogcItems(t, e, "/ogc/collections/grids/items")
	if p.NumberReturned != 10 || strconv.Itoa(p.NumberMatched) != total || r.Header.Get("Content-Crs") != "<"+geo.CRS84URI+">" {
		t.Fatalf("first page: %d of %d (SQL %s), Content-Crs %q", p.NumberReturned, p.NumberMatched, total, r.Header.Get("Content-Crs"))
	}
	f := p.Features[0]
	if f.ID != f.Properties["code"] || f.Properties["level"] != "grid" || f.Properties["layer"] != "base" || f.Properties["version"] != 1.0 ||
		f.Properties["valid_to"] != nil || geometryType(t, f.Geometry) != "MultiPolygon" {
		t.Fatalf("feature %+v", f)
	}
	want := sqlStrings(t, e.store, `SELECT name || '|' || parent_code || '|' || round(area_m2::numeric, 3) FROM units WHERE valid_to IS NULL AND code = $1`, f.ID)[0]
	if got := fmt.Sprintf("%s|%s|%.3f", f.Properties["name"], f.Properties["parent_code"], f.Properties["area_m2"]); got != want {
		t.Errorf("properties %s, SQL %s", got, want)
	}

	// Paging walks every grid once, in code order; prev links walk the
	// same pages back.
	seen := map[string]bool{}
	next, last, pages := "/ogc/collections/grids/items?limit=37", "", 0
	var walked []string // each page's ids
	prev := ""
	for next != "" {
		p, _ := ogcItems(t, e, next)
		var ids []string
		for _, f := range p.Features {
			if seen[f.ID] || f.ID <= last {
				t.Fatalf("page %d: %s repeated or out of order after %s", pages, f.ID, last)
			}
			seen[f.ID], last = true, f.ID
			ids = append(ids, f.ID)
		}
		walked = append(walked, strings.Join(ids, ","))
		if l := linkOf(p.Links, "prev"); (l != nil) != (pages > 0) {
			t.Fatalf("page %d: prev link %+v", pages, l)
		}
		next, prev = "", ""
		if l := linkOf(p.Links, "next"); l != nil {
			next = relative(t, e, l.Href)
			if l.Type != ctGeoJSON || !strings.Contains(l.Href, "limit=37") {
				t.Fatalf("next link %+v", l)
			}
		}
		if l := linkOf(p.Links, "prev"); l != nil {
			prev = relative(t, e, l.Href)
		}
		pages++
	}
	if strconv.Itoa(len(seen)) != total || pages < 2 {
		t.Fatalf("walked %d grids in %d pages, SQL has %s", len(seen), pages, total)
	}
	for i := pages - 2; i >= 0; i-- {
		p, _ := ogcItems(t, e, prev)
		var ids []string
		for _, f := range p.Features {
			ids = append(ids, f.ID)
		}
		if got := strings.Join(ids, ","); got != walked[i] {
			t.Fatalf("back to page %d: %s, forward it was %s", i, got, walked[i])
		}
		l, n := linkOf(p.Links, "prev"), linkOf(p.Links, "next")
		if (l != nil) != (i > 0) || n == nil {
			t.Fatalf("back at page %d: prev %+v next %+v", i, l, n)
		}
		if i == 1 {
			// The next link of a page reached backwards goes forward again.
			q, _ := ogcItems(t, e, relative(t, e, n.Href))
			if len(q.Features) == 0 || q.Features[0].ID != strings.Split(walked[2], ",")[0] {
				t.Fatalf("forward from page 1 reached backwards: %+v", q.Features)
			}
		}
		if l != nil {
			prev = relative(t, e, l.Href)
		}
	}

	// Property filters are typed equalities on queryables.
	parent := sqlStrings(t, e.store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND level = 'community'`)[0]
	p, _ = ogcItems(t, e, "/ogc/collections/grids/items?limit=100&level=grid&parent_code="+parent)
	if p.NumberMatched != demoGridsPer || p.NumberReturned != demoGridsPer {
		t.Fatalf("grids of %s: %d", parent, p.NumberMatched)
	}
	p, _ = ogcItems(t, e, "/ogc/collections/grids/items?version=2&complete=false")
	if p.NumberMatched != 0 {
		t.Fatalf("version 2: %d", p.NumberMatched)
	}

	// bbox in CRS84 and in GCJ-02 (bbox-crs) select what SQL selects.
	box := [4]float64{114.22, 22.55, 114.26, 22.58}
	inBox := func(b [4]float64) int {
		n, _ := strconv.Atoi(sqlStrings(t, e.store, `SELECT count(*) FROM units WHERE valid_to IS NULL AND level = 'grid'
			AND ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326))`, b[0], b[1], b[2], b[3])[0])
		return n
	}
	p, _ = ogcItems(t, e, fmt.Sprintf("/ogc/collections/grids/items?bbox=%g,%g,%g,%g", box[0], box[1], box[2], box[3]))
	if n := inBox(box); p.NumberMatched != n || n == 0 {
		t.Fatalf("bbox: %d, SQL %d", p.NumberMatched, n)
	}
	gminLon, gminLat := geo.WGS84ToGCJ02(box[0], box[1])
	gmaxLon, gmaxLat := geo.WGS84ToGCJ02(box[2], box[3])
	p, _ = ogcItems(t, e, fmt.Sprintf("/ogc/collections/grids/items?bbox=%.9f,%.9f,%.9f,%.9f&bbox-crs=%s", gminLon, gminLat, gmaxLon, gmaxLat, url.QueryEscape(geo.GCJ02URI)))
	if n := inBox(box); math.Abs(float64(p.NumberMatched-n)) > 1 {
		t.Fatalf("bbox in GCJ-02: %d, SQL (the box in WGS-84) %d", p.NumberMatched, n)
	}

	// Output in GCJ-02: Content-Crs names it and every position is shifted.
	code := p.Features[0].ID
	var w84, gcj ogcFeature
	expect(t, e.get("/ogc/collections/grids/items/"+code), http.StatusOK, ctGeoJSON, &w84)
	r = e.get("/ogc/collections/grids/items/" + code + "?crs=gcj02")
	expect(t, r, http.StatusOK, ctGeoJSON, &gcj)
	if r.Header.Get("Content-Crs") != "<"+geo.GCJ02URI+">" {
		t.Errorf("Content-Crs %q", r.Header.Get("Content-Crs"))
	}
	var g1, g2 struct{ Coordinates [][][][2]float64 }
	if json.Unmarshal(w84.Geometry, &g1) != nil || json.Unmarshal(gcj.Geometry, &g2) != nil {
		t.Fatal("geometries")
	}
	lon, lat := geo.WGS84ToGCJ02(g1.Coordinates[0][0][0][0], g1.Coordinates[0][0][0][1])
	if d := math.Hypot(lon-g2.Coordinates[0][0][0][0], lat-g2.Coordinates[0][0][0][1]); d > 2e-9 {
		t.Errorf("GCJ-02 position off by %g°", d)
	}
	if l := linkOf(w84.Links, "collection"); l == nil || w84.ID != code {
		t.Errorf("item %+v", w84)
	}
	r = e.get("/ogc/collections/grids/items/440308999999999?crs=gcj02")
	expectProblem(t, r, http.StatusNotFound, typeNotFound, "", "440308999999999")
	if r.Header.Get("Content-Crs") != "" {
		t.Errorf("a problem with Content-Crs %q", r.Header.Get("Content-Crs"))
	}
	expectProblem(t, e.get("/ogc/collections/streets/items/"+code), http.StatusNotFound, typeNotFound, "", code)
	r = e.get("/ogc/collections/grids/items/" + code + "?f=html")
	expect(t, r, http.StatusOK, ctHTML, nil)
	if !strings.Contains(string(r.Body), code) || !strings.Contains(string(r.Body), "parent_code") {
		t.Errorf("item page: %s", r.Body)
	}

	// Items as an HTML table with a next link.
	r = e.get("/ogc/collections/grids/items?f=html&limit=5")
	expect(t, r, http.StatusOK, ctHTML, nil)
	if body := string(r.Body); !strings.Contains(body, "Next page") || strings.Contains(body, "Previous page") || !strings.Contains(body, "5 of "+total) || strings.Count(body, "<tr><td><a href=") != 5 {
		t.Errorf("items page: %s", body)
	}

	// Bad values: a 400 naming the parameter, nothing written.
	for _, c := range []struct{ query, param, detail string }{
		{"limit=0", "limit", "out of range"},
		{"limit=10001", "limit", "out of range"},
		{"limit=ten", "limit", "not an integer"},
		{"bbox=1,2,3", "bbox", "minLon"},
		{"bbox=114,22,200,23", "bbox", "out of range"},
		{"bbox=114,23,115,22", "bbox", "exceeds"},
		{"bbox=a,b,c,d", "bbox", "not a number"},
		{"bbox=114,22,115,23&bbox-crs=EPSG:3857", "bbox-crs", "EPSG:3857"},
		{"bbox-crs=gcj02", "bbox-crs", "goes with bbox"},
		{"crs=mars", "crs", "mars"},
		{"datetime=yesterday", "datetime", "yesterday"},
		{"datetime=2026-02-01T00:00:00Z/2026-01-01T00:00:00Z", "datetime", "after the end"},
		{"datetime=..", "datetime", "open"},
		{"cursor=nonsense", "cursor", "next link"},
		{"f=xml", "f", "json or html"},
		{"version=two", "version", "not an integer"},
		{"complete=maybe", "complete", "true or false"},
		{"valid_from=monday", "valid_from", "RFC 3339"},
		{"colour=red", "colour", "unknown query parameter"},
		{"limit=5&limit=6", "limit", "2 times"},
	} {
		expectProblem(t, e.get("/ogc/collections/grids/items?"+c.query), http.StatusBadRequest, typeBadParam, c.param, c.detail)
	}
	expectProblem(t, e.get("/ogc/collections/grids/items/"+code+"?limit=5"), http.StatusBadRequest, typeBadParam, "limit", "unknown")
	expectUnchanged(t, e, before, "bad OGC requests")
}

// TestOGCDatetimeUnits: datetime on units selects the versions valid then,
// as as_of does: before a rename the old name, after it the new one, an
// interval over it both versions.
func TestOGCDatetimeUnits(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	code := sqlStrings(t, e.store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND level = 'grid'`)[0]
	old := sqlStrings(t, e.store, `SELECT name FROM units WHERE valid_to IS NULL AND code = $1`, code)[0]
	geom := sqlStrings(t, e.store, `SELECT ST_AsGeoJSON(geom) FROM units WHERE code = $1 AND valid_to IS NULL`, code)[0]
	time.Sleep(5 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	feature := fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":"改名网格","level":"grid"},"geometry":%s}`, code, geom)
	expect(t, e.post("/v1/units:import?reason=rename", featureCollection(feature)), http.StatusOK, ctJSON, nil)
	after := time.Now().UTC()

	nameAt := func(query string) []string {
		t.Helper()
		p, _ := ogcItems(t, e, "/ogc/collections/grids/items?code="+code+"&"+query)
		var out []string
		for _, f := range p.Features {
			out = append(out, fmt.Sprintf("%v v%v", f.Properties["name"], f.Properties["version"]))
		}
		return out
	}
	at := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339Nano)) }
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"改名网格 v2"}},
		{"datetime=" + at(mid), []string{old + " v1"}},
		{"datetime=" + at(after), []string{"改名网格 v2"}},
		{"datetime=" + at(mid) + "/" + at(after), []string{old + " v1", "改名网格 v2"}},
		{"datetime=../" + at(mid), []string{old + " v1"}},
		{"datetime=" + at(after) + "/..", []string{"改名网格 v2"}},
		{"datetime=2000-01-01T00:00:00Z", nil},
	} {
		if got := nameAt(c.query); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %v, want %v", c.query, got, c.want)
		}
	}
	// The versions of an interval page by (code, version).
	p, _ := ogcItems(t, e, "/ogc/collections/grids/items?limit=1&code="+code+"&datetime="+at(mid)+"/..")
	l := linkOf(p.Links, "next")
	if p.NumberMatched != 2 || l == nil {
		t.Fatalf("interval page 1: %+v", p)
	}
	p2, _ := ogcItems(t, e, relative(t, e, l.Href))
	if len(p2.Features) != 1 || p2.Features[0].Properties["version"] != 2.0 || linkOf(p2.Links, "next") != nil || linkOf(p2.Links, "prev") == nil {
		t.Fatalf("interval page 2: %+v", p2)
	}
	p1, _ := ogcItems(t, e, relative(t, e, linkOf(p2.Links, "prev").Href))
	if len(p1.Features) != 1 || p1.Features[0].Properties["version"] != 1.0 || linkOf(p1.Links, "prev") != nil {
		t.Fatalf("interval page 1 reached back: %+v", p1)
	}
}

// TestOGCScope: a credential scoped to a street sees its units, objects and
// events only, and a 404 for a single feature elsewhere.
func TestOGCScope(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	withDemoObjectsSeed(t, e.store, 300, 5)
	street := sqlStrings(t, e.store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND level = 'street'`)[0]
	viewer := e.as(t, mintToken(t, e.store, "street-viewer", auth.Viewer, street))

	inStreet := sqlStrings(t, e.store, `SELECT count(*) FROM units WHERE valid_to IS NULL AND level = 'grid' AND left(code, 9) = $1`, street)[0]
	p, _ := ogcItems(t, viewer, "/ogc/collections/grids/items?limit=1000")
	if strconv.Itoa(p.NumberMatched) != inStreet || strconv.Itoa(len(p.Features)) != inStreet {
		t.Fatalf("scoped grids: %d, SQL %s", p.NumberMatched, inStreet)
	}
	for _, f := range p.Features {
		if !strings.HasPrefix(f.ID, street) {
			t.Fatalf("grid %s outside %s", f.ID, street)
		}
	}
	objs := sqlStrings(t, e.store, `SELECT count(*) FROM objects WHERE left(grid_code, 9) = $1`, street)[0]
	p, _ = ogcItems(t, viewer, "/ogc/collections/objects/items?limit=1000")
	if strconv.Itoa(p.NumberMatched) != objs || objs == "0" {
		t.Fatalf("scoped objects: %d, SQL %s", p.NumberMatched, objs)
	}
	for _, f := range p.Features {
		if g, _ := f.Properties["grid_code"].(string); !strings.HasPrefix(g, street) {
			t.Fatalf("object %s in grid %v outside %s", f.ID, f.Properties["grid_code"], street)
		}
	}
	all, _ := ogcItems(t, e, "/ogc/collections/objects/items?limit=1")
	if all.NumberMatched != 300 {
		t.Fatalf("admin sees %d objects", all.NumberMatched)
	}
	other := sqlStrings(t, e.store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND level = 'grid' AND left(code, 9) <> $1`, street)[0]
	expectProblem(t, viewer.get("/ogc/collections/grids/items/"+other), http.StatusNotFound, typeNotFound, "", other)
	expect(t, e.get("/ogc/collections/grids/items/"+other), http.StatusOK, ctGeoJSON, nil)
	otherObj := sqlStrings(t, e.store, `SELECT min(code) FROM objects WHERE left(grid_code, 9) <> $1`, street)[0]
	expectProblem(t, viewer.get("/ogc/collections/objects/items/"+otherObj), http.StatusNotFound, typeNotFound, "", otherObj)
	var obj ogcFeature
	expect(t, e.get("/ogc/collections/objects/items/"+otherObj), http.StatusOK, ctGeoJSON, &obj)
	if obj.Properties["class"] == nil || obj.Properties["class_name"] == nil || obj.Properties["attrs"] == nil {
		t.Errorf("object properties %+v", obj.Properties)
	}
	// Without a credential a server that needs one answers 401.
	expectProblem(t, e.as(t, "").get("/ogc/collections"), http.StatusUnauthorized, "https://gridmap.dev/problems/unauthorized", "")
}

// TestOGCFilter: filter in CQL2 text and JSON (and the draft names GDAL
// sends) selects what the same condition selects in SQL.
func TestOGCFilter(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := tableState(t, e)
	count := func(where string, args ...any) int {
		n, _ := strconv.Atoi(sqlStrings(t, e.store, `SELECT count(*) FROM units WHERE valid_to IS NULL AND level = 'grid' AND `+where, args...)[0])
		return n
	}
	parent := sqlStrings(t, e.store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND level = 'community'`)[0]
	median := sqlStrings(t, e.store, `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY area_m2) FROM units WHERE valid_to IS NULL AND level = 'grid'`)[0]
	box := "114.22,22.55,114.26,22.58"
	glon, glat := geo.WGS84ToGCJ02(114.22, 22.55)
	glon2, glat2 := geo.WGS84ToGCJ02(114.26, 22.58)
	for _, c := range []struct {
		filter, lang, crs string
		want              int
	}{
		{"parent_code = '" + parent + "' AND area_m2 > " + median, "", "", count("parent_code = $1 AND area_m2 > $2", parent, median)},
		{`{"op":"and","args":[{"op":"=","args":[{"property":"parent_code"},"` + parent + `"]},{"op":">","args":[{"property":"area_m2"},` + median + `]}]}`, "cql2-json", "",
			count("parent_code = $1 AND area_m2 > $2", parent, median)},
		{"name LIKE '%第001网格' OR area_m2 < " + median, "cql2-text", "", count("(name LIKE '%第001网格' OR area_m2 < $1)", median)},
		{"S_INTERSECTS(geometry, BBOX(" + box + "))", "", "", count("ST_Intersects(geom, ST_MakeEnvelope(114.22, 22.55, 114.26, 22.58, 4326))")},
		{fmt.Sprintf("S_INTERSECTS(geometry, BBOX(%.9f,%.9f,%.9f,%.9f))", glon, glat, glon2, glat2), "", geo.GCJ02URI,
			count("ST_Intersects(geom, ST_MakeEnvelope(114.22, 22.55, 114.26, 22.58, 4326))")},
		{"valid_from > TIMESTAMP('2000-01-01T00:00:00Z') AND T_BEFORE(valid_from, TIMESTAMP('2100-01-01T00:00:00Z'))", "", "", count("true")},
		// The draft text GDAL 3.6 sends: a date-time as a quoted string.
		{"(parent_code = '" + parent + "') AND (valid_from > '2000-01-01T00:00:00Z')", "cql-text", "", demoGridsPer},
		{"code IN ('" + parent + "001', '" + parent + "002') AND NOT complete", "", "", count("code IN ($1, $2) AND NOT complete", parent+"001", parent+"002")},
	} {
		q := "/ogc/collections/grids/items?limit=1000&filter=" + url.QueryEscape(c.filter)
		if c.lang != "" {
			q += "&filter-lang=" + c.lang
		}
		if c.crs != "" {
			q += "&filter-crs=" + url.QueryEscape(c.crs)
		}
		p, _ := ogcItems(t, e, q)
		if p.NumberMatched != c.want || p.NumberReturned != c.want || c.want == 0 {
			t.Errorf("%s: %d features, SQL %d", c.filter, p.NumberMatched, c.want)
		}
	}
	// A filter combines with the other parameters.
	p, _ := ogcItems(t, e, "/ogc/collections/grids/items?parent_code="+parent+"&filter="+url.QueryEscape("area_m2 > "+median))
	if want := count("parent_code = $1 AND area_m2 > $2", parent, median); p.NumberMatched != want {
		t.Errorf("filter and property: %d, SQL %d", p.NumberMatched, want)
	}

	var conf struct{ ConformsTo []string }
	expect(t, e.get("/ogc/conformance"), http.StatusOK, ctJSON, &conf)
	cs := strings.Join(conf.ConformsTo, " ")
	if !strings.Contains(cs, "ogcapi-features-3/1.0/conf/filter") || !strings.Contains(cs, "cql2/1.0/conf/cql2-text") || !strings.Contains(cs, "cql2/1.0/conf/basic-spatial-functions") {
		t.Errorf("conformance %s", cs)
	}

	for _, c := range []struct{ query, param, detail string }{
		{"filter=" + url.QueryEscape("area_m2 >"), "filter", "at byte"},
		{"filter=" + url.QueryEscape("colour = 'red'"), "filter", "colour"},
		{"filter=" + url.QueryEscape("area_m2 = 'big'"), "filter", "area_m2"},
		{"filter=" + url.QueryEscape(`{"op":"=","args":[{"property":"code"}]}`) + "&filter-lang=cql2-json", "filter", "at"},
		{"filter=x&filter-lang=sql", "filter-lang", "cql2-text"},
		{"filter-lang=cql2-text", "filter-lang", "goes with filter"},
		{"filter-crs=gcj02", "filter-crs", "goes with filter"},
		{"filter=" + url.QueryEscape("S_INTERSECTS(geometry, POINT(114 22))") + "&filter-crs=mars", "filter-crs", "mars"},
	} {
		expectProblem(t, e.get("/ogc/collections/grids/items?"+c.query), http.StatusBadRequest, typeBadParam, c.param, c.detail)
	}
	expectUnchanged(t, e, before, "bad filters")
}

// TestOGCEventsObjects: events select by reported_at and objects by
// updated_at with datetime; both filter, scope and read singly.
func TestOGCEventsObjects(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	withDemoObjectsSeed(t, e.store, 200, 9)
	if _, err := demo.Events(context.Background(), e.store, 150, 3, time.Now()); err != nil {
		t.Fatal(err)
	}
	mid := sqlStrings(t, e.store, `SELECT to_char(percentile_disc(0.5) WITHIN GROUP (ORDER BY reported_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM events`)[0]
	n := func(q string, args ...any) int {
		v, _ := strconv.Atoi(sqlStrings(t, e.store, q, args...)[0])
		return v
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{"", 150},
		{"datetime=" + url.QueryEscape(mid) + "/..", n(`SELECT count(*) FROM events WHERE reported_at >= $1`, mid)},
		{"datetime=../" + url.QueryEscape(mid), n(`SELECT count(*) FROM events WHERE reported_at <= $1`, mid)},
		{"datetime=" + url.QueryEscape(mid), n(`SELECT count(*) FROM events WHERE reported_at = $1`, mid)},
		{"status=closed", n(`SELECT count(*) FROM events WHERE status = 'closed'`)},
		{"filter=" + url.QueryEscape("status IN ('reported','registered') AND T_AFTER(reported_at, TIMESTAMP('"+mid+"'))"),
			n(`SELECT count(*) FROM events WHERE status IN ('reported', 'registered') AND reported_at > $1`, mid)},
	} {
		p, _ := ogcItems(t, e, "/ogc/collections/events/items?limit=1000&"+c.query)
		if p.NumberMatched != c.want || len(p.Features) != c.want {
			t.Errorf("events %s: %d, SQL %d", c.query, p.NumberMatched, c.want)
		}
		for _, f := range p.Features {
			if geometryType(t, f.Geometry) != "Point" || f.Properties["class_name"] == nil || f.Properties["department_name"] == nil {
				t.Fatalf("event %+v", f)
			}
		}
	}
	code := sqlStrings(t, e.store, `SELECT min(code) FROM events`)[0]
	var ev ogcFeature
	expect(t, e.get("/ogc/collections/events/items/"+code), http.StatusOK, ctGeoJSON, &ev)
	if ev.ID != code || ev.Properties["reported_at"] == nil {
		t.Errorf("event %+v", ev)
	}
	// Objects: every one was written now.
	p, _ := ogcItems(t, e, "/ogc/collections/objects/items?limit=1&datetime=2000-01-01T00:00:00Z/..")
	q, _ := ogcItems(t, e, "/ogc/collections/objects/items?limit=1&datetime=../2000-01-01T00:00:00Z")
	if p.NumberMatched != 200 || q.NumberMatched != 0 {
		t.Errorf("objects by updated_at: %d after 2000, %d before", p.NumberMatched, q.NumberMatched)
	}
	class := sqlStrings(t, e.store, `SELECT min(class_code) FROM objects`)[0]
	p, _ = ogcItems(t, e, "/ogc/collections/objects/items?limit=1000&class="+class)
	if want := n(`SELECT count(*) FROM objects WHERE class_code = $1`, class); p.NumberMatched != want {
		t.Errorf("objects of class %s: %d, SQL %d", class, p.NumberMatched, want)
	}
	// A viewer of one street sees its events only.
	street := sqlStrings(t, e.store, `SELECT left(min(grid_code), 9) FROM events`)[0]
	viewer := e.as(t, mintToken(t, e.store, "ev-viewer", auth.Viewer, street))
	p, _ = ogcItems(t, viewer, "/ogc/collections/events/items?limit=1000")
	if want := n(`SELECT count(*) FROM events WHERE left(grid_code, 9) = $1`, street); p.NumberMatched != want || want == 0 {
		t.Errorf("scoped events: %d, SQL %d", p.NumberMatched, want)
	}
	other := sqlStrings(t, e.store, `SELECT min(code) FROM events WHERE left(grid_code, 9) <> $1`, street)[0]
	expectProblem(t, viewer.get("/ogc/collections/events/items/"+other), http.StatusNotFound, typeNotFound, "", other)
}
