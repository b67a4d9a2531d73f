package api_test

import (
	"net/http"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
	"gridmap/geo"
)

// TestRefusalsRepeatLittle holds what the fuzz targets found, through the
// real server: a refused value comes back cut to geo.MaxExcerpt bytes, not whole, and
// year 0000 is not a date; nothing is written.
func TestRefusalsRepeatLittle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	long := strings.Repeat("7", 5000)
	before := tableState(t, e)
	days := sqlStrings(t, e.store, `SELECT count(*)::text FROM work_calendar`)[0]
	for _, c := range []struct {
		method, path, param string
	}{
		{http.MethodGet, "/v1/units?level=" + long, "level"},
		{http.MethodGet, "/v1/units?geometry=" + long, "geometry"},
		{http.MethodGet, "/v1/units?bbox=" + long, "bbox"},
		{http.MethodGet, "/v1/units?bbox=1," + long + ",3,4", "bbox"},
		{http.MethodGet, "/v1/units?limit=" + long, "limit"},
		{http.MethodGet, "/v1/objects?near=1," + long, "near"},
		{http.MethodGet, "/tiles/units/0/0/" + long + ".mvt", "y"},
		{http.MethodGet, "/v1/events?from=" + long, "from"},
		{http.MethodGet, "/v1/events/" + long, "code"},
		{http.MethodPut, "/v1/calendar/days/" + long, "day"},
	} {
		r := e.do(c.method, c.path, strings.NewReader(`{"kind": "holiday"}`))
		p := expectProblem(t, r, http.StatusBadRequest, typeBadParam, c.param)
		if strings.Contains(p.Detail, long[:geo.MaxExcerpt+1]) || len(r.Body) > 1000 {
			t.Errorf("%s %.60s…: the answer repeats the value: %s", c.method, c.path, r)
		}
	}
	for _, c := range []struct {
		method, path, param string
	}{
		{http.MethodPut, "/v1/calendar/days/0000-01-01", "day"},
		{http.MethodDelete, "/v1/calendar/days/0000-12-31", "day"},
		{http.MethodGet, "/v1/events?from=0000-01-01", "from"},
		{http.MethodGet, "/v1/events?to=0000-06-30T12:00:00Z", "to"},
	} {
		expectProblem(t, e.do(c.method, c.path, strings.NewReader(`{"kind": "holiday"}`)), http.StatusBadRequest, typeBadParam, c.param, "0000-")
	}
	// Year 1 is the first the database and the codes can hold.
	expect(t, e.put("/v1/calendar/days/0001-01-01", `{"kind": "holiday"}`), http.StatusOK, ctJSON, nil)
	if r := e.del("/v1/calendar/days/0001-01-01"); r.Status != http.StatusNoContent {
		t.Errorf("DELETE 0001-01-01: %s", r)
	}
	expectUnchanged(t, e, before, "refused parameters")
	if after := sqlStrings(t, e.store, `SELECT count(*)::text FROM work_calendar`)[0]; after != days {
		t.Errorf("work_calendar had %s days, now %s", days, after)
	}
}
