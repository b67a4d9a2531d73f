package cql2

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

func prop(n string) Expr         { return &Property{Name: n} }
func str(s string) Expr          { return &StringLit{Value: s} }
func num(f float64) Expr         { return &NumberLit{Value: f} }
func op(o string, a ...Expr) *Op { return &Op{Op: o, Args: a} }
func ts(s string) Expr {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &TimestampLit{Time: t.UTC()}
}
func date(s string) Expr {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return &DateLit{Time: t}
}

var square = orb.Polygon{{{114, 22.5}, {114.1, 22.5}, {114.1, 22.6}, {114, 22.6}, {114, 22.5}}}

// parseCases are filters in both encodings and the one tree both give.
var parseCases = []struct {
	name, text, json string
	want             Expr
}{
	{"equals", `name = '梅沙街道'`, `{"op":"=","args":[{"property":"name"},"梅沙街道"]}`,
		op("=", prop("name"), str("梅沙街道"))},
	{"comparisons", `a<>1 AND b<2 AND c>3 AND d<=4 AND e>=-5.5e1`,
		`{"op":"and","args":[{"op":"<>","args":[{"property":"a"},1]},{"op":"<","args":[{"property":"b"},2]},{"op":">","args":[{"property":"c"},3]},{"op":"<=","args":[{"property":"d"},4]},{"op":">=","args":[{"property":"e"},-55]}]}`,
		op("and", op("<>", prop("a"), num(1)), op("<", prop("b"), num(2)), op(">", prop("c"), num(3)), op("<=", prop("d"), num(4)), op(">=", prop("e"), num(-55)))},
	{"precedence", `a = 1 or b = 2 and not c = 3`,
		`{"op":"or","args":[{"op":"=","args":[{"property":"a"},1]},{"op":"and","args":[{"op":"=","args":[{"property":"b"},2]},{"op":"not","args":[{"op":"=","args":[{"property":"c"},3]}]}]}]}`,
		op("or", op("=", prop("a"), num(1)), op("and", op("=", prop("b"), num(2)), op("not", op("=", prop("c"), num(3)))))},
	{"parentheses", `(a = 1 OR b = 2) AND c`,
		`{"op":"and","args":[{"op":"or","args":[{"op":"=","args":[{"property":"a"},1]},{"op":"=","args":[{"property":"b"},2]}]},{"property":"c"}]}`,
		op("and", op("or", op("=", prop("a"), num(1)), op("=", prop("b"), num(2))), prop("c"))},
	{"quoted property and escaped quote", `"level name" = 'it''s'`, `{"op":"=","args":[{"property":"level name"},"it's"]}`,
		op("=", prop("level name"), str("it's"))},
	{"like", `name LIKE '%梅沙%'`, `{"op":"like","args":[{"property":"name"},"%梅沙%"]}`,
		op("like", prop("name"), str("%梅沙%"))},
	{"not like", `name NOT LIKE '大%'`, `{"op":"not","args":[{"op":"like","args":[{"property":"name"},"大%"]}]}`,
		op("not", op("like", prop("name"), str("大%")))},
	{"casei", `CASEI(name) = casei('ABC')`, `{"op":"=","args":[{"op":"casei","args":[{"property":"name"}]},{"op":"casei","args":["ABC"]}]}`,
		op("=", op("casei", prop("name")), op("casei", str("ABC")))},
	{"between", `area BETWEEN 10 AND 20.5`, `{"op":"between","args":[{"property":"area"},10,20.5]}`,
		op("between", prop("area"), num(10), num(20.5))},
	{"not between", `area NOT BETWEEN 10 AND 20`, `{"op":"not","args":[{"op":"between","args":[{"property":"area"},10,20]}]}`,
		op("not", op("between", prop("area"), num(10), num(20)))},
	{"in", `level IN ('street', 'community')`, `{"op":"in","args":[{"property":"level"},["street","community"]]}`,
		op("in", prop("level"), &List{Items: []Expr{str("street"), str("community")}})},
	{"not in", `version NOT IN (1)`, `{"op":"not","args":[{"op":"in","args":[{"property":"version"},[1]]}]}`,
		op("not", op("in", prop("version"), &List{Items: []Expr{num(1)}}))},
	{"is null", `parent IS NULL`, `{"op":"isNull","args":[{"property":"parent"}]}`, op("isNull", prop("parent"))},
	{"is not null", `parent is not null`, `{"op":"not","args":[{"op":"isNull","args":[{"property":"parent"}]}]}`,
		op("not", op("isNull", prop("parent")))},
	{"booleans", `complete = TRUE OR false`, `{"op":"or","args":[{"op":"=","args":[{"property":"complete"},true]},false]}`,
		op("or", op("=", prop("complete"), &BoolLit{Value: true}), &BoolLit{Value: false})},
	{"timestamp", `valid_from > TIMESTAMP('2024-01-02T03:04:05.5+08:00')`,
		`{"op":">","args":[{"property":"valid_from"},{"timestamp":"2024-01-01T19:04:05.5Z"}]}`,
		op(">", prop("valid_from"), ts("2024-01-01T19:04:05.5Z"))},
	{"date", `day = DATE('2024-02-29')`, `{"op":"=","args":[{"property":"day"},{"date":"2024-02-29"}]}`,
		op("=", prop("day"), date("2024-02-29"))},
	{"t_intersects interval", `T_INTERSECTS(valid_from, INTERVAL('2024-01-01', '..'))`,
		`{"op":"t_intersects","args":[{"property":"valid_from"},{"interval":["2024-01-01",".."]}]}`,
		op("t_intersects", prop("valid_from"), &IntervalLit{Start: date("2024-01-01")})},
	{"interval of timestamps and properties", `t_during(INTERVAL(a, b), INTERVAL('..','2024-01-01T00:00:00Z'))`,
		`{"op":"t_during","args":[{"interval":[{"property":"a"},{"property":"b"}]},{"interval":["..","2024-01-01T00:00:00Z"]}]}`,
		op("t_during", &IntervalLit{Start: prop("a"), End: prop("b")}, &IntervalLit{End: ts("2024-01-01T00:00:00Z")})},
	{"interval of literals", `T_AFTER(x, INTERVAL(DATE('2024-01-01'), TIMESTAMP('2024-01-01T00:00:00Z')))`,
		`{"op":"t_after","args":[{"property":"x"},{"interval":[{"date":"2024-01-01"},{"timestamp":"2024-01-01T00:00:00Z"}]}]}`,
		op("t_after", prop("x"), &IntervalLit{Start: date("2024-01-01"), End: ts("2024-01-01T00:00:00Z")})},
	{"point", `S_INTERSECTS(geom, POINT(114.05 22.55))`, `{"op":"s_intersects","args":[{"property":"geom"},{"type":"Point","coordinates":[114.05,22.55]}]}`,
		op("s_intersects", prop("geom"), &GeometryLit{Geom: orb.Point{114.05, 22.55}})},
	{"point z", `S_INTERSECTS(geom, POINT Z (114.05 22.55 10))`, `{"op":"s_intersects","args":[{"property":"geom"},{"type":"Point","coordinates":[114.05,22.55,10]}]}`,
		op("s_intersects", prop("geom"), &GeometryLit{Geom: orb.Point{114.05, 22.55}})},
	{"polygon", `s_within(geom, POLYGON((114 22.5, 114.1 22.5, 114.1 22.6, 114 22.6, 114 22.5)))`,
		`{"op":"s_within","args":[{"property":"geom"},{"type":"Polygon","coordinates":[[[114,22.5],[114.1,22.5],[114.1,22.6],[114,22.6],[114,22.5]]]}]}`,
		op("s_within", prop("geom"), &GeometryLit{Geom: square})},
	{"multi geometries", `S_CROSSES(MULTIPOINT((1 2), (3 4)), MULTILINESTRING((0 0, 1 1), (2 2, 3 3)))`,
		`{"op":"s_crosses","args":[{"type":"MultiPoint","coordinates":[[1,2],[3,4]]},{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[[2,2],[3,3]]]}]}`,
		op("s_crosses", &GeometryLit{Geom: orb.MultiPoint{{1, 2}, {3, 4}}}, &GeometryLit{Geom: orb.MultiLineString{{{0, 0}, {1, 1}}, {{2, 2}, {3, 3}}}})},
	{"multipolygon and collection", `S_EQUALS(MULTIPOLYGON(((114 22.5, 114.1 22.5, 114.1 22.6, 114 22.6, 114 22.5))), GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1)))`,
		`{"op":"s_equals","args":[{"type":"MultiPolygon","coordinates":[[[[114,22.5],[114.1,22.5],[114.1,22.6],[114,22.6],[114,22.5]]]]},{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"LineString","coordinates":[[0,0],[1,1]]}]}]}`,
		op("s_equals", &GeometryLit{Geom: orb.MultiPolygon{square}}, &GeometryLit{Geom: orb.Collection{orb.Point{1, 2}, orb.LineString{{0, 0}, {1, 1}}}})},
	{"bbox", `S_INTERSECTS(geom, BBOX(114, 22.5, 114.1, 22.6))`, `{"op":"s_intersects","args":[{"property":"geom"},{"bbox":[114,22.5,114.1,22.6]}]}`,
		op("s_intersects", prop("geom"), &GeometryLit{Geom: orb.Bound{Min: orb.Point{114, 22.5}, Max: orb.Point{114.1, 22.6}}})},
	{"bbox 3d", `S_INTERSECTS(geom, BBOX(114, 22.5, 0, 114.1, 22.6, 100))`, `{"op":"s_intersects","args":[{"property":"geom"},{"bbox":[114,22.5,0,114.1,22.6,100]}]}`,
		op("s_intersects", prop("geom"), &GeometryLit{Geom: orb.Bound{Min: orb.Point{114, 22.5}, Max: orb.Point{114.1, 22.6}}})},
	{"property-property", `a = b`, `{"op":"=","args":[{"property":"a"},{"property":"b"}]}`, op("=", prop("a"), prop("b"))},
	{"chinese property", `名称 = 'x'`, `{"op":"=","args":[{"property":"名称"},"x"]}`, op("=", prop("名称"), str("x"))},
}

func TestParseBothEncodings(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			gotText, err := ParseText(tc.text)
			if err != nil {
				t.Fatalf("ParseText(%s): %v", tc.text, err)
			}
			if !reflect.DeepEqual(gotText, tc.want) {
				t.Errorf("ParseText(%s) = %s, want %s", tc.text, dump(gotText), dump(tc.want))
			}
			gotJSON, err := ParseJSON([]byte(tc.json))
			if err != nil {
				t.Fatalf("ParseJSON(%s): %v", tc.json, err)
			}
			if !reflect.DeepEqual(gotJSON, tc.want) {
				t.Errorf("ParseJSON(%s) = %s, want %s", tc.json, dump(gotJSON), dump(tc.want))
			}
		})
	}
}

// dump shows a tree in the text encoding's shape for failure messages.
func dump(e Expr) string {
	switch n := e.(type) {
	case *Op:
		parts := make([]string, len(n.Args))
		for i, a := range n.Args {
			parts[i] = dump(a)
		}
		return n.Op + "(" + strings.Join(parts, ", ") + ")"
	case *List:
		parts := make([]string, len(n.Items))
		for i, a := range n.Items {
			parts[i] = dump(a)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *IntervalLit:
		return "interval(" + dumpOpt(n.Start) + ", " + dumpOpt(n.End) + ")"
	case *Property:
		return `"` + n.Name + `"`
	}
	return strings.TrimPrefix(strings.TrimPrefix(fmtV(e), "&"), "cql2.")
}

func dumpOpt(e Expr) string {
	if e == nil {
		return ".."
	}
	return dump(e)
}

func TestParseTextErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		pos  int
		want string
	}{
		{``, 0, "empty"},
		{`   `, 3, "empty"},
		{`name = `, 7, "ends where a value"},
		{`name = 'abc`, 7, "not closed"},
		{`"name = 1`, 0, "not closed"},
		{`name = 1 2`, 9, "after a complete filter"},
		{`name == 1`, 6, "expected a value or property, found '='"},
		{`a = 1 AND`, 9, "ends where a value"},
		{`a NOT = 1`, 6, "expected LIKE, BETWEEN or IN after NOT"},
		{`a BETWEEN 1 OR 2`, 12, "expected and"},
		{`a IN 1`, 5, "expected ("},
		{`a IS 1`, 5, "expected null"},
		{`(a = 1`, 6, "expected )"},
		{`a = (1)`, 4, "parenthesis cannot start a value"},
		{`a = 1 + 2`, 6, "not a number"},
		{`a = b * 2`, 6, "unexpected character '*'"},
		{`FOO(a) = 1`, 0, "unknown or unsupported function FOO"},
		{`ACCENTI(a) = 'x'`, 0, "unknown or unsupported function ACCENTI"},
		{`a = AND`, 4, "keyword AND"},
		{`t > TIMESTAMP('2024-13-01T00:00:00Z')`, 14, "not an RFC 3339 timestamp"},
		{`t > TIMESTAMP(2024)`, 14, "takes a quoted string"},
		{`d = DATE('2024-02-30')`, 9, "not a date"},
		{`T_AFTER(t, INTERVAL('x', '..'))`, 20, "not an RFC 3339 timestamp"},
		{`T_AFTER(t, INTERVAL(1, '..'))`, 20, "an interval end is"},
		{`S_INTERSECTS(g, BBOX(1, 2, 3))`, 16, "takes 4 numbers"},
		{`S_INTERSECTS(g, BBOX(3, 2, 1, 4))`, 16, "minimum above its maximum"},
		{`S_INTERSECTS(g, BBOX(0, 0, 200, 1))`, 16, "outside longitude"},
		{`S_INTERSECTS(g, POINT(1))`, 23, "expected a number (a latitude)"},
		{`S_INTERSECTS(g, POINT(200 1))`, 16, "longitude out of range"},
		{`S_INTERSECTS(g, POINT EMPTY)`, 22, "EMPTY"},
		{`S_INTERSECTS(g, LINESTRING(1 1))`, 26, "at least 2 positions"},
		{`S_INTERSECTS(g, POLYGON((0 0, 1 0, 1 1, 0 1)))`, 24, "must end at its first position"},
		{`S_INTERSECTS(g, POLYGON((0 0, 1 0, 0 0)))`, 24, "at least 4 positions"},
		{`S_INTERSECTS(g, GEOMETRYCOLLECTION(CIRCLE(1 2)))`, 35, "expected a WKT geometry"},
		{`S_INTERSECTS(g POINT(1 2))`, 15, "expected ,"},
		{`a = 1e999`, 4, "not a finite number"},
		{"a = 'x\x00'", 0, "NUL"},
		{`a = 1 ; DROP TABLE units`, 6, "unexpected character ';'"},
		{strings.Repeat("(", 100) + "a = 1" + strings.Repeat(")", 100), 64, "nests deeper than 64"},
		{strings.Repeat("NOT ", 100) + "a", 256, "nests deeper than 64"},
		{`a = '` + strings.Repeat("x", 500), 4, "not closed"},
		{`a = 1 '` + strings.Repeat("x", 500) + `'`, 6, "…(500 bytes)"},
	} {
		_, err := ParseText(tc.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("ParseText(%.40q) = %v, want *Error", tc.in, err)
			continue
		}
		if e.Pos != tc.pos || !strings.Contains(e.Msg, tc.want) {
			t.Errorf("ParseText(%.40q): pos %d %q, want pos %d containing %q", tc.in, e.Pos, e.Msg, tc.pos, tc.want)
		}
		if len(e.Error()) > 200 {
			t.Errorf("ParseText(%.40q): error of %d bytes repeats the input", tc.in, len(e.Error()))
		}
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		in, path, want string
	}{
		{`{"op":"=","args":[{"property":"a"}`, "", "not JSON"},
		{`[1]`, "", "an array is only an operand of in"},
		{`null`, "", "null is not a CQL2 value"},
		{`{}`, "", "empty object"},
		{`{"op":"=="}`, "/op", `unknown or unsupported operator "=="`},
		{`{"op":1}`, "/op", "expected an operator name"},
		{`{"op":"=","args":[1]}`, "/args", "= takes 2 arguments, not 1"},
		{`{"op":"and","args":[true]}`, "/args", "at least 2 arguments"},
		{`{"op":"=","args":{"a":1}}`, "/args", "expected an array"},
		{`{"op":"=","arg":[1,2]}`, "/arg", "unexpected member"},
		{`{"op":"and","args":[true,{"op":"=","args":[{"property":"a"},{"date":"2024-02-30"}]}]}`, "/args/1/args/1/date", "not a date"},
		{`{"op":"=","args":[{"property":"a","x":1},1]}`, "/args/0/x", "unexpected member"},
		{`{"op":"=","args":[{"property":""},1]}`, "/args/0/property", "empty property name"},
		{`{"op":"=","args":[{"property":1},1]}`, "/args/0/property", "expected a string"},
		{`{"op":"=","args":[{"property":"a"},null]}`, "/args/1", "null is not a CQL2 value"},
		{`{"op":"=","args":[{"property":"a"},1e999]}`, "/args/1", "not a finite number"},
		{`{"op":"in","args":[{"property":"a"},[]]}`, "/args/1", "non-empty array"},
		{`{"op":"in","args":[{"property":"a"},[1,null]]}`, "/args/1/1", "null"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"bbox":[1,2,3]}]}`, "/args/1/bbox", "takes 4 numbers"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"Point","coordinates":[1]}]}`, "/args/1", "coordinates"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"Point","coordinates":[200,1]}]}`, "/args/1", "longitude out of range"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}]}`, "/args/1", "must end at its first position"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"Circle","coordinates":[1,2]}]}`, "/args/1", "not a GeoJSON geometry type"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"GeometryCollection","geometries":[{"x":1}]}]}`, "/args/1/geometries/0", "expected a GeoJSON geometry"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"MultiPolygon","coordinates":[[]]}]}`, "/args/1", "empty polygon"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"MultiPoint","coordinates":[]}]}`, "/args/1", "empty MultiPoint"},
		{`{"op":"s_intersects","args":[{"property":"g"},{"type":"GeometryCollection","geometries":[]}]}`, "/args/1/geometries", "empty GeometryCollection"},
		{`{"op":"t_after","args":[{"property":"t"},{"interval":["2024-01-01"]}]}`, "/args/1/interval", "2 ends"},
		{`{"op":"t_after","args":[{"property":"t"},{"interval":["x",".."]}]}`, "/args/1/interval/0", "not an RFC 3339 timestamp"},
		{`{"op":"t_after","args":[{"property":"t"},{"interval":[1,".."]}]}`, "/args/1/interval/0", "an interval end is"},
		{`{"op":"=","args":[{"function":{"name":"f","args":[]}},1]}`, "/args/0/function", "custom functions"},
		{`{"op":"=","op":"<>","args":[1,2]}`, "/op", "given twice"},
		{`{"op":"=","args":[{"a/b":1},1]}`, "/args/0/a~1b", "unexpected member"},
		{`{"op":"=","args":["a\u0000",1]}`, "/args/0", "NUL"},
		{strings.Repeat(`{"op":"not","args":[`, 100) + "true" + strings.Repeat("]}", 100), strings.Repeat("/args/0", 64), "nests deeper than 64"},
	} {
		_, err := ParseJSON([]byte(tc.in))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("ParseJSON(%.60s) = %v, want *Error", tc.in, err)
			continue
		}
		if e.Path != tc.path || !strings.Contains(e.Msg, tc.want) || e.Pos != -1 {
			t.Errorf("ParseJSON(%.60s): path %q pos %d %q, want path %q containing %q", tc.in, e.Path, e.Pos, e.Msg, tc.path, tc.want)
		}
		if !strings.HasPrefix(e.Error(), "at ") {
			t.Errorf("ParseJSON(%.60s): %q does not say where", tc.in, e.Error())
		}
	}
}

func TestMapGeometries(t *testing.T) {
	e, err := ParseText(`S_INTERSECTS(geom, POINT(1 2)) AND (S_WITHIN(geom, BBOX(0, 0, 3, 3)) OR name IN ('a'))`)
	if err != nil {
		t.Fatal(err)
	}
	before := dump(e)
	var seen []orb.Geometry
	got, err := MapGeometries(e, func(g orb.Geometry) (orb.Geometry, error) {
		seen = append(seen, g)
		switch g := g.(type) {
		case orb.Point:
			return orb.Point{g[0] + 10, g[1]}, nil
		case orb.Bound:
			return orb.Bound{Min: orb.Point{g.Min[0] + 10, g.Min[1]}, Max: orb.Point{g.Max[0] + 10, g.Max[1]}}, nil
		}
		return g, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Fatalf("f saw %v, want the point and the bbox", seen)
	}
	want, _ := ParseText(`S_INTERSECTS(geom, POINT(11 2)) AND (S_WITHIN(geom, BBOX(10, 0, 13, 3)) OR name IN ('a'))`)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mapped %s, want %s", dump(got), dump(want))
	}
	if dump(e) != before {
		t.Errorf("the original changed: %s", dump(e))
	}
	boom := errors.New("outside the CRS")
	if _, err := MapGeometries(e, func(orb.Geometry) (orb.Geometry, error) { return nil, boom }); err != boom {
		t.Errorf("error %v, want f's", err)
	}
}
