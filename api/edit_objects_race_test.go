package api_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// TestEditVersusObjectWrites: a reshape that moves a band from one grid to
// its neighbour, and at the same time objects written in the band (a
// create, a replace, an import of one row), 30 rounds, the band going back
// and forth. However the writes interleave, every object ends in the grid
// that holds it (gridmap_assign of its geometry).
func TestEditVersusObjectWrites(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, b := neighbourGrids(t, e)
	grab, lon, lat := grabFrom(t, e, a, b, 0.0005)
	orig := sqlStrings(t, e.store, `SELECT ST_AsGeoJSON(geom, 9) FROM units WHERE valid_to IS NULL AND code = $1`, a)[0]
	replaced := fmt.Sprintf("%s0101%06d", demoDistrict, 990300)
	expect(t, e.post("/v1/objects", objFeatureJSON(replaced, "0101", pointJSON(lon, lat), "")), http.StatusCreated, ctGeoJSON, nil)
	const rounds, creates = 30, 10
	edits := 0
	for round := range rounds {
		geom := grab
		if round%2 == 1 {
			geom = orig
		}
		tag := unitETag(t, e, a)
		x := lon + float64(round%7-3)*1e-5 // within the band
		delay := time.Duration(round%6) * 2 * time.Millisecond
		var wg sync.WaitGroup
		wg.Go(func() {
			r, err := e.send(http.MethodPut, "/v1/units/"+a+"?neighbours=adjust&reason=race", unitFeatureJSON(geom, ""), "If-Match", tag)
			if err != nil || r.Status != http.StatusOK {
				t.Errorf("round %d: reshape: %v %s", round, err, r)
			}
		})
		for k := range creates { // spread over the edit's run
			wg.Go(func() {
				time.Sleep(delay + time.Duration(k)*4*time.Millisecond)
				r, err := e.send(http.MethodPost, "/v1/objects", objFeatureJSON(fmt.Sprintf("%s0101%06d", demoDistrict, 990000+creates*round+k), "0101", pointJSON(x, lat), ""))
				if err != nil || r.Status != http.StatusCreated {
					t.Errorf("round %d: create: %v %s", round, err, r)
				}
			})
		}
		wg.Go(func() {
			time.Sleep(delay / 2)
			r, err := e.send(http.MethodPut, "/v1/objects/"+replaced, objFeatureJSON(replaced, "0101", pointJSON(x, lat), ""))
			if err != nil || r.Status != http.StatusOK {
				t.Errorf("round %d: replace: %v %s", round, err, r)
			}
		})
		wg.Go(func() {
			time.Sleep(delay * 2)
			row := objFeatureJSON(fmt.Sprintf("%s0101%06d", demoDistrict, 990500+round), "0101", pointJSON(x, lat), "") + "\n"
			r, err := e.send(http.MethodPost, "/v1/objects:import?format=ndjson", row)
			if err != nil || r.Status != http.StatusCreated {
				t.Errorf("round %d: import: %v %s", round, err, r)
			}
		})
		wg.Wait()
		edits++
		if bad := sqlStrings(t, e.store, `SELECT coalesce(string_agg(code || ' in ' || coalesce(grid_code, '-') || ', not ' || coalesce(gridmap_assign(geom), '-'), '; '), '')
			FROM objects WHERE grid_code IS DISTINCT FROM gridmap_assign(geom)`)[0]; bad != "" {
			t.Fatalf("round %d: objects in the wrong grid: %s", round, bad)
		}
	}
	// The last round gave the band back to b.
	inBand := sqlStrings(t, e.store, `SELECT count(*)::text FROM objects WHERE code LIKE $1 AND grid_code = $2`, demoDistrict+"0101990%", b)[0]
	if want := fmt.Sprint(1 + (creates+1)*rounds); inBand != want {
		t.Errorf("%s of the objects written are in %s after the last round, want %s", inBand, b, want)
	}
	t.Logf("%d rounds of a reshape against %d creates, a replace and an import in the band: %v", edits, creates, time.Since(start).Round(time.Millisecond))
}
