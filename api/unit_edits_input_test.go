package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// TestEditBadDrawings: what an editor may draw wrong is a 422 saying what
// and where, and nothing is written: a self-intersecting outline (PostGIS's
// reason and location; repair=true makes it valid), a grid drawn outside
// its community, a ring with too few points, a position with a third
// ordinate.
func TestEditBadDrawings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, _ := neighbourGrids(t, e)
	tag := unitETag(t, e, a)
	before := accessState(t, e.store)
	box := sqlStrings(t, e.store, `SELECT ST_XMin(geom) || ' ' || ST_YMin(geom) || ' ' || ST_XMax(geom) || ' ' || ST_YMax(geom) FROM units WHERE valid_to IS NULL AND code = $1`, a)[0]
	var x0, y0, x1, y1 float64
	if _, err := fmt.Sscan(box, &x0, &y0, &x1, &y1); err != nil {
		t.Fatal(err)
	}
	put := func(geom, query string) reply {
		return e.with(http.MethodPut, "/v1/units/"+a+"?reason=test"+query, unitFeatureJSON(geom, ""), "If-Match", tag)
	}
	// A bow tie over the grid's own box: its edges cross in the middle.
	bowTie := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%[1]g,%[2]g],[%[3]g,%[4]g],[%[3]g,%[2]g],[%[1]g,%[4]g],[%[1]g,%[2]g]]]}`, x0, y0, x1, y1)
	r := put(bowTie, "")
	var v editViolationsBody
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &v)
	if len(v.Violations) == 0 || !strings.Contains(strings.ToLower(string(r.Body)), "self-intersection") {
		t.Errorf("a bow tie: %s", r)
	}
	if len(v.ViolationsGeoJSON.Features) == 0 {
		t.Errorf("a bow tie: no violation drawn: %s", r)
	}
	// A square far outside the community (1° east).
	far := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%[1]g,%[2]g],[%[3]g,%[2]g],[%[3]g,%[4]g],[%[1]g,%[4]g],[%[1]g,%[2]g]]]}`, x0+1, y0, x1+1, y1)
	r = put(far, "")
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &v)
	outside := false
	for _, vi := range v.Violations {
		outside = outside || strings.Contains(vi.Rule, "parent")
	}
	if !outside {
		t.Errorf("a grid outside its community: %s", r)
	}
	// Malformed GeoJSON: a ring of three positions, a position of three.
	r = put(fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%[1]g,%[2]g],[%[3]g,%[4]g],[%[1]g,%[2]g]]]}`, x0, y0, x1, y1), "")
	if r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
		t.Errorf("a ring of three positions: %s", r)
	}
	r = put(fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%[1]g,%[2]g,5],[%[3]g,%[2]g],[%[3]g,%[4]g],[%[1]g,%[2]g]]]}`, x0, y0, x1, y1), "")
	if r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
		t.Errorf("a position with three ordinates: %s", r)
	}
	if after := accessState(t, e.store); after != before {
		t.Errorf("a refused drawing changed the database")
	}
}
