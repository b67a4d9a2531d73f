package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// paramError is a bad query parameter, answered with a 400 naming it.
type paramError struct{ param, detail string }

func (e *paramError) Error() string { return e.param + ": " + e.detail }

func parseFloatParam(q url.Values, name string, lo, hi float64) (float64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, &paramError{name, fmt.Sprintf("query parameter %s is required", name)}
	}
	v, ok := geo.ParseNumber(s)
	if !ok {
		return 0, &paramError{name, fmt.Sprintf("%s=%q is not a number", name, geo.Excerpt(s, geo.MaxExcerpt))}
	}
	if v < lo || v > hi {
		return 0, &paramError{name, fmt.Sprintf("%s=%g is out of range [%g, %g]", name, v, lo, hi)}
	}
	return v, nil
}

func parseBBox(s string) (*[4]float64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return nil, &paramError{"bbox", fmt.Sprintf("bbox=%q: want minLon,minLat,maxLon,maxLat", geo.Excerpt(s, geo.MaxExcerpt))}
	}
	var b [4]float64
	for i, p := range parts {
		v, ok := geo.ParseNumber(p)
		if !ok {
			return nil, &paramError{"bbox", fmt.Sprintf("bbox value %d (%q) is not a number", i+1, geo.Excerpt(p, geo.MaxExcerpt))}
		}
		b[i] = v
	}
	for i, lim := range []float64{180, 90, 180, 90} {
		if b[i] < -lim || b[i] > lim {
			return nil, &paramError{"bbox", fmt.Sprintf("bbox value %d (%g) is out of range [%g, %g]", i+1, b[i], -lim, lim)}
		}
	}
	if b[0] > b[2] || b[1] > b[3] {
		return nil, &paramError{"bbox", "bbox minimum exceeds maximum: want minLon,minLat,maxLon,maxLat"}
	}
	return &b, nil
}

func parseGeometryMode(s string, def data.GeometryMode) (data.GeometryMode, error) {
	switch data.GeometryMode(s) {
	case "":
		return def, nil
	case data.GeometryNone, data.GeometrySimplified, data.GeometryFull:
		return data.GeometryMode(s), nil
	}
	return "", &paramError{"geometry", fmt.Sprintf("geometry=%q: use none, simplified or full", geo.Excerpt(s, geo.MaxExcerpt))}
}

func parseLevel(s string) (grid.Level, error) {
	if s == "" {
		return "", nil
	}
	l, err := grid.ParseLevel(s)
	if err != nil {
		return "", &paramError{"level", err.Error()}
	}
	return l, nil
}

func parseIntParam(q url.Values, name string, def, lo, hi int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, &paramError{name, fmt.Sprintf("%s=%q is not an integer", name, geo.Excerpt(s, geo.MaxExcerpt))}
	}
	if v < lo || v > hi {
		return 0, &paramError{name, fmt.Sprintf("%s=%d is out of range [%d, %d]", name, v, lo, hi)}
	}
	return v, nil
}

func parseBoolParam(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, &paramError{name, fmt.Sprintf("%s=%q: use true or false", name, geo.Excerpt(s, geo.MaxExcerpt))}
	}
	return v, nil
}

// layerParam checks the layer against the store so a typo is a 400, not an
// empty answer.
func (s *Server) layerParam(r *http.Request) (string, error) {
	layer := r.URL.Query().Get("layer")
	if layer == "" {
		return grid.BaseLayer, nil
	}
	layers, err := s.store.Layers(r.Context())
	if err != nil {
		return "", err
	}
	for _, l := range layers {
		if l == layer {
			return layer, nil
		}
	}
	return "", &paramError{"layer", fmt.Sprintf("unknown layer %q: the store has %s", geo.Excerpt(layer, geo.MaxExcerpt), strings.Join(layers, ", "))}
}

// storableTime says whether PostgreSQL can take t as a date or timestamp
// as sent: time.Parse reads year 0000, which PostgreSQL has no such year
// for, and an offset can move year 0001 or 9999 out of the four digits in
// UTC.
func storableTime(t time.Time) bool {
	for _, y := range []int{t.Year(), t.UTC().Year()} {
		if y < 1 || y > 9999 {
			return false
		}
	}
	return true
}
