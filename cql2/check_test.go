package cql2

import (
	"errors"
	"strings"
	"testing"
)

var unitQueryables = Queryables{
	"code": String, "name": String, "level": String, "parent_code": String, "area_m2": Number,
	"version": Integer, "complete": Boolean, "valid_from": Timestamp, "day": Date, "geometry": Geometry,
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		in       string
		property string
		want     string // "" when the filter is fine
	}{
		{`name = '梅沙街道' AND version >= 1`, "", ""},
		{`area_m2 > version`, "", ""},
		{`complete`, "", ""},
		{`NOT complete OR TRUE`, "", ""},
		{`CASEI(name) LIKE casei('%abc%')`, "", ""},
		{`area_m2 BETWEEN 1 AND 2 AND name BETWEEN 'a' AND 'b'`, "", ""},
		{`level IN ('street', 'grid') AND version NOT IN (1, 2.0)`, "", ""},
		{`parent_code IS NULL AND geometry IS NOT NULL`, "", ""},
		{`valid_from > DATE('2024-01-01') AND day < TIMESTAMP('2024-01-01T00:00:00Z')`, "", ""},
		{`T_DURING(valid_from, INTERVAL(day, '..')) AND T_AFTER(day, valid_from)`, "", ""},
		{`S_INTERSECTS(geometry, BBOX(0, 0, 1, 1)) AND S_EQUALS(POINT(1 1), POINT(1 1))`, "", ""},

		{`nme = 'x'`, "nme", `unknown property "nme": the queryables are area_m2, code, complete, day, geometry, level, name, parent_code, valid_from, version`},
		{`S_INTERSECTS(geom, POINT(1 2))`, "geom", `unknown property "geom"`},
		{`name = 5`, "name", "= cannot compare property name (string) with a number literal"},
		{`5 = name`, "name", "= cannot compare a number literal with property name (string)"},
		{`version = '1'`, "version", "cannot compare property version (integer) with a string literal"},
		{`complete = 1`, "complete", "cannot compare property complete (boolean)"},
		{`valid_from > '2024-01-01'`, "valid_from", "cannot compare property valid_from (timestamp) with a string literal"},
		{`geometry = POINT(1 2)`, "geometry", "= takes strings, numbers, booleans, dates or timestamps (use S_EQUALS"},
		{`version LIKE '1%'`, "version", "LIKE takes strings, not property version (integer)"},
		{`CASEI(version) = 'x'`, "version", "CASEI takes a string"},
		{`complete BETWEEN FALSE AND TRUE`, "complete", "BETWEEN takes strings, numbers, dates or timestamps"},
		{`level IN ('a', 1)`, "level", "IN cannot compare property level (string) with a number literal"},
		{`S_INTERSECTS(name, POINT(1 2))`, "name", "S_INTERSECTS takes geometries, not property name (string)"},
		{`T_AFTER(name, TIMESTAMP('2024-01-01T00:00:00Z'))`, "name", "T_AFTER takes dates, timestamps or intervals"},
		{`T_AFTER(valid_from, INTERVAL(name, '..'))`, "name", "an interval end must be a date or a timestamp"},
		{`name`, "name", "the filter is property name (string), not a predicate"},
		{`'x' = 'x' AND version`, "version", "AND takes predicates, not property version (integer)"},
		{`NOT 5`, "", "NOT takes predicates, not a number literal"},
	} {
		e, err := ParseText(tc.in)
		if err != nil {
			t.Fatalf("ParseText(%s): %v", tc.in, err)
		}
		err = Check(e, unitQueryables)
		if tc.want == "" {
			if err != nil {
				t.Errorf("Check(%s): %v", tc.in, err)
			}
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("Check(%s) = %v, want *Error", tc.in, err)
			continue
		}
		if !strings.Contains(ce.Msg, tc.want) || ce.Property != tc.property || ce.Pos != -1 {
			t.Errorf("Check(%s) = %q (property %q, pos %d), want %q about %q", tc.in, ce.Msg, ce.Property, ce.Pos, tc.want, tc.property)
		}
	}
}

func TestTypeSchema(t *testing.T) {
	for typ, want := range map[Type]string{String: "string", Number: "number", Integer: "integer", Boolean: "boolean",
		Timestamp: "date-time", Date: "date", Geometry: "geometry-any"} {
		s := typ.Schema()
		if s["type"] != want && s["format"] != want {
			t.Errorf("%v.Schema() = %v, want %s", typ, s, want)
		}
	}
	if Type(0).String() != "Type(0)" || Timestamp.String() != "timestamp" {
		t.Errorf("names: %v %v", Type(0), Timestamp)
	}
}
