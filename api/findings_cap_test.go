package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A unit import or validation lists the first violations in full and
// counts the rest by rule.
func TestUnitViolationsCapped(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := tableState(t, e)
	// Squares apart, so that only the rule under test is broken.
	square := func(i int) string {
		x := 110 + float64(i)*0.002
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,20],[%g,20],[%g,20.001],[%g,20.001],[%g,20]]]}`, x, x+0.001, x+0.001, x, x)
	}
	collection := func(n int, props func(i int) string) string {
		fs := make([]string, n)
		for i := range fs {
			fs[i] = fmt.Sprintf(`{"type":"Feature","properties":%s,"geometry":%s}`, props(i), square(i))
		}
		return `{"type":"FeatureCollection","features":[` + strings.Join(fs, ",") + `]}`
	}
	type capped struct {
		problem
		ViolationsTruncated map[string]int `json:"violations_truncated"`
	}
	check := func(path, body string, listed int, truncated map[string]int, inDetail string) {
		t.Helper()
		r := e.post(path, body)
		expectProblem(t, r, http.StatusUnprocessableEntity, typeViolations, "", inDetail)
		var p capped
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Violations) != listed {
			t.Errorf("%s: %d violations listed, want %d", path, len(p.Violations), listed)
		}
		if fmt.Sprint(p.ViolationsTruncated) != fmt.Sprint(truncated) {
			t.Errorf("%s: violations_truncated %v, want %v", path, p.ViolationsTruncated, truncated)
		}
	}
	// 1,100 bad codes: the default lists 1,000.
	badCodes := collection(1100, func(i int) string { return fmt.Sprintf(`{"code":"99%04d","level":"district","name":"x"}`, i) })
	check("/v1/units:validate", badCodes, 1000, map[string]int{"bad_code": 100}, "1100 violation(s)")
	check("/v1/units:import", badCodes, 1000, map[string]int{"bad_code": 100}, "1100 violation(s)")
	// Grids of an unknown community, found in the database, with the
	// parameter.
	orphans := collection(30, func(i int) string {
		return fmt.Sprintf(`{"code":"440308001%03d%03d","level":"grid","name":"g"}`, 500+i/10, 1+i%10)
	})
	check("/v1/units:validate?max_violations=10", orphans, 10, map[string]int{"unknown_parent": 20}, "30 violation(s)")
	check("/v1/units:validate?max_violations=100", orphans, 30, nil, "30 violation(s)")
	expectProblem(t, e.post("/v1/units:validate?max_violations=0", orphans), http.StatusBadRequest, typeBadParam, "max_violations")
	expectUnchanged(t, e, before, "capped imports")
}
