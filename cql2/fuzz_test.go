package cql2

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/paulmach/orb"
)

// FuzzParseText: no panic; a refusal is an *Error at an offset inside the
// input that repeats little of it; an accepted filter gives the same tree
// when parsed again from its own text (Text), and Check answers without
// panicking.
func FuzzParseText(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.text)
	}
	for _, s := range []string{``, `a = 'x`, `S_INTERSECTS(g, POLYGON((0 0, 1 0, 0 0)))`, `a IN ()`, `"`, `a = -`,
		`T_AFTER(t, INTERVAL('..', '..'))`, `a = 1e400`, `NOT NOT a`, `a IS NOT NULL OR b NOT LIKE 'x%'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := ParseText(in)
		if err != nil {
			if e != nil {
				t.Fatalf("a tree and the error %v", err)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v, want *Error", err, err)
			}
			if pe.Pos < 0 || pe.Pos > len(in) {
				t.Fatalf("offset %d outside the %d-byte input", pe.Pos, len(in))
			}
			if len(pe.Msg) > 400 {
				t.Fatalf("error of %d bytes: %.100s", len(pe.Msg), pe.Msg)
			}
			return
		}
		if !utf8.ValidString(in) || strings.IndexByte(in, 0) >= 0 {
			t.Fatalf("accepted text that cannot be stored: %q", in)
		}
		again, err := ParseText(Text(e))
		if err != nil {
			t.Fatalf("Text(%q) = %q does not parse: %v", in, Text(e), err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("Text(%q) = %q reads as %s, not %s", in, Text(e), dump(again), dump(e))
		}
		_ = Check(e, unitQueryables)
	})
}

// FuzzParseJSON: no panic; a refusal is an *Error whose Path is a JSON
// pointer; Check answers what is accepted without panicking, and MapGeometries
// with the identity gives an equal tree.
func FuzzParseJSON(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.json))
	}
	for _, s := range []string{`{}`, `[]`, `{"op":"in","args":[{"property":"a"},[]]}`, `{"op":"=","args":[{"property":"a"},{"bbox":[1,2,3,4,5,6]}]}`,
		`{"op":"s_intersects","args":[{"property":"g"},{"type":"GeometryCollection","geometries":[{"type":"GeometryCollection","geometries":[]}]}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := ParseJSON(in)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || e != nil {
				t.Fatalf("%v (tree %v), want *Error alone", err, e)
			}
			if pe.Path != "" && !strings.HasPrefix(pe.Path, "/") || pe.Pos != -1 {
				t.Fatalf("path %q pos %d", pe.Path, pe.Pos)
			}
			return
		}
		_ = Check(e, unitQueryables)
		same, err := MapGeometries(e, func(g orb.Geometry) (orb.Geometry, error) { return g, nil })
		if err != nil || !reflect.DeepEqual(same, e) {
			t.Fatalf("MapGeometries(identity) = %v, %v", same, err)
		}
	})
}
