package cql2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

// ParseJSON reads a filter in the CQL2 JSON encoding. Errors are *Error
// with Path, the JSON pointer of the member at fault.
func ParseJSON(b []byte) (Expr, error) {
	if te := geo.CheckJSONText(b); te != nil {
		return nil, jsonErr(pointerOf(te.Path), "%s", te.Msg)
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		msg := "not JSON"
		if se, ok := err.(*json.SyntaxError); ok {
			msg = fmt.Sprintf("not JSON: %s at byte %d", se.Error(), se.Offset)
		}
		return nil, jsonErr("", "%s", msg)
	}
	p := jsonParser{}
	return p.value(json.RawMessage(b), "")
}

func jsonErr(path, format string, args ...any) *Error {
	return &Error{Pos: -1, Path: path, Msg: fmt.Sprintf(format, args...), json: true}
}

type jsonParser struct{ depth int }

// kind names the JSON type of a value for errors.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// members reads an object, refusing a member named twice (encoding/json
// would keep the last one silently).
func members(raw json.RawMessage, path string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, jsonErr(path, "%v", err)
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, jsonErr(path, "%v", err)
		}
		k := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, jsonErr(path, "%v", err)
		}
		if _, dup := m[k]; dup {
			return nil, jsonErr(path+"/"+pointerEscape(k), "member %q is given twice", geo.Excerpt(k, geo.MaxExcerpt))
		}
		m[k] = v
	}
	return m, nil
}

// pointerOf turns a geo.TextError path ("args[1].property") into a JSON
// pointer ("/args/1/property").
func pointerOf(path string) string {
	if path == "" {
		return ""
	}
	return "/" + strings.NewReplacer("[", "/", "]", "", ".", "/").Replace(path)
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func (p *jsonParser) enter(path string) error {
	p.depth++
	if p.depth > MaxDepth {
		return jsonErr(path, "the filter nests deeper than %d levels", MaxDepth)
	}
	return nil
}

// value reads any expression.
func (p *jsonParser) value(raw json.RawMessage, path string) (Expr, error) {
	if err := p.enter(path); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	raw = bytes.TrimSpace(raw)
	switch kind(raw) {
	case "a string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonErr(path, "%v", err)
		}
		return &StringLit{Value: s}, nil
	case "a number":
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, jsonErr(path, "%s is not a finite number", geo.Excerpt(string(raw), geo.MaxExcerpt))
		}
		return &NumberLit{Value: f}, nil
	case "a boolean":
		return &BoolLit{Value: raw[0] == 't'}, nil
	case "null":
		return nil, jsonErr(path, "null is not a CQL2 value (use the isNull operator)")
	case "an array":
		return nil, jsonErr(path, "an array is only an operand of in (array functions are not supported)")
	}
	m, err := members(raw, path)
	if err != nil {
		return nil, err
	}
	if op, ok := m["op"]; ok {
		return p.op(m, op, path)
	}
	one := func(key string) (json.RawMessage, error) {
		if len(m) != 1 {
			for k := range m {
				if k != key {
					return nil, jsonErr(path+"/"+pointerEscape(k), "unexpected member %q beside %q", geo.Excerpt(k, geo.MaxExcerpt), key)
				}
			}
		}
		return m[key], nil
	}
	str := func(key string) (string, error) {
		v, err := one(key)
		if err != nil {
			return "", err
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", jsonErr(path+"/"+key, "expected a string, found %s", kind(v))
		}
		return s, nil
	}
	switch {
	case m["property"] != nil:
		s, err := str("property")
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, jsonErr(path+"/property", "empty property name")
		}
		return &Property{Name: s}, nil
	case m["timestamp"] != nil, m["date"] != nil:
		k := "timestamp"
		if m["date"] != nil {
			k = "date"
		}
		s, err := str(k)
		if err != nil {
			return nil, err
		}
		e, err := instant(k, s)
		if err != nil {
			return nil, jsonErr(path+"/"+k, "%s", err.Error())
		}
		return e, nil
	case m["interval"] != nil:
		v, err := one("interval")
		if err != nil {
			return nil, err
		}
		return p.interval(v, path+"/interval")
	case m["bbox"] != nil:
		v, err := one("bbox")
		if err != nil {
			return nil, err
		}
		var n []float64
		if json.Unmarshal(v, &n) != nil {
			return nil, jsonErr(path+"/bbox", "expected an array of 4 or 6 numbers, found %s", kind(v))
		}
		b, msg := bound(n)
		if msg != "" {
			return nil, jsonErr(path+"/bbox", "bbox %s", msg)
		}
		return &GeometryLit{Geom: b}, nil
	case m["type"] != nil:
		g, err := p.geometry(raw, m, path)
		if err != nil {
			return nil, err
		}
		return &GeometryLit{Geom: g}, nil
	case m["function"] != nil:
		return nil, jsonErr(path+"/function", "custom functions are not supported")
	}
	for k := range m {
		return nil, jsonErr(path+"/"+pointerEscape(k), "unexpected member %q: expected op, property, timestamp, date, interval, bbox or a GeoJSON geometry", geo.Excerpt(k, geo.MaxExcerpt))
	}
	return nil, jsonErr(path, "an empty object is not a CQL2 expression")
}

func (p *jsonParser) geometry(raw json.RawMessage, m map[string]json.RawMessage, path string) (orb.Geometry, error) {
	var typ string
	if json.Unmarshal(m["type"], &typ) != nil {
		return nil, jsonErr(path+"/type", "expected a GeoJSON geometry type, found %s", kind(m["type"]))
	}
	if typ == "GeometryCollection" {
		var parts []json.RawMessage
		if json.Unmarshal(m["geometries"], &parts) != nil {
			return nil, jsonErr(path+"/geometries", "expected an array of geometries")
		}
		if len(parts) == 0 {
			return nil, jsonErr(path+"/geometries", "an empty GeometryCollection is not supported")
		}
		var c orb.Collection
		for i, part := range parts {
			if err := p.enter(path); err != nil {
				return nil, err
			}
			pm, err := members(part, fmt.Sprintf("%s/geometries/%d", path, i))
			if err == nil && pm["type"] == nil {
				err = jsonErr(fmt.Sprintf("%s/geometries/%d", path, i), "expected a GeoJSON geometry")
			}
			var g orb.Geometry
			if err == nil {
				g, err = p.geometry(part, pm, fmt.Sprintf("%s/geometries/%d", path, i))
			}
			p.depth--
			if err != nil {
				return nil, err
			}
			c = append(c, g)
		}
		return c, nil
	}
	where := path
	if where == "" {
		where = "geometry"
	}
	g, err := geo.DecodeGeometry(raw, where)
	if err == nil {
		err = geo.CheckRange(g)
	}
	if err == nil {
		err = ringsProblem(g)
	}
	if err != nil {
		return nil, jsonErr(path, "%s", err.Error())
	}
	return g, nil
}

// ringsProblem checks what PostGIS would refuse only when the query runs,
// and empty geometries, which no CQL2 text can write.
func ringsProblem(g orb.Geometry) error {
	var polys []orb.Polygon
	switch g := g.(type) {
	case orb.MultiPoint:
		if len(g) == 0 {
			return fmt.Errorf("an empty MultiPoint is not supported")
		}
	case orb.Polygon:
		if len(g) == 0 {
			return fmt.Errorf("an empty Polygon is not supported")
		}
		polys = []orb.Polygon{g}
	case orb.MultiPolygon:
		if len(g) == 0 {
			return fmt.Errorf("an empty MultiPolygon is not supported")
		}
		for _, pg := range g {
			if len(pg) == 0 {
				return fmt.Errorf("an empty polygon is not supported")
			}
		}
		polys = g
	case orb.LineString:
		if len(g) < 2 {
			return fmt.Errorf("a line string needs at least 2 positions")
		}
	case orb.MultiLineString:
		if len(g) == 0 {
			return fmt.Errorf("an empty MultiLineString is not supported")
		}
		for _, l := range g {
			if len(l) < 2 {
				return fmt.Errorf("a line string needs at least 2 positions")
			}
		}
	}
	for _, pg := range polys {
		for _, r := range pg {
			if msg := ringProblem(r); msg != "" {
				return fmt.Errorf("%s", msg)
			}
		}
	}
	return nil
}

func (p *jsonParser) interval(raw json.RawMessage, path string) (Expr, error) {
	var ends []json.RawMessage
	if json.Unmarshal(raw, &ends) != nil || len(ends) != 2 {
		return nil, jsonErr(path, "expected an array of 2 ends (a date, a timestamp, \"..\" or a property)")
	}
	var out [2]Expr
	for i, end := range ends {
		at := fmt.Sprintf("%s/%d", path, i)
		var s string
		if json.Unmarshal(end, &s) == nil {
			e, err := intervalEnd(s)
			if err != nil {
				return nil, jsonErr(at, "%s", err.Error())
			}
			out[i] = e
			continue
		}
		e, err := p.value(end, at)
		if err != nil {
			return nil, err
		}
		switch e.(type) {
		case *DateLit, *TimestampLit, *Property:
		default:
			return nil, jsonErr(at, "an interval end is a date, a timestamp, \"..\" or a property")
		}
		out[i] = e
	}
	return &IntervalLit{Start: out[0], End: out[1]}, nil
}

// arity is how many args each operation takes; -1: two or more.
func arity(op string) (int, bool) {
	switch op {
	case "and", "or":
		return -1, true
	case "not", "isNull", "casei":
		return 1, true
	case "like", "in":
		return 2, true
	case "between":
		return 3, true
	}
	if comparisonOps[op] || isBinaryFunction(op) {
		return 2, true
	}
	return 0, false
}

func (p *jsonParser) op(m map[string]json.RawMessage, opRaw json.RawMessage, path string) (Expr, error) {
	var name string
	if json.Unmarshal(opRaw, &name) != nil {
		return nil, jsonErr(path+"/op", "expected an operator name, found %s", kind(opRaw))
	}
	for k := range m {
		if k != "op" && k != "args" {
			return nil, jsonErr(path+"/"+pointerEscape(k), "unexpected member %q beside op and args", geo.Excerpt(k, geo.MaxExcerpt))
		}
	}
	n, ok := arity(name)
	if !ok {
		return nil, jsonErr(path+"/op", "unknown or unsupported operator %q", geo.Excerpt(name, geo.MaxExcerpt))
	}
	var args []json.RawMessage
	if m["args"] == nil || json.Unmarshal(m["args"], &args) != nil {
		return nil, jsonErr(path+"/args", "expected an array of arguments")
	}
	if n == -1 && len(args) < 2 {
		return nil, jsonErr(path+"/args", "%s takes at least 2 arguments, not %d", name, len(args))
	}
	if n >= 0 && len(args) != n {
		return nil, jsonErr(path+"/args", "%s takes %d arguments, not %d", name, n, len(args))
	}
	out := &Op{Op: name, Args: make([]Expr, len(args))}
	for i, a := range args {
		at := fmt.Sprintf("%s/args/%d", path, i)
		if name == "in" && i == 1 {
			var items []json.RawMessage
			if json.Unmarshal(a, &items) != nil || len(items) == 0 {
				return nil, jsonErr(at, "expected a non-empty array of values")
			}
			list := &List{Items: make([]Expr, len(items))}
			for j, it := range items {
				e, err := p.value(it, fmt.Sprintf("%s/%d", at, j))
				if err != nil {
					return nil, err
				}
				list.Items[j] = e
			}
			out.Args[i] = list
			continue
		}
		e, err := p.value(a, at)
		if err != nil {
			return nil, err
		}
		out.Args[i] = e
	}
	return out, nil
}
