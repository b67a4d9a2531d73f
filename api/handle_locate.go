package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/gorilla/mux"

	"gridmap/geo"
	"gridmap/grid"
)

// locateRoutes registers the point locator, single and batch.
func (s *Server) locateRoutes(r *mux.Router) {
	s.handle(r, "/v1/locate", s.locateOne, http.MethodGet)
	s.handle(r, "/v1/locate", s.locateMany, http.MethodPost)
}

// locateOne: GET /v1/locate?lon=&lat=&as_of=&crs=
func (s *Server) locateOne(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	lon, err := parseFloatParam(q, "lon", -180, 180)
	if err != nil {
		return crsError(err, crs)
	}
	lat, err := parseFloatParam(q, "lat", -90, 90)
	if err != nil {
		return crsError(err, crs)
	}
	loc, err := s.locatorOf(r)
	if err != nil {
		return err
	}
	s.metrics.locateSingle.Inc()
	setContentCRS(w, crs)
	writeJSON(w, http.StatusOK, ctJSON, locateIn(loc, crs, lon, lat))
	return nil
}

// locateIn locates a position given in crs; the answer echoes the position
// as it was sent.
func locateIn(loc *grid.Locator, crs geo.CRS, lon, lat float64) grid.Location {
	out := loc.Locate(geo.ToWGS84(crs, lon, lat))
	out.Lon, out.Lat = lon, lat
	return out
}

// bytesPerPoint bounds the body of a batch: "[114.123456789,22.123456789]," with room.
const bytesPerPoint = 64

// locatorOf is the locator a locate request asks for: the current one,
// or with as_of the one of the units valid then.
func (s *Server) locatorOf(r *http.Request) (*grid.Locator, error) {
	asOf, err := s.asOfParam(r)
	if err != nil {
		return nil, err
	}
	return s.locatorAt(r.Context(), asOf)
}

// locateMany: POST /v1/locate?as_of=&crs= {"points":[[lon,lat],…]} → {"results":[…]} in input order.
func (s *Server) locateMany(w http.ResponseWriter, r *http.Request) error {
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	// as_of is read before the body (a bad one costs no upload), its
	// locator after (a bad body costs no build).
	asOf, err := s.asOfParam(r)
	if err != nil {
		return err
	}
	limit := s.opts.MaxLocatePoints
	tooMany := func(n string) error {
		return &Problem{Type: probTooLarge, Title: "Too many points", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("a batch may hold at most %d points%s; split it", limit, n), Extensions: map[string]any{"limit": limit}}
	}
	raw, err := readBodyMax(w, r, int64(limit)*bytesPerPoint+4096)
	if errors.As(err, new(*http.MaxBytesError)) {
		return tooMany("")
	}
	if err != nil {
		return err
	}
	const want = `{"points": [[lon, lat], …]}`
	var req struct {
		Points []json.RawMessage `json:"points"`
	}
	if err := bodyText(raw); err != nil {
		return err
	}
	// Not decodeJSON: a points member of the wrong type is as malformed
	// as the rest.
	if err := json.Unmarshal(raw, &req); err != nil {
		return malformedJSON(want, err)
	}
	if req.Points == nil {
		return &paramError{"points", `the body needs "points": [[lon, lat], …]`}
	}
	if len(req.Points) > limit {
		return tooMany(fmt.Sprintf(", this one has %d", len(req.Points)))
	}
	pts := make([][2]float64, len(req.Points))
	for i, p := range req.Points {
		param := fmt.Sprintf("points[%d]", i)
		xy, err := geo.ParsePosition(p, 2)
		if err != nil {
			why := err.Error()
			var pe *geo.PositionError
			if errors.As(err, &pe) {
				why = param + pe.Member + ": " + pe.Msg
			}
			return &paramError{param, fmt.Sprintf("%s is %s: want [lon, lat] as two numbers; %s", param, geo.Excerpt(string(p), 60), why)}
		}
		if math.IsNaN(xy[0]) || xy[0] < -180 || xy[0] > 180 {
			return &paramError{param, fmt.Sprintf("%s: longitude %g%s is out of range [-180, 180]", param, xy[0], inCRS(crs))}
		}
		if math.IsNaN(xy[1]) || xy[1] < -90 || xy[1] > 90 {
			return &paramError{param, fmt.Sprintf("%s: latitude %g%s is out of range [-90, 90]", param, xy[1], inCRS(crs))}
		}
		pts[i] = [2]float64{xy[0], xy[1]}
	}
	loc, err := s.locatorAt(r.Context(), asOf)
	if err != nil {
		return err
	}
	s.metrics.locateBatch.Add(float64(len(pts)))
	out := make([]grid.Location, len(pts))
	for i, p := range pts {
		out[i] = locateIn(loc, crs, p[0], p[1])
	}
	setContentCRS(w, crs)
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"results": out})
	return nil
}
