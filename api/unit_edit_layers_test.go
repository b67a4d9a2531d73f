package api_test

import (
	"net/http"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data/pgtest"
)

// TestEditOtherLayer: units of a layer other than base are an admin's to
// edit, as to import: an editor (even of the whole district) is refused
// with nothing written; an admin reshapes a unit of the layer with
// neighbours=adjust, and locate follows.
func TestEditOtherLayer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	x, y := 113.05, 22.05
	layer := featureCollection(
		unitFeat("440399", "district", square(x-0.01, y-0.01, x+0.01, y+0.01)),
		unitFeat("440399001", "street", square(x-0.01, y-0.01, x, y+0.01)),
		unitFeat("440399002", "street", square(x, y-0.01, x+0.01, y+0.01)),
	)
	expect(t, e.post("/v1/units:import?layer=police", layer), http.StatusCreated, ctJSON, nil)
	r := e.get("/v1/units/440399001?layer=police&geometry=none")
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	tag := r.Header.Get("ETag")
	path := "/v1/units/440399001?layer=police&neighbours=adjust&reason=precinct+moved"
	body := unitFeatureJSON(square(x-0.01, y-0.01, x+0.002, y+0.01), "")

	before := tableState(t, e)
	for _, scope := range []string{demoDistrict, "440399"} {
		editor := e.as(t, mintToken(t, e.store, "layer-editor-"+scope, auth.Editor, scope))
		expectProblem(t, editor.with(http.MethodPut, path, body, "If-Match", tag), http.StatusForbidden, "https://gridmap.dev/problems/forbidden", "")
	}
	expectUnchanged(t, e, before, "an editor's edit of another layer")

	var got editAnswer
	expect(t, e.with(http.MethodPut, path, body, "If-Match", tag), http.StatusOK, ctJSON, &got)
	if v := got.versions(); got.Operation != "reshape" || v["440399001"] != 2 || v["440399002"] != 2 || len(got.UnitsWritten) != 2 {
		t.Errorf("reshape of a police street: %+v", got)
	}
	if rec := sqlStrings(t, e.store, `SELECT string_agg(code || ' ' || version || ' ' || operation, ', ' ORDER BY code) FROM units WHERE valid_to IS NULL AND layer = 'police' AND level = 'street'`)[0]; rec != "440399001 2 reshape, 440399002 2 reshape" {
		t.Errorf("police streets: %s", rec)
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM units WHERE layer = 'base' AND operation <> 'import'`)[0]; n != "0" {
		t.Errorf("%s base versions written by a police edit", n)
	}
	if l := e.get(locatePath(x+0.001, y)); !strings.Contains(string(l.Body), `"440399001"`) {
		t.Errorf("locate in the area moved: %s", l)
	}
	expectProblem(t, e.with(http.MethodPut, path, body, "If-Match", tag), http.StatusPreconditionFailed, "https://gridmap.dev/problems/stale", "")
}
