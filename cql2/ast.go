// Package cql2 reads OGC Common Query Language (CQL2, OGC 21-065) filters in
// the text and the JSON encoding into one syntax tree, and checks a tree
// against a collection's queryables. It knows nothing of SQL: data.FilterSQL
// turns a checked tree into a WHERE clause.
package cql2

import (
	"fmt"
	"time"

	"github.com/paulmach/orb"
)

// Expr is a node of a filter: a literal, a property reference or an
// operation. The text and the JSON encoding of one filter give trees that
// are reflect.DeepEqual.
type Expr interface{ node() }

// Property names a queryable.
type Property struct{ Name string }

// StringLit is a character literal.
type StringLit struct{ Value string }

// NumberLit is a numeric literal (CQL2 does not tell integers apart in
// literals; a queryable of type Integer compares with any number).
type NumberLit struct{ Value float64 }

// BoolLit is TRUE or FALSE.
type BoolLit struct{ Value bool }

// TimestampLit is TIMESTAMP('…') (or an interval end written as a
// timestamp), in UTC.
type TimestampLit struct{ Time time.Time }

// DateLit is DATE('…'): a calendar day, held as its UTC midnight.
type DateLit struct{ Time time.Time }

// IntervalLit is INTERVAL(start, end). A nil end is '..', unbounded; the
// ends are *TimestampLit, *DateLit or *Property nodes.
type IntervalLit struct{ Start, End Expr }

// GeometryLit is a WKT or GeoJSON geometry literal, or BBOX(…) /
// {"bbox": […]} as an orb.Bound, in the coordinates the client sent (see
// MapGeometries).
type GeometryLit struct{ Geom orb.Geometry }

// List is the list of an IN predicate.
type List struct{ Items []Expr }

// Op is every operation, named as in the JSON encoding: "and", "or", "not",
// "=", "<>", "<", ">", "<=", ">=", "like", "between", "in", "isNull",
// "casei", the spatial "s_intersects", "s_equals", "s_disjoint",
// "s_touches", "s_within", "s_overlaps", "s_crosses", "s_contains" and the
// temporal "t_after" … "t_starts" (TemporalOps). NOT LIKE, NOT BETWEEN,
// NOT IN and IS NOT NULL are a "not" around the positive form. "in" has two
// args, the value and a *List; "and" and "or" have two or more.
type Op struct {
	Op   string
	Args []Expr
}

func (*Property) node()     {}
func (*StringLit) node()    {}
func (*NumberLit) node()    {}
func (*BoolLit) node()      {}
func (*TimestampLit) node() {}
func (*DateLit) node()      {}
func (*IntervalLit) node()  {}
func (*GeometryLit) node()  {}
func (*List) node()         {}
func (*Op) node()           {}

// Comparisons, SpatialOps and TemporalOps are the operators of each group,
// lower case as in the JSON encoding (the text encoding takes any case).
var (
	Comparisons = []string{"=", "<>", "<", ">", "<=", ">="}
	SpatialOps  = []string{"s_intersects", "s_equals", "s_disjoint", "s_touches", "s_within", "s_overlaps", "s_crosses", "s_contains"}
	TemporalOps = []string{"t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals", "t_finishedby",
		"t_finishes", "t_intersects", "t_meets", "t_metby", "t_overlappedby", "t_overlaps", "t_startedby", "t_starts"}
)

// Conformance lists the CQL2 conformance classes this package and
// data.FilterSQL implement in full. Not claimed: arithmetic, array
// functions, custom functions, accent-insensitive comparison (PostgreSQL's
// unaccent is not installed). The OGC API – Features Part 3 classes
// (filter, features-filter, queryables) belong to the server that serves
// the filter parameter.
var Conformance = []string{
	"http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
	"http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
	"http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
	"http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
	"http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
	"http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
	"http://www.opengis.net/spec/cql2/1.0/conf/property-property",
}

// Error is a filter that cannot be read or does not fit the queryables.
type Error struct {
	// Pos is the byte offset in a text filter, -1 otherwise.
	Pos int
	// Path is the JSON pointer (RFC 6901) of the member at fault in a JSON
	// filter ("/args/1/args/0"); "" for the document itself or a text
	// filter.
	Path string
	// Property is the property an unknown-property or type error is about.
	Property string
	Msg      string
	json     bool
}

func (e *Error) Error() string {
	switch {
	case e.json:
		p := e.Path
		if p == "" {
			p = "the document"
		}
		return fmt.Sprintf("at %s: %s", p, e.Msg)
	case e.Pos >= 0:
		return fmt.Sprintf("at byte %d: %s", e.Pos, e.Msg)
	}
	return e.Msg
}

// Type is the type of a queryable or of an expression.
type Type int

const (
	String Type = iota + 1
	Number
	Integer
	Boolean
	Timestamp
	Date
	Geometry
)

var typeNames = [...]string{"", "string", "number", "integer", "boolean", "timestamp", "date", "geometry"}

func (t Type) String() string {
	if t < String || t > Geometry {
		return fmt.Sprintf("Type(%d)", int(t))
	}
	return typeNames[t]
}

// Schema is the JSON Schema of a queryable of this type, as OGC API –
// Features Part 3 /queryables documents show it.
func (t Type) Schema() map[string]any {
	switch t {
	case Number:
		return map[string]any{"type": "number"}
	case Integer:
		return map[string]any{"type": "integer"}
	case Boolean:
		return map[string]any{"type": "boolean"}
	case Timestamp:
		return map[string]any{"type": "string", "format": "date-time"}
	case Date:
		return map[string]any{"type": "string", "format": "date"}
	case Geometry:
		return map[string]any{"format": "geometry-any"}
	}
	return map[string]any{"type": "string"}
}

// Queryables are the properties a filter may name, with their types.
type Queryables map[string]Type

// MapGeometries returns a copy of e whose geometry literals are f of the
// originals (a BBOX is an orb.Bound): a filter-crs other than WGS-84 is
// converted this way before the filter reaches SQL. e is not changed.
func MapGeometries(e Expr, f func(orb.Geometry) (orb.Geometry, error)) (Expr, error) {
	switch n := e.(type) {
	case *GeometryLit:
		g, err := f(orb.Clone(n.Geom))
		if err != nil {
			return nil, err
		}
		return &GeometryLit{Geom: g}, nil
	case *Op:
		out := &Op{Op: n.Op, Args: make([]Expr, len(n.Args))}
		for i, a := range n.Args {
			m, err := MapGeometries(a, f)
			if err != nil {
				return nil, err
			}
			out.Args[i] = m
		}
		return out, nil
	case *List:
		out := &List{Items: make([]Expr, len(n.Items))}
		for i, a := range n.Items {
			m, err := MapGeometries(a, f)
			if err != nil {
				return nil, err
			}
			out.Items[i] = m
		}
		return out, nil
	}
	return e, nil
}
