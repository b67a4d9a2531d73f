package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"gridmap/data"
	"gridmap/geo"
)

// The query parameters of OGC API – Features (Part 1 f, limit, bbox,
// datetime; Part 2 crs, bbox-crs; Part 3 filter, filter-lang, filter-crs)
// and the choice of JSON or HTML.

const (
	ogcDefaultLimit = 10
	ogcMaxLimit     = 10000
	ctHTML          = "text/html; charset=utf-8"
	ctSchemaJSON    = "application/schema+json"
	ctOpenAPI       = "application/vnd.oai.openapi+json;version=3.0"
)

// ogcFormat is the encoding of an answer.
type ogcFormat int

const (
	formatJSON ogcFormat = iota
	formatHTML
)

// ogcFormatOf reads f= (json, html) or else Accept: HTML when the client
// prefers text/html to every JSON type it names (a browser), JSON by
// default; a 406 when it accepts neither. jsonTypes are the JSON media
// types the resource has (application/json, application/geo+json, …).
func ogcFormatOf(r *http.Request, jsonTypes ...string) (ogcFormat, error) {
	if f, ok := r.URL.Query()["f"]; ok {
		switch f[0] {
		case "json":
			return formatJSON, nil
		case "html":
			return formatHTML, nil
		}
		return 0, &paramError{"f", fmt.Sprintf("f=%q: use json or html", geo.Excerpt(f[0], geo.MaxExcerpt))}
	}
	accept := strings.Join(r.Header.Values("Accept"), ",")
	if strings.TrimSpace(accept) == "" {
		return formatJSON, nil
	}
	jsonQ := 0.0
	for _, t := range append(jsonTypes, "application/json") {
		jsonQ = max(jsonQ, acceptQ(accept, t))
	}
	htmlQ := acceptQ(accept, "text/html")
	switch {
	case jsonQ == 0 && htmlQ == 0:
		return 0, &Problem{Type: probNotAcceptable, Title: "Not acceptable", Status: http.StatusNotAcceptable,
			Detail: fmt.Sprintf("Accept: %s names nothing this resource has: %s or text/html (or say f=json or f=html)",
				geo.Excerpt(accept, geo.MaxExcerpt), strings.Join(jsonTypes, ", "))}
	case htmlQ > jsonQ:
		return formatHTML, nil
	}
	return formatJSON, nil
}

// acceptQ is the quality an Accept header gives a media type (RFC 9110
// §12.5.1): that of the most specific range that matches it, 0 when none
// does.
func acceptQ(header, mediaType string) float64 {
	typ, _, _ := strings.Cut(mediaType, "/")
	best, spec := 0.0, -1
	for _, part := range strings.Split(header, ",") {
		rng, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		rng = strings.ToLower(strings.TrimSpace(rng))
		s := -1
		switch {
		case rng == mediaType:
			s = 2
		case rng == typ+"/*":
			s = 1
		case rng == "*/*":
			s = 0
		}
		if s < spec || s < 0 {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
		}
		if s > spec {
			best, spec = q, s
		} else {
			best = max(best, q)
		}
	}
	return best
}

// ogcCRSParam reads a CRS parameter (crs, bbox-crs, filter-crs): the URIs
// of /collections' crs list, and the names geo.ParseCRS takes.
func ogcCRSParam(r *http.Request, name string) (geo.CRS, error) {
	v := r.URL.Query().Get(name)
	c, err := geo.ParseCRS(strings.Trim(v, "[]")) // [EPSG:4326]-style safe CURIEs too
	if err != nil {
		return "", &paramError{name, fmt.Sprintf("%s=%q: %v; the URIs are %s", name, geo.Excerpt(v, geo.MaxExcerpt), err, strings.Join(ogcCRSList(), ", "))}
	}
	return c, nil
}

// ogcCRSList are the URIs of the coordinate systems every collection
// answers in, CRS84 first.
func ogcCRSList() []string {
	out := make([]string, len(geo.CRSNames))
	for i, c := range geo.CRSNames {
		out[i] = c.URI()
	}
	return out
}

// ogcBBox reads bbox (four numbers, or six with heights, which are
// ignored: no feature has any) in the CRS bbox-crs names, as a WGS-84
// box: the corners converted and the box around them (the shifts are
// smooth and a few hundred metres at most, so the box around the
// converted corners holds the converted box to well under a millimetre).
func ogcBBox(r *http.Request) (*orb.Bound, error) {
	q := r.URL.Query()
	s, given := q.Get("bbox"), q.Has("bbox")
	crs, err := ogcCRSParam(r, "bbox-crs")
	if err != nil {
		return nil, err
	}
	if !given {
		if q.Has("bbox-crs") {
			return nil, &paramError{"bbox-crs", "bbox-crs goes with bbox"}
		}
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 4 && len(parts) != 6 {
		return nil, &paramError{"bbox", fmt.Sprintf("bbox=%q: want minLon,minLat,maxLon,maxLat (or six numbers with heights)", geo.Excerpt(s, geo.MaxExcerpt))}
	}
	v := make([]float64, len(parts))
	for i, p := range parts {
		f, ok := geo.ParseNumber(strings.TrimSpace(p))
		if !ok {
			return nil, &paramError{"bbox", fmt.Sprintf("bbox value %d (%q) is not a number", i+1, geo.Excerpt(p, geo.MaxExcerpt))}
		}
		v[i] = f
	}
	if len(v) == 6 {
		v = []float64{v[0], v[1], v[3], v[4]}
	}
	for i, lim := range []float64{180, 90, 180, 90} {
		if v[i] < -lim || v[i] > lim {
			return nil, &paramError{"bbox", fmt.Sprintf("bbox value %d (%g) is out of range [%g, %g]", i+1, v[i], -lim, lim)}
		}
	}
	if v[0] > v[2] || v[1] > v[3] {
		return nil, &paramError{"bbox", "bbox minimum exceeds maximum: want minLon,minLat,maxLon,maxLat (a box across the antimeridian is not taken)"}
	}
	b := orb.Bound{Min: orb.Point{math.Inf(1), math.Inf(1)}, Max: orb.Point{math.Inf(-1), math.Inf(-1)}}
	for _, c := range [][2]float64{{v[0], v[1]}, {v[2], v[1]}, {v[0], v[3]}, {v[2], v[3]}} {
		lon, lat := geo.ToWGS84(crs, c[0], c[1])
		b = b.Extend(orb.Point{lon, lat})
	}
	return &b, nil
}

// ogcDatetime reads datetime: an RFC 3339 instant, or an interval a/b
// whose open ends are ".." (or empty).
func ogcDatetime(r *http.Request) (*data.TimeRange, error) {
	q := r.URL.Query()
	if !q.Has("datetime") {
		return nil, nil
	}
	s := q.Get("datetime")
	bad := func(why string) error {
		return &paramError{"datetime", fmt.Sprintf("datetime=%q: %s; want an RFC 3339 date-time (2026-11-24T08:00:00Z) or an interval start/end whose open end is ..", geo.Excerpt(s, geo.MaxExcerpt), why)}
	}
	instant := func(v string) (*time.Time, error) {
		if v == ".." || v == "" {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || !storableTime(t) {
			return nil, bad(fmt.Sprintf("%q is not a date-time", geo.Excerpt(v, geo.MaxExcerpt)))
		}
		return &t, nil
	}
	a, b, interval := strings.Cut(s, "/")
	if !interval {
		if a == "" || a == ".." {
			return nil, bad("an instant cannot be open")
		}
		t, err := instant(a)
		if err != nil {
			return nil, err
		}
		return &data.TimeRange{Start: t, End: t}, nil
	}
	start, err := instant(a)
	if err != nil {
		return nil, err
	}
	end, err := instant(b)
	if err != nil {
		return nil, err
	}
	if start != nil && end != nil && start.After(*end) {
		return nil, bad("the start is after the end")
	}
	return &data.TimeRange{Start: start, End: end}, nil
}

// ogcBaseURL is the scheme and host the client reached this server by,
// for the absolute links OGC clients follow.
func ogcBaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// ogcOnlyParams refuses a query parameter not in names, or one given
// twice: items take their collection's queryables, which vary at run time,
// so no static list (the contract's) can check them.
func ogcOnlyParams(q url.Values, names ...string) error {
	for k, v := range q {
		if !slices.Contains(names, k) {
			return &paramError{k, fmt.Sprintf("unknown query parameter %q: this route takes %s", geo.Excerpt(k, geo.MaxExcerpt), strings.Join(names, ", "))}
		}
		if len(v) > 1 {
			return &paramError{k, fmt.Sprintf("%s is given %d times; give it once", k, len(v))}
		}
	}
	return nil
}
