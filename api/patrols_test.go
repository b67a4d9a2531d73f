package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"gridmap/grid"
)

type patrolPt struct {
	Worker   any      `json:"worker,omitempty"`
	T        any      `json:"t,omitempty"`
	Lon      any      `json:"lon,omitempty"`
	Lat      any      `json:"lat,omitempty"`
	Accuracy *float64 `json:"accuracy,omitempty"`
}

func patrolBody(pts []patrolPt) string {
	b, _ := json.Marshal(map[string]any{"points": pts})
	return string(b)
}

func (e *apiEnv) newWorker(name string) int64 {
	e.t.Helper()
	p, err := e.store.CreatePerson(context.Background(), grid.Person{Name: name, Role: grid.RoleWorker, Status: grid.PersonActive})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.ID
}

// walk is n fixes 30 s and 20 m apart heading east from lon, lat, ending
// an hour ago.
func walk(worker int64, lon, lat float64, n int) []patrolPt {
	return walkFrom(worker, lon, lat, n, time.Now().Add(-time.Hour).Add(-time.Duration(n)*30*time.Second).Truncate(time.Second))
}

// walkFrom is walk starting at start.
func walkFrom(worker int64, lon, lat float64, n int, start time.Time) []patrolPt {
	dLon := 20 / (111320 * math.Cos(lat*math.Pi/180))
	pts := make([]patrolPt, n)
	for i := range pts {
		pts[i] = patrolPt{Worker: worker, T: start.Add(time.Duration(i) * 30 * time.Second).Format(time.RFC3339), Lon: lon + float64(i)*dLon, Lat: lat}
	}
	return pts
}

// TestPatrolsAPI: a batch in, a jump flagged, the day and the coverage
// out; every bad point a 422 naming it with nothing written.
func TestPatrolsAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	w := e.newWorker("网格员乙")
	g := evGridPoints(t, e.store)[0]
	// Yesterday at noon in the city's time: the walk is one local day's,
	// whenever the test runs.
	loc, _ := time.LoadLocation("Asia/Shanghai")
	y := time.Now().In(loc).AddDate(0, 0, -1)
	pts := walkFrom(w, g.lon, g.lat, 11, time.Date(y.Year(), y.Month(), y.Day(), 12, 0, 0, 0, loc).UTC())
	jump := pts[5]
	ts, _ := time.Parse(time.RFC3339, pts[5].T.(string))
	jump.T = ts.Add(10 * time.Second).Format(time.RFC3339)
	jump.Lat = g.lat + 0.1 // 11 km in 10 s
	inacc := pts[6]
	ts, _ = time.Parse(time.RFC3339, pts[6].T.(string))
	inacc.T = ts.Add(5 * time.Second).Format(time.RFC3339)
	acc := 500.0
	inacc.Accuracy = &acc
	batch := append(append([]patrolPt{}, pts...), jump, inacc)

	var res struct {
		Received, Stored, Duplicates int
		Flagged                      []struct {
			Index  int
			Reason string
		}
	}
	expect(t, e.post("/v1/patrols/points", patrolBody(batch)), http.StatusOK, ctJSON, &res)
	if res.Received != 13 || res.Stored != 13 || len(res.Flagged) != 2 || res.Flagged[0].Reason != "jump" || res.Flagged[1].Reason != "inaccurate" {
		t.Fatalf("ingest: %+v", res)
	}
	expect(t, e.post("/v1/patrols/points", patrolBody(batch)), http.StatusOK, ctJSON, &res)
	if res.Stored != 0 || res.Duplicates != 13 {
		t.Fatalf("retry: %+v", res)
	}

	first, _ := time.Parse(time.RFC3339, pts[0].T.(string))
	date := first.In(loc).Format(time.DateOnly)
	var day struct {
		Points, Flagged int
		LengthM         float64 `json:"length_m"`
		Seconds         float64
		Track           *struct{ Coordinates [][2]float64 }
		Grids           []struct {
			Code    string
			Share   float64
			Seconds float64
		}
	}
	expect(t, e.get(fmt.Sprintf("/v1/patrols?worker=%d&date=%s", w, date)), http.StatusOK, ctJSON, &day)
	if day.Points != 11 || day.Flagged != 2 || math.Abs(day.LengthM-200) > 2 || day.Seconds != 300 || day.Track == nil || len(day.Track.Coordinates) != 11 || len(day.Grids) == 0 {
		t.Fatalf("day: %+v", day)
	}
	var gcj struct {
		Track *struct{ Coordinates [][2]float64 }
	}
	expect(t, e.get(fmt.Sprintf("/v1/patrols?worker=%d&date=%s&crs=gcj02", w, date)), http.StatusOK, ctJSON, &gcj)
	if gcj.Track.Coordinates[0] == day.Track.Coordinates[0] {
		t.Fatal("track not converted to gcj02")
	}
	var cov struct {
		Walked int
		Grids  []struct {
			Code    string
			Share   float64
			Workers []int64
		}
	}
	expect(t, e.get("/v1/patrols/coverage?date="+date+"&unit="+g.code[:12]), http.StatusOK, ctJSON, &cov)
	if cov.Walked == 0 || len(cov.Grids) != demoGridsPer {
		t.Fatalf("coverage: %+v", cov)
	}
	for _, c := range cov.Grids {
		if c.Code == g.code && (c.Share <= 0 || len(c.Workers) != 1 || c.Workers[0] != w) {
			t.Fatalf("coverage of %s: %+v", g.code, c)
		}
		if len(c.Workers) == 0 && c.Share != 0 {
			t.Fatalf("a grid nobody walked: %+v", c)
		}
	}
	if cov.Walked > 2 {
		t.Fatalf("a 200 m walk covers %d grids", cov.Walked)
	}

	before := countRows(t, e.store, "patrol_points")
	ok := pts[0]
	ok.T = time.Now().Add(-2 * time.Hour).Format(time.RFC3339)
	future := time.Now().Add(time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name  string
		bad   patrolPt
		param string
	}{
		{"no worker", patrolPt{T: ok.T, Lon: ok.Lon, Lat: ok.Lat}, "points[1].worker"},
		{"unknown worker", patrolPt{Worker: 987654, T: ok.T, Lon: ok.Lon, Lat: ok.Lat}, "points[1].worker"},
		{"lon out of range", patrolPt{Worker: w, T: ok.T, Lon: 181, Lat: ok.Lat}, "points[1].lon"},
		{"lat out of range", patrolPt{Worker: w, T: ok.T, Lon: ok.Lon, Lat: -91}, "points[1].lat"},
		{"no lat", patrolPt{Worker: w, T: ok.T, Lon: ok.Lon}, "points[1].lat"},
		{"future", patrolPt{Worker: w, T: future, Lon: ok.Lon, Lat: ok.Lat}, "points[1].t"},
		{"too old", patrolPt{Worker: w, T: "2020-01-01T00:00:00Z", Lon: ok.Lon, Lat: ok.Lat}, "points[1].t"},
		{"not a time", patrolPt{Worker: w, T: "yesterday", Lon: ok.Lon, Lat: ok.Lat}, "points[1].t"},
		{"same time twice", patrolPt{Worker: w, T: ok.T, Lon: ok.Lon, Lat: ok.Lat}, "points[1].t"},
		{"negative accuracy", patrolPt{Worker: w, T: future, Lon: ok.Lon, Lat: ok.Lat, Accuracy: new(-1.0)}, "points[1].accuracy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectProblem(t, e.post("/v1/patrols/points", patrolBody([]patrolPt{ok, tc.bad})), http.StatusUnprocessableEntity,
				"https://gridmap.dev/problems/invalid", tc.param)
		})
	}
	expectProblem(t, e.post("/v1/patrols/points", `{"pts": []}`), http.StatusUnprocessableEntity, "https://gridmap.dev/problems/invalid", "pts")
	if n := countRows(t, e.store, "patrol_points"); n != before {
		t.Fatalf("refused batches wrote %d points", n-before)
	}
	expectProblem(t, e.get("/v1/patrols?worker=987654"), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.get("/v1/patrols?worker=x"), http.StatusBadRequest, typeBadParam, "worker")
	expectProblem(t, e.get("/v1/patrols?worker=1&date=2026-13-01"), http.StatusBadRequest, typeBadParam, "date")
	expectProblem(t, e.get("/v1/patrols/coverage?unit=999"), http.StatusBadRequest, typeBadParam, "unit")
}
