package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"

	"gridmap/grid"
)

// locateOne: GET /v1/locate?lon=&lat=
func (s *Server) locateOne(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lon, err := parseFloatParam(q, "lon", -180, 180)
	if err != nil {
		fail(w, r, err)
		return
	}
	lat, err := parseFloatParam(q, "lat", -90, 90)
	if err != nil {
		fail(w, r, err)
		return
	}
	s.metrics.locateSingle.Inc()
	writeJSON(w, http.StatusOK, s.Locator().Locate(lon, lat))
}

// bytesPerPoint bounds the body of a batch: "[114.123456789,22.123456789]," with room.
const bytesPerPoint = 64

// locateMany: POST /v1/locate {"points":[[lon,lat],…]} → {"results":[…]} in input order.
func (s *Server) locateMany(w http.ResponseWriter, r *http.Request) {
	limit := s.opts.MaxLocatePoints
	tooMany := func(n string) {
		writeProblem(w, r, Problem{Type: probTooLarge, Title: "Too many points", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("a batch may hold at most %d points%s; split it", limit, n), Extensions: map[string]any{"limit": limit}})
	}
	body := http.MaxBytesReader(w, r.Body, int64(limit)*bytesPerPoint+4096)
	raw, err := io.ReadAll(body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			tooMany("")
			return
		}
		writeProblem(w, r, Problem{Type: probBadRequest, Title: "Unreadable body", Status: http.StatusBadRequest, Detail: err.Error()})
		return
	}
	var req struct {
		Points []json.RawMessage `json:"points"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		writeProblem(w, r, Problem{Type: probBadRequest, Title: "Malformed JSON", Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("want {\"points\": [[lon, lat], …]}: %v", err)})
		return
	}
	if req.Points == nil {
		badParam(w, r, "points", `the body needs "points": [[lon, lat], …]`)
		return
	}
	if len(req.Points) > limit {
		tooMany(fmt.Sprintf(", this one has %d", len(req.Points)))
		return
	}
	pts := make([][2]float64, len(req.Points))
	for i, p := range req.Points {
		var xy []float64
		if err := json.Unmarshal(p, &xy); err != nil || len(xy) != 2 {
			badParam(w, r, fmt.Sprintf("points[%d]", i), fmt.Sprintf("points[%d] is %s: want [lon, lat] as two numbers", i, truncate(string(p), 60)))
			return
		}
		if math.IsNaN(xy[0]) || xy[0] < -180 || xy[0] > 180 {
			badParam(w, r, fmt.Sprintf("points[%d]", i), fmt.Sprintf("points[%d]: longitude %g is out of range [-180, 180]", i, xy[0]))
			return
		}
		if math.IsNaN(xy[1]) || xy[1] < -90 || xy[1] > 90 {
			badParam(w, r, fmt.Sprintf("points[%d]", i), fmt.Sprintf("points[%d]: latitude %g is out of range [-90, 90]", i, xy[1]))
			return
		}
		pts[i] = [2]float64{xy[0], xy[1]}
	}
	s.metrics.locateBatch.Add(float64(len(pts)))
	loc := s.Locator()
	out := make([]grid.Location, len(pts))
	for i, p := range pts {
		out[i] = loc.Locate(p[0], p[1])
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
