package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
)

// Limits of a patrol batch.
const (
	maxPatrolBatch      = 10000
	maxPatrolBodyBytes  = 4 << 20
	patrolFutureOK      = 5 * time.Minute     // a phone's clock runs ahead
	patrolOldest        = 31 * 24 * time.Hour // older points are refused: tracks of closed months stay as they were
	maxPatrolAccuracyIn = 100000.0            // metres; beyond it the value is not an accuracy
)

func (s *Server) patrolRoutes(r *mux.Router) {
	s.handleWrite(r, "/v1/patrols/points", auth.Report, s.postPatrolPoints, http.MethodPost)
	s.handle(r, "/v1/patrols", s.getPatrol, http.MethodGet)
	s.handle(r, "/v1/patrols/coverage", s.getPatrolCoverage, http.MethodGet)
}

type patrolPointIn struct {
	Worker   *int64   `json:"worker"`
	T        *string  `json:"t"`
	Lon      *float64 `json:"lon"`
	Lat      *float64 `json:"lat"`
	Accuracy *float64 `json:"accuracy"`
}

// postPatrolPoints: POST /v1/patrols/points?crs=, body {"points": [...]}.
// A point that cannot be a fix (missing member, out of range, in the
// future, the same worker and time twice) refuses the whole batch, naming
// it: nothing is written. A fix that is only implausible (a jump faster
// than 200 km/h, an accuracy over 100 m) is kept, flagged, and left out of
// tracks; the answer lists it.
func (s *Server) postPatrolPoints(w http.ResponseWriter, r *http.Request) error {
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	var body struct {
		Points []patrolPointIn `json:"points"`
	}
	raw, err := readBodyMax(w, r, maxPatrolBodyBytes)
	if err != nil {
		return err
	}
	if err := decodeStrict(raw, &body, `{"points": [{"worker", "t", "lon", "lat", "accuracy"}, …]}`); err != nil {
		return err
	}
	switch {
	case body.Points == nil:
		return invalidMember("points", "points is missing: an array of {worker, t, lon, lat, accuracy}")
	case len(body.Points) > maxPatrolBatch:
		return &Problem{Type: probTooLarge, Title: "Batch too large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("a batch holds at most %d points; this one has %d", maxPatrolBatch, len(body.Points)), Extensions: map[string]any{"limit": maxPatrolBatch}}
	}
	now := time.Now()
	pts := make([]data.PatrolPoint, len(body.Points))
	type key struct {
		w int64
		t int64
	}
	seen := make(map[key]int, len(pts))
	grids := map[string]bool{}
	loc := s.Locator()
	for i, p := range body.Points {
		at := func(m string) string { return fmt.Sprintf("points[%d].%s", i, m) }
		switch {
		case p.Worker == nil || *p.Worker <= 0:
			return invalidMember(at("worker"), fmt.Sprintf("points[%d]: worker is missing or not a person's id", i))
		case p.T == nil:
			return invalidMember(at("t"), fmt.Sprintf("points[%d]: t is missing: the fix's time, RFC 3339", i))
		case p.Lon == nil || p.Lat == nil:
			return invalidMember(at(map[bool]string{true: "lon", false: "lat"}[p.Lon == nil]), fmt.Sprintf("points[%d]: lon and lat are required", i))
		case !(*p.Lon >= -180 && *p.Lon <= 180):
			return invalidMember(at("lon"), fmt.Sprintf("points[%d]: longitude %g is out of range [-180, 180]", i, *p.Lon))
		case !(*p.Lat >= -90 && *p.Lat <= 90):
			return invalidMember(at("lat"), fmt.Sprintf("points[%d]: latitude %g is out of range [-90, 90]", i, *p.Lat))
		case p.Accuracy != nil && !(*p.Accuracy >= 0 && *p.Accuracy <= maxPatrolAccuracyIn):
			return invalidMember(at("accuracy"), fmt.Sprintf("points[%d]: accuracy %g is not a radius in metres [0, %g]", i, *p.Accuracy, maxPatrolAccuracyIn))
		}
		t, err := time.Parse(time.RFC3339Nano, *p.T)
		switch {
		case err != nil:
			return invalidMember(at("t"), fmt.Sprintf("points[%d]: t %q is not an RFC 3339 time such as 2026-12-05T09:30:00+08:00", i, geo.Excerpt(*p.T, 60)))
		case t.After(now.Add(patrolFutureOK)):
			return invalidMember(at("t"), fmt.Sprintf("points[%d]: t %s is in the future", i, t.Format(time.RFC3339)))
		case t.Before(now.Add(-patrolOldest)):
			return invalidMember(at("t"), fmt.Sprintf("points[%d]: t %s is more than %d days old", i, t.Format(time.RFC3339), int(patrolOldest.Hours()/24)))
		}
		k := key{*p.Worker, t.UnixMicro()} // PostgreSQL keeps microseconds
		if j, dup := seen[k]; dup {
			return invalidMember(at("t"), fmt.Sprintf("points[%d] has the worker and time of points[%d]", i, j))
		}
		seen[k] = i
		lon, lat := geo.ToWGS84(crs, *p.Lon, *p.Lat)
		pts[i] = data.PatrolPoint{Worker: *p.Worker, T: t, Lon: lon, Lat: lat, AccuracyM: p.Accuracy}
		if l := loc.Locate(lon, lat); l.Grid != nil {
			pts[i].GridCode = l.Grid.Code
		}
		grids[pts[i].GridCode] = true
	}
	units := make([]string, 0, len(grids))
	for g := range grids {
		units = append(units, g)
	}
	if err := need(r, auth.Report, units...); err != nil {
		return err
	}
	res, err := s.store.IngestPatrolPoints(r.Context(), pts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, res)
	return nil
}

// dateParam reads a local calendar date (YYYY-MM-DD); default today in
// the city's time zone.
func (s *Server) dateParam(r *http.Request) (time.Time, error) {
	v := r.URL.Query().Get("date")
	if v == "" {
		cfg, err := s.store.EventConfig(r.Context())
		if err != nil {
			return time.Time{}, err
		}
		y, m, d := time.Now().In(cfg.Calendar.Location()).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, &paramError{"date", fmt.Sprintf("date=%q: want a day such as 2026-12-05", geo.Excerpt(v, geo.MaxExcerpt))}
	}
	return t, nil
}

// getPatrol: GET /v1/patrols?worker=&date=&crs= — a worker's day: the
// track as GeoJSON, its length and time on patrol, and per grid the share
// covered and the time inside.
func (s *Server) getPatrol(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("worker") == "" {
		return &paramError{"worker", "query parameter worker is required: a person's id"}
	}
	worker, err := strconv.ParseInt(q.Get("worker"), 10, 64)
	if err != nil || worker <= 0 {
		return &paramError{"worker", fmt.Sprintf("worker=%q: want a person's id", geo.Excerpt(q.Get("worker"), geo.MaxExcerpt))}
	}
	day, err := s.dateParam(r)
	if err != nil {
		return err
	}
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	d, err := s.store.PatrolDay(r.Context(), worker, day)
	if err != nil {
		return notFoundAs(err, "no person with id %d", worker)
	}
	// A scoped reader sees the day only when it may read a grid walked.
	if len(d.Grids) > 0 {
		var readErr error
		for _, g := range d.Grids {
			if readErr = needRead(r, g.Code); readErr == nil {
				break
			}
		}
		if readErr != nil {
			return readErr
		}
	}
	out := struct {
		*data.PatrolDay
		Track any `json:"track"`
	}{PatrolDay: d}
	if d.Track != nil {
		g, err := wkb.Unmarshal(d.Track)
		if err != nil {
			return err
		}
		if ls, ok := g.(orb.LineString); ok {
			coords := make([][2]float64, len(ls))
			for i, p := range ls {
				x, y := geo.FromWGS84(crs, p[0], p[1])
				coords[i] = [2]float64{round7(x), round7(y)}
			}
			out.Track = map[string]any{"type": "LineString", "coordinates": coords}
		}
	}
	setContentCRS(w, crs)
	writeJSON(w, http.StatusOK, ctJSON, out)
	return nil
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// getPatrolCoverage: GET /v1/patrols/coverage?date=&unit= — every base
// grid under unit with the share of its area within 30 m of a track that
// day, the time workers spent in it and who.
func (s *Server) getPatrolCoverage(w http.ResponseWriter, r *http.Request) error {
	day, err := s.dateParam(r)
	if err != nil {
		return err
	}
	unit, err := s.unitParam(r, r.URL.Query().Get("unit"))
	if err != nil {
		return err
	}
	if err := needRead(r, unit); err != nil && unit != "" {
		return err
	}
	cov, err := s.store.PatrolCoverage(r.Context(), unit, day)
	if err != nil {
		return err
	}
	// A scoped reader without unit= gets the grids it may read.
	if id := identityOf(r); id != nil && unit == "" {
		kept := cov[:0]
		for _, c := range cov {
			if needRead(r, c.Code) == nil {
				kept = append(kept, c)
			}
		}
		cov = kept
	}
	walked := 0
	for _, c := range cov {
		if c.Share > 0 {
			walked++
		}
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"date": day.Format(time.DateOnly), "unit": unit, "radius_m": data.PatrolRadiusM,
		"grids": cov, "walked": walked})
	return nil
}
