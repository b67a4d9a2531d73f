package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// unitHistory reads GET /v1/units/{code}/history?geometry=none.
func unitHistory(t *testing.T, e *apiEnv, code string) []historyFeature {
	t.Helper()
	var h struct {
		Features []historyFeature `json:"features"`
	}
	expect(t, e.get("/v1/units/"+code+"/history?geometry=none"), http.StatusOK, ctGeoJSON, &h)
	return h.Features
}

// historyLine is a version as "version operation [related] → closed_by
// close_operation [close_related] (close_reason)", or "… current".
func historyLine(f historyFeature) string {
	p := f.Properties
	s := strings.Join([]string{f.ID, p.Operation, "[" + strings.Join(p.RelatedCodes, ",") + "]", p.ChangeReason}, " ")
	if p.ValidTo == nil {
		if p.ClosedBy != nil || p.CloseOperation != nil || p.CloseReason != nil || p.CloseRelated != nil {
			return s + " current, but with a closer"
		}
		return s + " → current"
	}
	if p.ClosedBy == nil || p.CloseOperation == nil || p.CloseReason == nil || p.CloseRelated == nil {
		return s + " → closed by nobody"
	}
	return s + " → " + *p.ClosedBy + " " + *p.CloseOperation + " [" + strings.Join(p.CloseRelated, ",") + "] " + *p.CloseReason
}

// TestUnitHistoryOfEdits: the history names the operation of each version
// and where it came from, and of each closed version who closed it, why,
// by which operation and where it went; a retired unit's history is read
// like any other (its last version closed by the retire or merge).
func TestUnitHistoryOfEdits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, b := neighbourGrids(t, e)
	geom, _, _ := grabFrom(t, e, a, b, 0.0005)
	expect(t, e.with(http.MethodPut, "/v1/units/"+a+"?neighbours=adjust&reason=road+moved", unitFeatureJSON(geom, ""), "If-Match", unitETag(t, e, a)), http.StatusOK, ctJSON, nil)
	expect(t, e.with(http.MethodPost, "/v1/units/"+a+":retire", `{"into":"`+b+`","reason":"villages joined"}`, "If-Match", unitETag(t, e, a)), http.StatusOK, ctJSON, nil)
	// A merge of two communities re-codes the grids of the one retired.
	c1, c2, _ := strings.Cut(sqlStrings(t, e.store, `
		SELECT x.code || ' ' || y.code FROM units x JOIN units y
		  ON y.valid_to IS NULL AND y.parent_code = x.parent_code AND y.code > x.code AND ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Buffer(y.geom, 1e-7))) > 1e-6
		WHERE x.valid_to IS NULL AND x.level = 'community' AND x.code <> $1 ORDER BY x.code DESC, y.code LIMIT 1`, a[:12])[0], " ")
	var merged editAnswer
	expect(t, e.with(http.MethodPost, "/v1/units:merge", `{"codes":["`+c1+`","`+c2+`"],"keep":"`+c1+`","reason":"decree"}`, "If-Match", unitETag(t, e, c1)+", "+unitETag(t, e, c2)),
		http.StatusOK, ctJSON, &merged)
	child := c2 + "001"
	recoded := merged.CodeMap[child]

	who := adminActor
	for _, c := range []struct {
		code string
		want []string
	}{
		{a, []string{
			a + "@1 import [] demo city → " + who + " reshape [] road moved",
			a + "@2 reshape [" + b + "] road moved → " + who + " retire [" + b + "] villages joined",
		}},
		{b, []string{
			b + "@1 import [] demo city → " + who + " reshape [] road moved",
			b + "@2 reshape [" + a + "] road moved → " + who + " retire [] villages joined",
			b + "@3 retire [" + a + "] villages joined → current",
		}},
		{c2, []string{c2 + "@1 import [] demo city → " + who + " merge [" + c1 + "] decree"}},
		{c1, []string{c1 + "@1 import [] demo city → " + who + " merge [] decree", c1 + "@2 merge [" + c2 + "] decree → current"}},
		{child, []string{child + "@1 import [] demo city → " + who + " merge [" + recoded + "] decree"}},
		{recoded, []string{recoded + "@1 merge [" + child + "] decree → current"}},
	} {
		var got []string
		for _, f := range unitHistory(t, e, c.code) {
			got = append(got, historyLine(f))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("history of %s:\n got  %q\n want %q", c.code, got, c.want)
		}
	}
	// A retired unit is 404 as a unit, and its history is there.
	expect(t, e.get("/v1/units/"+a), http.StatusNotFound, ctProblem, nil)
}
