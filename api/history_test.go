package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"
)

// The history city: district 440399 (113.0–113.1 × 22.0–22.1), one street,
// one community, two grids cut at cut° E. Moving the cut makes a second
// version of both grids.
const (
	histGridW = "440399001001001"
	histGridE = "440399001001002"
)

func historyCity(cut float64) string {
	whole := square(113.0, 22.0, 113.1, 22.1)
	return featureCollection(unitFeat("440399", "district", whole), unitFeat("440399001", "street", whole),
		unitFeat("440399001001", "community", whole),
		unitFeat(histGridW, "grid", square(113.0, 22.0, cut, 22.1)),
		unitFeat(histGridE, "grid", square(cut, 22.0, 113.1, 22.1)))
}

// historyFeature is a version as GET /v1/units/{code}/history writes it.
type historyFeature struct {
	ID         string          `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties struct {
		Code         string  `json:"code"`
		Name         string  `json:"name"`
		Level        string  `json:"level"`
		ParentCode   *string `json:"parent_code"`
		AreaM2       float64 `json:"area_m2"`
		Version      int     `json:"version"`
		ValidFrom    string  `json:"valid_from"`
		ValidTo      *string `json:"valid_to"`
		ChangedBy    string  `json:"changed_by"`
		ChangeReason string  `json:"change_reason"`
		// What made and what closed the version (edits).
		Operation      string   `json:"operation"`
		RelatedCodes   []string `json:"related_codes"`
		ClosedBy       *string  `json:"closed_by"`
		CloseReason    *string  `json:"close_reason"`
		CloseOperation *string  `json:"close_operation"`
		CloseRelated   []string `json:"close_related"`
	} `json:"properties"`
}

// TestUnitHistoryAndAsOf imports a grid pair, moves the line between them
// by a second import, and reads the history and the city before and after.
func TestUnitHistoryAndAsOf(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	expect(t, e.post("/v1/units:import?reason=first+survey", historyCity(113.05)), http.StatusCreated, ctJSON, nil)
	expect(t, e.post("/v1/units:import?reason=moved+the+line", historyCity(113.04)), http.StatusOK, ctJSON, nil)

	// History: both versions, oldest first, the first closed when the
	// second began.
	var hist struct {
		Type     string           `json:"type"`
		Features []historyFeature `json:"features"`
	}
	expect(t, e.get("/v1/units/"+histGridW+"/history"), http.StatusOK, ctGeoJSON, &hist)
	if hist.Type != "FeatureCollection" || len(hist.Features) != 2 {
		t.Fatalf("history: %+v", hist)
	}
	v1, v2 := hist.Features[0], hist.Features[1]
	if v1.ID != histGridW+"@1" || v2.ID != histGridW+"@2" || v1.Properties.Version != 1 || v2.Properties.Version != 2 {
		t.Errorf("versions %s %d, %s %d", v1.ID, v1.Properties.Version, v2.ID, v2.Properties.Version)
	}
	if v1.Properties.ValidTo == nil || *v1.Properties.ValidTo != v2.Properties.ValidFrom || v2.Properties.ValidTo != nil {
		t.Errorf("validity: v1 %s–%v, v2 %s–%v", v1.Properties.ValidFrom, v1.Properties.ValidTo, v2.Properties.ValidFrom, v2.Properties.ValidTo)
	}
	for i, v := range hist.Features {
		p := v.Properties
		if p.ChangedBy != adminActor || p.Level != "grid" || p.Name != "unit "+histGridW || p.ParentCode == nil || *p.ParentCode != "440399001001" ||
			geometryType(t, v.Geometry) != "MultiPolygon" {
			t.Errorf("version %d: %+v", i+1, p)
		}
	}
	if v1.Properties.ChangeReason != "first survey" || v2.Properties.ChangeReason != "moved the line" {
		t.Errorf("reasons %q, %q", v1.Properties.ChangeReason, v2.Properties.ChangeReason)
	}
	// 0.05° and 0.04° of 0.1° × 0.1° at 22° N (≈ 114 km²).
	if a1, a2 := v1.Properties.AreaM2, v2.Properties.AreaM2; a1 < 56e6 || a1 > 58e6 || a2 < 45e6 || a2 > 47e6 {
		t.Errorf("areas %.0f, %.0f", a1, a2)
	}
	hist.Features = nil
	expect(t, e.get("/v1/units/"+histGridW+"/history?geometry=none"), http.StatusOK, ctGeoJSON, &hist)
	if len(hist.Features) != 2 || string(hist.Features[0].Geometry) != "null" {
		t.Errorf("geometry=none: %+v", hist.Features)
	}
	expectProblem(t, e.get("/v1/units/440399001001009/history"), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.get("/v1/units/"+histGridW+"/history?layer=police"), http.StatusBadRequest, typeBadParam, "layer")

	changed, err := time.Parse(time.RFC3339Nano, v2.Properties.ValidFrom)
	if err != nil {
		t.Fatal(err)
	}
	before := url.QueryEscape(changed.Add(-time.Microsecond).Format(time.RFC3339Nano))
	at := url.QueryEscape(v2.Properties.ValidFrom)
	first := url.QueryEscape(v1.Properties.ValidFrom)
	now := url.QueryEscape(time.Now().Format(time.RFC3339Nano))

	// Unit, list and children as of an instant: [valid_from, valid_to).
	for _, c := range []struct {
		asOf    string
		version int
	}{{first, 1}, {before, 1}, {at, 2}, {now, 2}} {
		var f unitFeature
		expect(t, e.get("/v1/units/"+histGridW+"?geometry=none&as_of="+c.asOf), http.StatusOK, ctGeoJSON, &f)
		if f.Properties.Version != c.version {
			t.Errorf("unit as of %s: version %d, want %d", c.asOf, f.Properties.Version, c.version)
		}
		for _, path := range []string{"/v1/units?level=grid&parent=440399001001&geometry=none&as_of=", "/v1/units/440399001001/children?geometry=none&as_of="} {
			var fc unitCollection
			expect(t, e.get(path+c.asOf), http.StatusOK, ctGeoJSON, &fc)
			if len(fc.Features) != 2 || fc.Features[0].Properties.Version != c.version || fc.Features[1].Properties.Version != c.version {
				t.Errorf("%s%s: %+v", path, c.asOf, fc.Features)
			}
		}
	}
	var old, cur unitFeature
	expect(t, e.get("/v1/units/"+histGridW+"?as_of="+before), http.StatusOK, ctGeoJSON, &old)
	expect(t, e.get("/v1/units/"+histGridW), http.StatusOK, ctGeoJSON, &cur)
	if string(old.Geometry) != string(v1.Geometry) || string(cur.Geometry) != string(v2.Geometry) || string(old.Geometry) == string(cur.Geometry) {
		t.Errorf("geometry as of before the change is not the first version's")
	}

	// Locate: the point between the two cuts was in the west grid, now
	// the east one; single and batch, the past locator built once and
	// shared by the instants between the two imports.
	for _, c := range []struct{ asOf, grid string }{{before, histGridW}, {first, histGridW}, {at, histGridE}, {now, histGridE}, {"", histGridE}} {
		path := "/v1/locate?lon=113.045&lat=22.05"
		if c.asOf != "" {
			path += "&as_of=" + c.asOf
		}
		var loc location
		expect(t, e.get(path), http.StatusOK, ctJSON, &loc)
		if got := loc.codes(); got != [4]string{"440399", "440399001", "440399001001", c.grid} {
			t.Errorf("%s: %v, want grid %s", path, got, c.grid)
		}
		var batch struct {
			Results []location `json:"results"`
		}
		path = "/v1/locate"
		if c.asOf != "" {
			path += "?as_of=" + c.asOf
		}
		expect(t, e.post(path, `{"points":[[113.045,22.05],[113.02,22.05]]}`), http.StatusOK, ctJSON, &batch)
		if len(batch.Results) != 2 || batch.Results[0].codes()[3] != c.grid || batch.Results[1].codes()[3] != histGridW {
			t.Errorf("POST %s: %+v", path, batch.Results)
		}
	}
	// The instants between the two imports share one set of versions.
	ctx := context.Background()
	fpFirst, err := e.store.UnitsFingerprintAt(ctx, changed.Add(-time.Microsecond), "")
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := time.Parse(time.RFC3339Nano, v1.Properties.ValidFrom)
	if fp, _ := e.store.UnitsFingerprintAt(ctx, t1, ""); fp != fpFirst || fp.Current {
		t.Errorf("fingerprints between the imports: %+v and %+v", fp, fpFirst)
	}
	if fp, _ := e.store.UnitsFingerprintAt(ctx, changed, ""); fp == fpFirst || !fp.Current {
		t.Errorf("fingerprint after the change %+v, before %+v", fp, fpFirst)
	}

	// Before the city existed: nothing.
	var fc unitCollection
	expect(t, e.get("/v1/units?as_of=2000-01-01"), http.StatusOK, ctGeoJSON, &fc)
	if len(fc.Features) != 0 {
		t.Errorf("units in 2000: %v", fc.codes())
	}
	expectProblem(t, e.get("/v1/units/"+histGridW+"?as_of=2000-01-01"), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.get("/v1/units/440399001001/children?as_of=2000-01-01T00:00:00Z"), http.StatusNotFound, typeNotFound, "")
	var loc location
	expect(t, e.get("/v1/locate?lon=113.045&lat=22.05&as_of=2000-01-01"), http.StatusOK, ctJSON, &loc)
	if loc.codes() != [4]string{} {
		t.Errorf("located in 2000: %v", loc.codes())
	}

	// Units tiles: the grid level before the change differs from now's,
	// and a settled instant's tile is immutable and kept in memory.
	p := orb.Point{113.045, 22.05}
	nowTile := e.getTile(tilePath("units", p, 14))
	if cc := nowTile.Header.Get("Cache-Control"); cc != "public, max-age=0, must-revalidate" {
		t.Errorf("current tile Cache-Control %q", cc)
	}
	oldPath := tilePath("units", p, 14) + "?as_of=" + before
	var oldTile reply
	deadline := time.Now().Add(10 * time.Second)
	for {
		oldTile = e.getTile(oldPath)
		if oldTile.Header.Get("Cache-Control") == "public, max-age=31536000, immutable" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // a transaction begun before the instant is still open
	}
	if cc := oldTile.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("past tile Cache-Control %q", cc)
	}
	oldW, nowW := gridBounds(t, mvtOf(t, oldTile), p, histGridW), gridBounds(t, mvtOf(t, nowTile), p, histGridW)
	if oldW.Max[0] < 113.049 || oldW.Max[0] > 113.051 || nowW.Max[0] < 113.039 || nowW.Max[0] > 113.041 {
		t.Errorf("west grid's east edge: as of before %g, now %g; want 113.05, 113.04", oldW.Max[0], nowW.Max[0])
	}
	again := e.getTile(oldPath)
	expectCache(t, again, "hit")
	if again.Header.Get("ETag") != oldTile.Header.Get("ETag") || again.Header.Get("Cache-Control") != oldTile.Header.Get("Cache-Control") {
		t.Errorf("second past tile: %v, first %v", again.Header, oldTile.Header)
	}
	// Another instant between the two imports: the same versions, the
	// same cached tile.
	expectCache(t, e.getTile(tilePath("units", p, 14)+"?as_of="+first), "hit")
	expectCache(t, e.getTile(tilePath("units", p, 14)), "hit")
	if r := e.getTile(tilePath("units", p, 14) + "?as_of=2000-01-01"); r.Status != http.StatusNoContent {
		t.Errorf("tile in 2000: %s", r)
	}
}

// gridBounds is the bound (lon/lat) of the feature of a grid in an MVT of
// the tile of p at zoom 14.
func gridBounds(t *testing.T, b []byte, p orb.Point, code string) orb.Bound {
	t.Helper()
	layers, err := mvt.Unmarshal(b)
	if err != nil {
		t.Fatalf("mvt: %v", err)
	}
	layers.ProjectToWGS84(maptile.At(p, 14))
	for _, l := range layers {
		if l.Name != "grid" {
			continue
		}
		for _, f := range l.Features {
			if f.Properties["code"] == code {
				return f.Geometry.Bound()
			}
		}
	}
	t.Fatalf("no grid %s in the tile", code)
	return orb.Bound{}
}

// TestAsOfBadRequests: a bad, empty or future as_of, as_of on tiles
// without history, and unknown query parameters are 400s naming them.
func TestAsOfBadRequests(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	future := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	p := orb.Point{114.25, 22.6}
	for _, c := range []struct {
		method, path, param string
	}{
		{"GET", "/v1/units?as_of=yesterday", "as_of"},
		{"GET", "/v1/units?as_of=", "as_of"},
		{"GET", "/v1/units?as_of=" + future, "as_of"},
		{"GET", "/v1/units?as_of=2026-13-01", "as_of"},
		{"GET", "/v1/units/" + demoDistrict + "?as_of=0000-01-01", "as_of"},
		{"GET", "/v1/units/" + demoDistrict + "/children?as_of=soon", "as_of"},
		{"GET", "/v1/locate?lon=114.2&lat=22.6&as_of=" + future, "as_of"},
		{"POST", "/v1/locate?as_of=x", "as_of"},
		{"GET", tilePath("units", p, 12) + "?as_of=x", "as_of"},
		{"GET", tilePath("units", p, 12) + "?as_of=" + future, "as_of"},
		{"GET", tilePath("objects", p, 12) + "?as_of=2026-01-01", "as_of"},
		{"GET", tilePath("events", p, 12) + "?as_of=2026-01-01", "as_of"},
		// Unknown parameters.
		{"GET", "/v1/units?levle=grid", "levle"},
		{"GET", "/v1/units?asof=2026-01-01", "asof"},
		{"GET", "/v1/units/" + demoDistrict + "?limit=5", "limit"},
		{"GET", "/v1/units/" + demoDistrict + "/children?level=grid", "level"},
		{"GET", "/v1/units/" + demoDistrict + "/history?as_of=2026-01-01", "as_of"},
		{"GET", "/v1/locate?lon=114.2&lat=22.6&crs=epsg:3857", "crs"},
		{"POST", "/v1/locate?dry_run=true", "dry_run"},
		{"GET", "/v1/units?level=grid&level=street", "level"},
	} {
		var r reply
		if c.method == "POST" {
			r = e.post(c.path, `{"points":[[114.2,22.6]]}`)
		} else {
			r = e.get(c.path)
		}
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			expectProblem(t, r, http.StatusBadRequest, typeBadParam, c.param)
		})
	}
	// Every parameter each route takes is still taken.
	for _, path := range []string{
		"/v1/units?level=street&parent=" + demoDistrict + "&layer=base&bbox=113,22,115,23&geometry=none&limit=2&cursor=1&as_of=2026-01-01",
		"/v1/units/" + demoDistrict + "/children?layer=base&geometry=simplified&limit=2&cursor=1&as_of=" + url.QueryEscape(time.Now().Format(time.RFC3339Nano)),
		"/v1/units/" + demoDistrict + "?layer=base&geometry=none",
		"/v1/units/" + demoDistrict + "/history?layer=base&geometry=simplified",
		"/v1/locate?lon=114.2&lat=22.6&as_of=2026-01-01",
	} {
		if r := e.get(path); r.Status != http.StatusOK {
			t.Errorf("%s: %s", path, r)
		}
	}
}
