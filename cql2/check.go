package cql2

import (
	"fmt"
	"slices"
	"strings"

	"gridmap/geo"
)

// Types an expression may have besides the queryable types.
const (
	interval Type = 100 + iota
	list
)

// Check makes sure e names only queryables and that every operation gets
// operands of the types it takes, and that e as a whole is a predicate.
// Errors are *Error (Pos -1, Property set when a property is at fault).
func Check(e Expr, q Queryables) error {
	t, err := typeOf(e, q)
	if err != nil {
		return err
	}
	if t != Boolean {
		return checkErr(e, "the filter is %s, not a predicate (a comparison, a function such as S_INTERSECTS, or a boolean property)", describe(e, t))
	}
	return nil
}

func checkErr(e Expr, format string, args ...any) *Error {
	out := &Error{Pos: -1, Msg: fmt.Sprintf(format, args...)}
	if p, ok := e.(*Property); ok {
		out.Property = p.Name
	}
	return out
}

// describe names an operand for a type error: the property or the kind
// of literal, with its type.
func describe(e Expr, t Type) string {
	name := t.String()
	switch t {
	case interval:
		name = "interval"
	case list:
		name = "list"
	}
	switch n := e.(type) {
	case *Property:
		return fmt.Sprintf("property %s (%s)", geo.Excerpt(n.Name, geo.MaxExcerpt), name)
	case *Op:
		return fmt.Sprintf("%s(…) (%s)", strings.ToUpper(n.Op), name)
	}
	return "a " + name + " literal"
}

func numeric(t Type) bool  { return t == Number || t == Integer }
func temporal(t Type) bool { return t == Timestamp || t == Date }

// comparableTypes says whether values of types a and b can be compared with
// =, <, BETWEEN or IN: numbers with numbers, dates with timestamps.
func comparableTypes(a, b Type) bool {
	return a == b || numeric(a) && numeric(b) || temporal(a) && temporal(b)
}

func typeOf(e Expr, q Queryables) (Type, error) {
	switch n := e.(type) {
	case *Property:
		t, ok := q[n.Name]
		if !ok {
			names := make([]string, 0, len(q))
			for k := range q {
				names = append(names, k)
			}
			slices.Sort(names)
			return 0, checkErr(e, "unknown property %q: the queryables are %s", geo.Excerpt(n.Name, geo.MaxExcerpt), strings.Join(names, ", "))
		}
		return t, nil
	case *StringLit:
		return String, nil
	case *NumberLit:
		return Number, nil
	case *BoolLit:
		return Boolean, nil
	case *TimestampLit:
		return Timestamp, nil
	case *DateLit:
		return Date, nil
	case *GeometryLit:
		return Geometry, nil
	case *IntervalLit:
		for _, end := range []Expr{n.Start, n.End} {
			if end == nil {
				continue
			}
			t, err := typeOf(end, q)
			if err != nil {
				return 0, err
			}
			if !temporal(t) {
				return 0, checkErr(end, "an interval end must be a date or a timestamp, not %s", describe(end, t))
			}
		}
		return interval, nil
	case *List:
		return list, nil
	case *Op:
		return opType(n, q)
	}
	return 0, &Error{Pos: -1, Msg: fmt.Sprintf("unexpected node %T", e)}
}

func opType(n *Op, q Queryables) (Type, error) {
	ts := make([]Type, len(n.Args))
	for i, a := range n.Args {
		if l, ok := a.(*List); ok {
			for _, it := range l.Items {
				if _, ok := it.(*List); ok {
					return 0, checkErr(it, "a list cannot hold a list")
				}
			}
			ts[i] = list
			continue
		}
		t, err := typeOf(a, q)
		if err != nil {
			return 0, err
		}
		ts[i] = t
	}
	mismatch := func(i int, want string) (Type, error) {
		return 0, checkErr(n.Args[i], "%s takes %s, not %s", strings.ToUpper(n.Op), want, describe(n.Args[i], ts[i]))
	}
	switch {
	case n.Op == "and" || n.Op == "or" || n.Op == "not":
		for i, t := range ts {
			if t != Boolean {
				return mismatch(i, "predicates")
			}
		}
		return Boolean, nil
	case comparisonOps[n.Op] || n.Op == "between":
		for i, t := range ts {
			if t == Geometry || t == interval || t == list {
				return mismatch(i, "strings, numbers, booleans, dates or timestamps (use S_EQUALS or T_EQUALS for geometries and intervals)")
			}
			if i > 0 && !comparableTypes(ts[0], t) {
				return 0, checkErr(pick(n.Args[0], n.Args[i]), "%s cannot compare %s with %s", strings.ToUpper(n.Op), describe(n.Args[0], ts[0]), describe(n.Args[i], t))
			}
		}
		if n.Op == "between" && ts[0] == Boolean {
			return mismatch(0, "strings, numbers, dates or timestamps")
		}
		return Boolean, nil
	case n.Op == "like":
		for i, t := range ts {
			if t != String {
				return mismatch(i, "strings")
			}
		}
		return Boolean, nil
	case n.Op == "casei":
		if ts[0] != String {
			return mismatch(0, "a string")
		}
		return String, nil
	case n.Op == "isNull":
		if ts[0] == list || ts[0] == interval {
			return mismatch(0, "a property or a value")
		}
		return Boolean, nil
	case n.Op == "in":
		if ts[0] == Geometry || ts[0] == interval || ts[0] == list {
			return mismatch(0, "a string, number, boolean, date or timestamp")
		}
		for _, it := range n.Args[1].(*List).Items {
			t, err := typeOf(it, q)
			if err != nil {
				return 0, err
			}
			if !comparableTypes(ts[0], t) {
				return 0, checkErr(pick(n.Args[0], it), "IN cannot compare %s with %s", describe(n.Args[0], ts[0]), describe(it, t))
			}
		}
		return Boolean, nil
	case strings.HasPrefix(n.Op, "s_"):
		for i, t := range ts {
			if t != Geometry {
				return mismatch(i, "geometries")
			}
		}
		return Boolean, nil
	case strings.HasPrefix(n.Op, "t_"):
		for i, t := range ts {
			if !temporal(t) && t != interval {
				return mismatch(i, "dates, timestamps or intervals")
			}
		}
		return Boolean, nil
	}
	return 0, &Error{Pos: -1, Msg: fmt.Sprintf("unknown operator %q", geo.Excerpt(n.Op, geo.MaxExcerpt))}
}

// pick is the operand a type error names: a property when there is one.
func pick(a, b Expr) Expr {
	if _, ok := a.(*Property); ok {
		return a
	}
	return b
}
