package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
	"gridmap/grid"
)

// After every unit write the server changes only the units that changed in
// its locator; the result must locate exactly as a locator built afresh
// from the store. A sequence of edits — reshape with neighbours=adjust,
// merge of two communities (their grids re-coded), retire, create — and,
// on a second server that missed every notice, all of them at once.
func TestLocatorIncrementalMatchesFull(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	e := newEnv(t, store, api.Options{})
	other := newEnv(t, store, api.Options{}) // never refreshed until the end
	ctx := context.Background()

	bbox := sqlStrings(t, store, `SELECT ST_XMin(e) || ' ' || ST_YMin(e) || ' ' || ST_XMax(e) || ' ' || ST_YMax(e)
		FROM (SELECT ST_Extent(geom) AS e FROM units WHERE valid_to IS NULL) x`)[0]
	var box [4]float64
	for i, f := range strings.Fields(bbox) {
		box[i], _ = strconv.ParseFloat(f, 64)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	// compare checks 3,000 random points of the city, and every vertex of
	// the units the last write wrote (points on shared edges, where the
	// lowest code must win).
	compare := func(step string, srv *api.Server) {
		t.Helper()
		units, err := store.CurrentUnits(ctx)
		if err != nil {
			t.Fatal(err)
		}
		full, got := grid.NewLocator(units), srv.Locator()
		if got.Len() != full.Len() {
			t.Fatalf("%s: the locator holds %d units, the store %d", step, got.Len(), full.Len())
		}
		var pts [][2]float64
		for i := 0; i < 3000; i++ {
			pts = append(pts, [2]float64{box[0] - 0.01 + rng.Float64()*(box[2]-box[0]+0.02), box[1] - 0.01 + rng.Float64()*(box[3]-box[1]+0.02)})
		}
		for _, v := range sqlStrings(t, store, `SELECT ST_X(p.geom) || ' ' || ST_Y(p.geom) FROM units u, ST_DumpPoints(u.geom) p
			WHERE u.valid_to IS NULL AND u.valid_from = (SELECT max(valid_from) FROM units)`) {
			f := strings.Fields(v)
			x, _ := strconv.ParseFloat(f[0], 64)
			y, _ := strconv.ParseFloat(f[1], 64)
			pts = append(pts, [2]float64{x, y})
		}
		for _, p := range pts {
			a, _ := json.Marshal(got.Locate(p[0], p[1]))
			b, _ := json.Marshal(full.Locate(p[0], p[1]))
			if string(a) != string(b) {
				t.Fatalf("%s: at %v the locator answers %s, a full build %s", step, p, a, b)
			}
		}
	}

	// Reshape with neighbours=adjust.
	a, b := neighbourGrids(t, e)
	geom, _, _ := grabFrom(t, e, a, b, 0.0005)
	expect(t, e.with(http.MethodPut, "/v1/units/"+a+"?reason=x&neighbours=adjust", unitFeatureJSON(geom, "改"), "If-Match", unitETag(t, e, a)), http.StatusOK, ctJSON, nil)
	compare("reshape", e.srv)

	// Merge two adjacent communities of another street.
	pair := sqlStrings(t, store, `
		SELECT x.code || ' ' || y.code FROM units x JOIN units y
		  ON y.valid_to IS NULL AND y.parent_code = x.parent_code AND y.code > x.code AND ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Buffer(y.geom, 1e-7))) > 1e-6
		WHERE x.valid_to IS NULL AND x.level = 'community' AND x.code <> $1 ORDER BY x.code DESC, y.code LIMIT 1`, a[:12])[0]
	c1, c2, _ := strings.Cut(pair, " ")
	var merged editAnswer
	expect(t, e.with(http.MethodPost, "/v1/units:merge", fmt.Sprintf(`{"codes":[%q,%q],"keep":%q,"reason":"x"}`, c1, c2, c1),
		"If-Match", unitETag(t, e, c1)+", "+unitETag(t, e, c2)), http.StatusOK, ctJSON, &merged)
	if len(merged.CodeMap) == 0 {
		t.Fatalf("merge re-coded nothing: %+v", merged)
	}
	compare("merge", e.srv)

	// Retire a into b.
	expect(t, e.with(http.MethodPost, "/v1/units/"+a+":retire", fmt.Sprintf(`{"into":%q,"reason":"x"}`, b), "If-Match", unitETag(t, e, a)), http.StatusOK, ctJSON, nil)
	compare("retire", e.srv)

	// Create a grid inside b, taken from it.
	sq := sqlStrings(t, store, `SELECT ST_AsGeoJSON(ST_Expand(ST_PointOnSurface(geom), 0.0003), 9) FROM units WHERE valid_to IS NULL AND code = $1`, b)[0]
	expect(t, e.with(http.MethodPost, "/v1/units?neighbours=adjust", `{"type":"Feature","geometry":`+sq+`,"properties":{"name":"新","parent_code":"`+a[:12]+`"},"reason":"x"}`),
		http.StatusCreated, ctJSON, nil)
	compare("create", e.srv)

	// Every write refreshed incrementally; the start was the only full build.
	expectSamples(t, scrape(t, e), `gridmap_locator_builds_total{kind="full"} 1`, `gridmap_locator_builds_total{kind="incremental"} 4`)

	// The other server missed every notice: one refresh catches up.
	if err := other.srv.RefreshLocator(ctx); err != nil {
		t.Fatal(err)
	}
	compare("catch-up", other.srv)
	expectSamples(t, scrape(t, other), `gridmap_locator_builds_total{kind="full"} 1`, `gridmap_locator_builds_total{kind="incremental"} 1`)
}
