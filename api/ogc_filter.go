package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/paulmach/orb"

	"gridmap/cql2"
	"gridmap/data"
	"gridmap/geo"
)

// OGC API – Features Part 3: filter, filter-lang and filter-crs on items,
// parsed and checked by package cql2 and written as SQL by data.FilterSQL.

// cql2Queryables are a collection's queryables as cql2 types.
func cql2Queryables(c *data.Collection) cql2.Queryables {
	q := cql2.Queryables{}
	for _, qa := range c.Queryables {
		t := cql2.String
		switch {
		case qa.Geometry:
			t = cql2.Geometry
		case qa.Type == geo.Integer:
			t = cql2.Integer
		case qa.Type == geo.Real:
			t = cql2.Number
		case qa.Type == geo.Boolean:
			t = cql2.Boolean
		case qa.Type == geo.Time:
			t = cql2.Timestamp
		}
		q[qa.Name] = t
	}
	return q
}

// ogcFilter reads filter, filter-lang and filter-crs into fq.
func (s *Server) ogcFilter(r *http.Request, c *data.Collection, fq *data.FeatureQuery) error {
	q := r.URL.Query()
	if !q.Has("filter") {
		for _, p := range []string{"filter-lang", "filter-crs"} {
			if q.Has(p) {
				return &paramError{p, p + " goes with filter"}
			}
		}
		return nil
	}
	text := q.Get("filter")
	lang := q.Get("filter-lang")
	var e cql2.Expr
	var err error
	switch lang {
	case "", "cql2-text", "cql-text":
		e, err = cql2.ParseText(text)
	case "cql2-json", "cql-json":
		e, err = cql2.ParseJSON([]byte(text))
	default:
		return &paramError{"filter-lang", fmt.Sprintf("filter-lang=%q: use cql2-text (the default) or cql2-json", geo.Excerpt(lang, geo.MaxExcerpt))}
	}
	if err != nil {
		return filterProblem(lang, err)
	}
	qs := cql2Queryables(c)
	if lang == "cql-text" {
		// The draft GDAL 3.6 speaks compares a date-time property with a
		// quoted string ('2026-11-24T08:00:00Z'); CQL2 writes that
		// TIMESTAMP('…'). Same meaning, so it is read as such.
		e = draftTimestamps(e, qs)
	}
	if err := cql2.Check(e, qs); err != nil {
		return filterProblem(lang, err)
	}
	crs, err := ogcCRSParam(r, "filter-crs")
	if err != nil {
		return err
	}
	if crs != geo.WGS84 {
		if e, err = cql2.MapGeometries(e, func(g orb.Geometry) (orb.Geometry, error) { return geo.GeometryToWGS84(crs, g), nil }); err != nil {
			return err
		}
	}
	fq.Filter = e
	return nil
}

// filterProblem is a 400 naming filter, with where in it the fault lies.
func filterProblem(lang string, err error) error {
	var ce *cql2.Error
	if !errors.As(err, &ce) {
		return err
	}
	if lang == "" {
		lang = "cql2-text"
	}
	return &paramError{"filter", fmt.Sprintf("filter (%s) %v", lang, ce)}
}

// draftTimestamps turns a string literal compared with a timestamp
// property into the timestamp it spells, when it spells one.
func draftTimestamps(e cql2.Expr, qs cql2.Queryables) cql2.Expr {
	n, ok := e.(*cql2.Op)
	if !ok {
		return e
	}
	out := &cql2.Op{Op: n.Op, Args: make([]cql2.Expr, len(n.Args))}
	for i, a := range n.Args {
		out.Args[i] = draftTimestamps(a, qs)
	}
	if !slices.Contains(cql2.Comparisons, n.Op) || len(out.Args) != 2 {
		return out
	}
	for i := range 2 {
		p, isProp := out.Args[i].(*cql2.Property)
		s, isStr := out.Args[1-i].(*cql2.StringLit)
		if !isProp || !isStr || qs[p.Name] != cql2.Timestamp {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, s.Value); err == nil {
			out.Args[1-i] = &cql2.TimestampLit{Time: t.UTC()}
		}
	}
	return out
}
