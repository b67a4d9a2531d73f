package data

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"gridmap/cql2"
	"gridmap/geo"
)

// FilterSQL turns a CQL2 filter, checked with cql2.Check against the
// queryables cols names, into an SQL boolean expression. cols maps each
// queryable to its SQL expression in the caller's query ("u.code",
// "u.geom"). Every literal becomes a parameter appended to *args and
// written as $N with N its position, cast to its type so that PostgreSQL
// never has to guess it; nothing the client sent is written into the SQL.
// Geometries must already be WGS-84 (cql2.MapGeometries).
func FilterSQL(e cql2.Expr, cols map[string]string, args *[]any) (string, error) {
	w := filterWriter{cols: cols, args: args}
	if err := w.expr(e); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

type filterWriter struct {
	b    strings.Builder
	cols map[string]string
	args *[]any
}

func (w *filterWriter) param(v any, cast string) {
	*w.args = append(*w.args, v)
	w.b.WriteString("$" + strconv.Itoa(len(*w.args)) + "::" + cast)
}

func (w *filterWriter) list(es []cql2.Expr, sep string) error {
	for i, a := range es {
		if i > 0 {
			w.b.WriteString(sep)
		}
		if err := w.expr(a); err != nil {
			return err
		}
	}
	return nil
}

var spatialSQL = map[string]string{
	"s_intersects": "ST_Intersects", "s_equals": "ST_Equals", "s_disjoint": "ST_Disjoint",
	"s_touches": "ST_Touches", "s_within": "ST_Within", "s_overlaps": "ST_Overlaps",
	"s_crosses": "ST_Crosses", "s_contains": "ST_Contains",
}

// temporalSQL are the CQL2 temporal functions over intervals [as, ae] and
// [bs, be] (an instant t is [t, t]), as OGC 21-065 table 4 defines them.
var temporalSQL = map[string]string{
	"t_after":        "{as} > {be}",
	"t_before":       "{ae} < {bs}",
	"t_contains":     "{as} < {bs} AND {ae} > {be}",
	"t_disjoint":     "NOT ({as} <= {be} AND {ae} >= {bs})",
	"t_during":       "{as} > {bs} AND {ae} < {be}",
	"t_equals":       "{as} = {bs} AND {ae} = {be}",
	"t_finishedby":   "{as} < {bs} AND {ae} = {be}",
	"t_finishes":     "{as} > {bs} AND {ae} = {be}",
	"t_intersects":   "{as} <= {be} AND {ae} >= {bs}",
	"t_meets":        "{ae} = {bs}",
	"t_metby":        "{as} = {be}",
	"t_overlappedby": "{as} > {bs} AND {as} < {be} AND {ae} > {be}",
	"t_overlaps":     "{as} < {bs} AND {ae} > {bs} AND {ae} < {be}",
	"t_startedby":    "{as} = {bs} AND {ae} > {be}",
	"t_starts":       "{as} = {bs} AND {ae} < {be}",
}

func (w *filterWriter) expr(e cql2.Expr) error {
	switch n := e.(type) {
	case *cql2.Property:
		col, ok := w.cols[n.Name]
		if !ok {
			return fmt.Errorf("filter: no column for queryable %q", n.Name)
		}
		w.b.WriteString(col)
	case *cql2.StringLit:
		w.param(n.Value, "text")
	case *cql2.NumberLit:
		w.param(n.Value, "double precision")
	case *cql2.BoolLit:
		w.param(n.Value, "boolean")
	case *cql2.TimestampLit:
		w.param(n.Time, "timestamptz")
	case *cql2.DateLit:
		w.param(n.Time.Format(time.DateOnly), "date")
	case *cql2.GeometryLit:
		if b, ok := n.Geom.(orb.Bound); ok {
			w.b.WriteString("ST_MakeEnvelope(")
			for i, f := range []float64{b.Min[0], b.Min[1], b.Max[0], b.Max[1]} {
				if i > 0 {
					w.b.WriteString(", ")
				}
				w.param(f, "double precision")
			}
			fmt.Fprintf(&w.b, ", %d)", geo.SRID)
			return nil
		}
		wkb, err := geo.EWKB(n.Geom)
		if err != nil {
			return fmt.Errorf("filter geometry: %w", err)
		}
		w.b.WriteString("ST_GeomFromEWKB(")
		w.param(wkb, "bytea")
		w.b.WriteString(")")
	case *cql2.Op:
		return w.op(n)
	default:
		return fmt.Errorf("filter: %T cannot stand here", e)
	}
	return nil
}

func (w *filterWriter) op(n *cql2.Op) error {
	w.b.WriteString("(")
	var err error
	switch {
	case n.Op == "and" || n.Op == "or":
		err = w.list(n.Args, " "+strings.ToUpper(n.Op)+" ")
	case n.Op == "not":
		w.b.WriteString("NOT ")
		err = w.expr(n.Args[0])
	case n.Op == "isNull":
		err = w.expr(n.Args[0])
		w.b.WriteString(" IS NULL")
	case n.Op == "casei":
		w.b.WriteString("lower(")
		err = w.expr(n.Args[0])
		w.b.WriteString(")")
	case n.Op == "like":
		err = w.list(n.Args, " LIKE ")
	case n.Op == "between":
		if err = w.expr(n.Args[0]); err == nil {
			w.b.WriteString(" BETWEEN ")
			err = w.list(n.Args[1:], " AND ")
		}
	case n.Op == "in":
		if err = w.expr(n.Args[0]); err == nil {
			w.b.WriteString(" IN (")
			err = w.list(n.Args[1].(*cql2.List).Items, ", ")
			w.b.WriteString(")")
		}
	case spatialSQL[n.Op] != "":
		w.b.WriteString(spatialSQL[n.Op] + "(")
		err = w.list(n.Args, ", ")
		w.b.WriteString(")")
	case temporalSQL[n.Op] != "":
		err = w.temporal(temporalSQL[n.Op], n.Args[0], n.Args[1])
	default:
		if len(n.Args) != 2 {
			return fmt.Errorf("filter: unknown operator %q", n.Op)
		}
		err = w.list(n.Args, " "+n.Op+" ")
	}
	w.b.WriteString(")")
	return err
}

// temporal writes a temporal function. Each end the template uses is
// rendered once, when first met, so that a parameter is appended only if
// it is used; a $N written twice is one parameter.
func (w *filterWriter) temporal(tmpl string, a, b cql2.Expr) error {
	var ends [4]cql2.Expr // as, ae, bs, be; nil is an open end
	for i, side := range []cql2.Expr{a, b} {
		ends[2*i], ends[2*i+1] = side, side
		if iv, ok := side.(*cql2.IntervalLit); ok {
			ends[2*i], ends[2*i+1] = iv.Start, iv.End
		}
	}
	var done [4]string
	render := func(k int) (string, error) {
		if done[k] != "" {
			return done[k], nil
		}
		x := ends[k]
		switch {
		case x == nil && k%2 == 0:
			done[k] = "'-infinity'::timestamptz"
		case x == nil:
			done[k] = "'infinity'::timestamptz"
		default:
			sub := filterWriter{cols: w.cols, args: w.args}
			if err := sub.expr(x); err != nil {
				return "", err
			}
			done[k] = "(" + sub.b.String() + ")::timestamptz"
			// An instant is the interval [t, t]: one rendering serves.
			if partner := k ^ 1; ends[partner] == x {
				done[partner] = done[k]
			}
		}
		return done[k], nil
	}
	names := [4]string{"{as}", "{ae}", "{bs}", "{be}"}
	for rest := tmpl; rest != ""; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			w.b.WriteString(rest)
			break
		}
		w.b.WriteString(rest[:i])
		k := slices.Index(names[:], rest[i:i+4])
		sql, err := render(k)
		if err != nil {
			return err
		}
		w.b.WriteString(sql)
		rest = rest[i+4:]
	}
	return nil
}
