package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data/pgtest"
)

type (
	editViolation = struct {
		Rule  string   `json:"rule"`
		Codes []string `json:"codes"`
	}
	editViolationFeature = struct {
		Type       string          `json:"type"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties struct {
			Rule    string   `json:"rule"`
			Message string   `json:"message"`
			Codes   []string `json:"codes"`
		} `json:"properties"`
	}
)

// childAtEdge is the child of a unit of level (one with other children)
// whose boundary runs longest along a sibling of its parent: the child,
// its parent and that sibling.
func childAtEdge(t *testing.T, e *apiEnv, level string) (child, parent, sibling string) {
	t.Helper()
	row := sqlStrings(t, e.store, `
		SELECT g.code || ' ' || c.code || ' ' || x.code
		FROM units c
		JOIN units g ON g.valid_to IS NULL AND g.layer = 'base' AND g.parent_code = c.code
		JOIN units x ON x.valid_to IS NULL AND x.layer = 'base' AND x.parent_code = c.parent_code AND x.code <> c.code AND x.geom && g.geom
		WHERE c.valid_to IS NULL AND c.layer = 'base' AND c.level = $1
		  AND (SELECT count(*) FROM units o WHERE o.valid_to IS NULL AND o.parent_code = c.code) > 1
		ORDER BY ST_Length(ST_Intersection(ST_Boundary(g.geom), ST_Buffer(x.geom, 1e-7))) DESC, g.code LIMIT 1`, level)
	parts := strings.Fields(row[0])
	return parts[0], parts[1], parts[2]
}

// nextCode is the code a child of to gets next in the block lo–hi of
// sequences (after the highest used there).
func nextCode(t *testing.T, e *apiEnv, to string, lo, hi int) string {
	t.Helper()
	n, _ := strconv.Atoi(sqlStrings(t, e.store, `SELECT coalesce(max(right(code, 3)::int), $3 - 1)::text FROM units
		WHERE length(code) = $2 AND left(code, length($1)) = $1 AND right(code, 3)::int BETWEEN $3 AND $4`, to, len(to)+3, lo, hi)[0])
	return fmt.Sprintf("%s%03d", to, n+1)
}

// TestEditReshapeMovesChildren: a community's boundary moves so that one of
// its grids now lies in the neighbouring community; the grid moves with its
// area and gets the next free code under its new parent, its objects and
// open events follow, the old code is retired into the new one (answer,
// history, feed). A boundary cutting through a grid is a 422 naming the
// grid and both communities, with nothing written. A street's boundary
// moving a whole community moves its grids too, re-coded under the
// community's new code.
func TestEditReshapeMovesChildren(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	g, c1, c2 := childAtEdge(t, e, "community")
	street := c1[:9]
	pt := sqlStrings(t, e.store, `SELECT ST_X(p) || ' ' || ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units WHERE valid_to IS NULL AND code = $1) x`, g)[0]
	xs, ys, _ := strings.Cut(pt, " ")
	lon, _ := strconv.ParseFloat(xs, 64)
	lat, _ := strconv.ParseFloat(ys, 64)
	obj := fmt.Sprintf("%s0101%06d", demoDistrict, 990201)
	expect(t, e.post("/v1/objects", objFeatureJSON(obj, "0101", pointJSON(lon, lat), "")), http.StatusCreated, ctGeoJSON, nil)
	open := e.reportEvent(evReport("0102", lon, lat)).ID
	closed := e.reportEvent(evReport("0102", lon, lat)).ID
	expect(t, e.post("/v1/events/"+closed+"/transitions", `{"to":"rejected","note":"test"}`), http.StatusOK, ctGeoJSON, nil)
	inG := sqlStrings(t, e.store, `SELECT count(*)::text FROM objects WHERE grid_code = $1`, g)[0]

	// A boundary through g: 422 naming g and both communities.
	cut := sqlStrings(t, e.store, `
		SELECT ST_AsGeoJSON(ST_Multi(ST_Difference(c.geom, ST_Intersection(g.geom, ST_Buffer(x.geom, 0.0005)))), 15)
		FROM units c, units g, units x
		WHERE c.valid_to IS NULL AND g.valid_to IS NULL AND x.valid_to IS NULL AND c.code = $1 AND g.code = $2 AND x.code = $3`, c1, g, c2)[0]
	before := tableState(t, e)
	var vb editViolationsBody
	r := e.with(http.MethodPut, "/v1/units/"+c1+"?neighbours=adjust&reason=x", unitFeatureJSON(cut, ""), "If-Match", unitETag(t, e, c1))
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &vb)
	// (The piece of g that c2 would take is also a gap in c2: reported.)
	straddles := slices.IndexFunc(vb.ViolationsGeoJSON.Features, func(f editViolationFeature) bool { return f.Properties.Rule == "straddles" })
	if straddles < 0 || !slices.Equal(vb.ViolationsGeoJSON.Features[straddles].Properties.Codes, []string{g, c1, c2}) ||
		!strings.Contains(vb.ViolationsGeoJSON.Features[straddles].Properties.Message, "whole children") ||
		slices.ContainsFunc(vb.Violations, func(v editViolation) bool { return v.Rule == "outside_parent" }) {
		t.Errorf("a boundary through %s (of %s, next to %s): %s", g, c1, c2, r)
	}
	// Without neighbours=adjust nothing takes the piece: g is named too.
	r = e.with(http.MethodPut, "/v1/units/"+c1+"?reason=x", unitFeatureJSON(cut, ""), "If-Match", unitETag(t, e, c1))
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &vb)
	if !slices.ContainsFunc(vb.Violations, func(v editViolation) bool { return v.Rule == "straddles" && v.Codes[0] == g }) {
		t.Errorf("a boundary through %s, neighbours kept: %s", g, r)
	}
	expectUnchanged(t, e, before, "refused reshapes cutting a child")

	// The boundary along g: g moves to c2.
	since := e.unitChanges(t, "").Next
	moved := sqlStrings(t, e.store, `
		SELECT ST_AsGeoJSON(ST_Multi(ST_Difference(c.geom, g.geom)), 15) FROM units c, units g
		WHERE c.valid_to IS NULL AND g.valid_to IS NULL AND c.code = $1 AND g.code = $2`, c1, g)[0]
	ng := nextCode(t, e, c2, 1, 999)
	var dry, got editAnswer
	body := `{"type":"Feature","geometry":` + moved + `,"properties":{},"reason":"estate joins ` + c2 + `"}`
	expect(t, e.with(http.MethodPut, "/v1/units/"+c1+"?neighbours=adjust&dry_run=true", body, "If-Match", unitETag(t, e, c1)), http.StatusOK, ctJSON, &dry)
	expectUnchanged(t, e, before, "a dry run moving a child")
	expect(t, e.with(http.MethodPut, "/v1/units/"+c1+"?neighbours=adjust", body, "If-Match", unitETag(t, e, c1)), http.StatusOK, ctJSON, &got)
	v := got.versions()
	if v[c1] != 2 || v[c2] != 2 || v[ng] != 1 || len(got.UnitsWritten) != 3 || !slices.Equal(got.UnitsRetired, []string{g}) ||
		!slices.Equal(got.NewCodes, []string{ng}) || len(got.CodeMap) != 1 || got.CodeMap[g] != ng {
		t.Errorf("answer %+v, want %s and %s written, %s → %s", got, c1, c2, g, ng)
	}
	if strconv.Itoa(got.ObjectsMoved) != inG || got.OpenEventsMoved != 1 || dry.ObjectsMoved != got.ObjectsMoved || dry.CodeMap[g] != ng {
		t.Errorf("moved %d objects (%s were in %s), %d open events; dry %+v", got.ObjectsMoved, inG, g, got.OpenEventsMoved, dry)
	}
	if o := sqlStrings(t, e.store, `SELECT grid_code FROM objects WHERE code = $1`, obj)[0]; o != ng {
		t.Errorf("object in %s, want %s", o, ng)
	}
	if ev := sqlStrings(t, e.store, `SELECT (SELECT grid_code FROM events WHERE code = $1) || ' ' || (SELECT grid_code FROM events WHERE code = $2)`, open, closed)[0]; ev != ng+" "+g {
		t.Errorf("open and closed events in %s, want %s %s", ev, ng, g)
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM objects WHERE grid_code = $1`, g)[0]; n != "0" {
		t.Errorf("%s objects left in the retired %s", n, g)
	}
	rec := sqlStrings(t, e.store, `SELECT parent_code || ' ' || operation || ' ' || array_to_string(related_codes, ',') || ' ' ||
		(SELECT close_operation || ' ' || array_to_string(close_related, ',') FROM units WHERE code = $2)
		FROM units WHERE valid_to IS NULL AND code = $1`, ng, g)[0]
	if rec != c2+" reshape "+g+" reshape "+ng {
		t.Errorf("versions of %s and %s: %q", ng, g, rec)
	}
	noOverlapNoGap(t, e, c1)
	noOverlapNoGap(t, e, c2)
	noOverlapNoGap(t, e, street)
	if ch := e.unitChanges(t, fmt.Sprintf("?since=%d", since)).Changes; len(ch) != 1 || ch[0].Operation != "reshape" || ch[0].CodeMap[g] != ng ||
		!slices.Equal(ch[0].Retired, []string{g}) || ch[0].Versions[ng] != 1 || !inBBox(ch[0].BBox, lon, lat) {
		t.Errorf("unit changes after the reshape: %+v", ch)
	}
	if u := e.get("/v1/locate?lon=" + num(lon) + "&lat=" + num(lat)); !strings.Contains(string(u.Body), ng) {
		t.Errorf("locate after the edit: %s", u)
	}
	expect(t, e.get("/v1/units/"+g), http.StatusNotFound, ctProblem, nil)
	t.Logf("a grid moved between communities in %.3f s", got.Seconds)

	// A street's boundary moves a whole community, with its grids.
	k, s1, s2 := childAtEdge(t, e, "street")
	// A community's blocks of sequences: 1–199, 200–399, 400–599.
	seq, _ := strconv.Atoi(k[9:])
	lo := max(seq/200*200, 1)
	grids := sqlStrings(t, e.store, `SELECT code FROM units WHERE valid_to IS NULL AND parent_code = $1 ORDER BY code`, k)
	kObj := fmt.Sprintf("%s0101%06d", demoDistrict, 990202)
	kpt := sqlStrings(t, e.store, `SELECT ST_X(p) || ' ' || ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM units WHERE valid_to IS NULL AND code = $1) x`, grids[len(grids)-1])[0]
	xs, ys, _ = strings.Cut(kpt, " ")
	klon, _ := strconv.ParseFloat(xs, 64)
	klat, _ := strconv.ParseFloat(ys, 64)
	expect(t, e.post("/v1/objects", objFeatureJSON(kObj, "0101", pointJSON(klon, klat), "")), http.StatusCreated, ctGeoJSON, nil)
	nk := nextCode(t, e, s2, lo, seq/200*200+199)
	moved = sqlStrings(t, e.store, `
		SELECT ST_AsGeoJSON(ST_Multi(ST_Difference(s.geom, k.geom)), 15) FROM units s, units k
		WHERE s.valid_to IS NULL AND k.valid_to IS NULL AND s.code = $1 AND k.code = $2`, s1, k)[0]
	r = e.with(http.MethodPut, "/v1/units/"+s1+"?neighbours=adjust&reason=redistricted", unitFeatureJSON(moved, ""), "If-Match", unitETag(t, e, s1))
	got = editAnswer{}
	expect(t, r, http.StatusOK, ctJSON, &got)
	if got.CodeMap[k] != nk || len(got.CodeMap) != 1+len(grids) || got.versions()[s1] != 2 || got.versions()[s2] != 2 || got.versions()[nk] != 1 {
		t.Errorf("street reshape moving %s to %s (as %s): code map %v, written %v", k, s2, nk, got.CodeMap, got.versions())
	}
	for _, gc := range grids {
		if want := nk + gc[12:]; got.CodeMap[gc] != want || got.versions()[want] != 1 {
			t.Errorf("grid %s → %s, want %s", gc, got.CodeMap[gc], want)
		}
	}
	if o := sqlStrings(t, e.store, `SELECT grid_code FROM objects WHERE code = $1`, kObj)[0]; o != nk+grids[len(grids)-1][12:] {
		t.Errorf("object of %s in %s", k, o)
	}
	if p := sqlStrings(t, e.store, `SELECT string_agg(DISTINCT parent_code, ',') FROM units WHERE valid_to IS NULL AND left(code, 12) = $1 AND level = 'grid'`, nk)[0]; p != nk {
		t.Errorf("parents of the grids under %s: %s", nk, p)
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM units WHERE valid_to IS NULL AND left(code, 12) = $1`, k)[0]; n != "0" {
		t.Errorf("%s units left current under %s", n, k)
	}
	noOverlapNoGap(t, e, s1)
	noOverlapNoGap(t, e, s2)
	noOverlapNoGap(t, e, nk)
	noOverlapNoGap(t, e, demoDistrict)
	t.Logf("a community with %d grids moved between streets in %.3f s; all in %v", len(grids), got.Seconds, time.Since(start).Round(time.Millisecond))
}
