package geo

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	gewkb "github.com/twpayne/go-geom/encoding/ewkb"
)

func TestMultiPolygonOf(t *testing.T) {
	a, b, c, d := orb.Point{0, 0}, orb.Point{1, 0}, orb.Point{1, 1}, orb.Point{0, 1}
	tri := orb.Ring{a, b, c, a}
	hole := orb.Ring{{0.2, 0.1}, {0.8, 0.1}, {0.8, 0.5}, {0.2, 0.1}}
	cases := []struct {
		name string
		in   orb.Geometry
		want orb.MultiPolygon
		err  string // part of the error; "" for none
	}{
		{name: "polygon", in: orb.Polygon{tri}, want: orb.MultiPolygon{{tri}}},
		{name: "polygon with hole", in: orb.Polygon{{a, b, c, d, a}, hole}, want: orb.MultiPolygon{{{a, b, c, d, a}, hole}}},
		{name: "multipolygon", in: orb.MultiPolygon{{tri}, {{{5, 5}, {6, 5}, {6, 6}, {5, 5}}}},
			want: orb.MultiPolygon{{tri}, {{{5, 5}, {6, 5}, {6, 6}, {5, 5}}}}},
		{name: "clockwise ring kept as is", in: orb.Polygon{{a, c, b, a}}, want: orb.MultiPolygon{{{a, c, b, a}}}},
		{name: "repeated vertices dropped", in: orb.Polygon{{a, a, b, b, b, c, a}}, want: orb.MultiPolygon{{tri}}},
		{name: "repeated closing vertex dropped", in: orb.Polygon{{a, b, c, a, a}}, want: orb.MultiPolygon{{tri}}},
		{name: "repeats in a hole dropped", in: orb.MultiPolygon{{{a, b, c, d, a}, {hole[0], hole[1], hole[1], hole[2], hole[3]}}},
			want: orb.MultiPolygon{{{a, b, c, d, a}, hole}}},
		{name: "nil", in: nil, err: "geometry is missing"},
		{name: "point", in: orb.Point{1, 2}, err: "geometry type Point: a unit must be a Polygon or MultiPolygon"},
		{name: "linestring", in: orb.LineString{a, b}, err: "geometry type LineString"},
		{name: "closed linestring", in: orb.LineString{a, b, c, a}, err: "geometry type LineString"},
		{name: "ring type", in: orb.Ring{a, b, c, a}, err: "geometry type Polygon"},
		{name: "collection", in: orb.Collection{orb.Polygon{tri}}, err: "geometry type GeometryCollection"},
		{name: "bound", in: orb.Bound{Min: a, Max: c}, err: "geometry type Polygon"},
		{name: "empty multipolygon", in: orb.MultiPolygon{}, err: "geometry is empty"},
		{name: "polygon without rings", in: orb.Polygon{}, err: "coordinates[0]: polygon has no rings"},
		{name: "second polygon without rings", in: orb.MultiPolygon{{tri}, {}}, err: "coordinates[1]: polygon has no rings"},
		{name: "open ring", in: orb.Polygon{{a, b, c}}, err: "coordinates[0][0]: ring is not closed"},
		{name: "open hole", in: orb.MultiPolygon{{tri}, {tri, {a, b, c, d}}}, err: "coordinates[1][1]: ring is not closed"},
		{name: "empty ring", in: orb.Polygon{tri, {}}, err: "coordinates[0][1]: ring is not closed"},
		{name: "two distinct positions", in: orb.Polygon{{a, b, a}}, err: "coordinates[0][0]: ring has 2 distinct positions, at least 3 are needed"},
		{name: "two distinct after repeats", in: orb.Polygon{{a, a, b, b, a}}, err: "ring has 2 distinct positions"},
		{name: "one position", in: orb.Polygon{{a}}, err: "coordinates[0][0]: ring has"},
		{name: "same position four times", in: orb.Polygon{{a, a, a, a}}, err: "at least 3 are needed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MultiPolygonOf(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("MultiPolygonOf = %v, %v; want an error containing %q", got, err, tc.err)
				}
				if got != nil {
					t.Errorf("MultiPolygonOf returned %v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("MultiPolygonOf: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MultiPolygonOf = %v, want %v", got, tc.want)
			}
		})
	}
}

// MultiPolygonOf builds new rings; the caller's geometry is left alone.
func TestMultiPolygonOfDoesNotModifyInput(t *testing.T) {
	in := orb.Polygon{{{0, 0}, {0, 0}, {1, 0}, {1, 1}, {1, 1}, {0, 0}}}
	before := orb.Clone(in).(orb.Polygon)
	out, err := MultiPolygonOf(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, before) {
		t.Errorf("input changed to %v", in)
	}
	out[0][0][0] = orb.Point{9, 9}
	if in[0][0] != (orb.Point{0, 0}) {
		t.Error("output shares its ring with the input")
	}
}

func TestDropRepeats(t *testing.T) {
	a, b, c := orb.Point{0, 0}, orb.Point{1, 0}, orb.Point{1, 1}
	cases := []struct {
		name string
		in   orb.Ring
		want orb.Ring
	}{
		{"nil", nil, orb.Ring{}},
		{"empty", orb.Ring{}, orb.Ring{}},
		{"one", orb.Ring{a}, orb.Ring{a}},
		{"all same", orb.Ring{a, a, a}, orb.Ring{a}},
		{"no repeats", orb.Ring{a, b, c, a}, orb.Ring{a, b, c, a}},
		{"leading repeats", orb.Ring{a, a, b, c, a}, orb.Ring{a, b, c, a}},
		{"middle repeats", orb.Ring{a, b, b, b, c, a}, orb.Ring{a, b, c, a}},
		{"trailing repeats", orb.Ring{a, b, c, a, a}, orb.Ring{a, b, c, a}},
		{"non-consecutive duplicates stay", orb.Ring{a, b, a, b, a}, orb.Ring{a, b, a, b, a}},
		{"negative zero equals zero", orb.Ring{{0, 0}, {negZero(), 0}, b}, orb.Ring{{0, 0}, b}},
		{"nearly equal kept", orb.Ring{{0, 0}, {0, 5e-324}, b}, orb.Ring{{0, 0}, {0, 5e-324}, b}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DropRepeats(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DropRepeats(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	in := orb.Ring{a, b, c, a}
	out := DropRepeats(in)
	out[0] = orb.Point{7, 7}
	if in[0] != a {
		t.Error("DropRepeats returned a slice sharing memory with its input")
	}
}

func negZero() float64 { z := 0.0; return -z }

// ---------------------------------------------------------------------------
// EWKB (ewkb.go)
// ---------------------------------------------------------------------------

func TestEWKBRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		g    orb.Geometry
	}{
		{"point", orb.Point{114.05, 22.55}},
		{"polygon", orb.Polygon{{{113.9, 22.5}, {114, 22.5}, {114, 22.6}, {113.9, 22.5}}}},
		{"polygon with hole", orb.Polygon{sq(0, 0, 10, 10), reversed(sq(3, 3, 7, 7))}},
		{"multipolygon", orb.MultiPolygon{{sq(0, 0, 1, 1)}, {sq(2, 2, 3, 3), sq(2.2, 2.2, 2.4, 2.4)}}},
		{"linestring", orb.LineString{{0, 0}, {1, 1}, {2, 0}}},
		{"5000-vertex circle", circle(5000, 114.05, 22.55, 0.08)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EWKB(tc.g)
			if err != nil {
				t.Fatalf("EWKB: %v", err)
			}
			// Read back with another library to check the SRID really is there.
			gg, err := gewkb.Unmarshal(b)
			if err != nil {
				t.Fatalf("go-geom cannot read the EWKB: %v", err)
			}
			if gg.SRID() != 4326 {
				t.Errorf("SRID = %d, want 4326", gg.SRID())
			}
			back, err := FromEWKB(b)
			if err != nil {
				t.Fatalf("FromEWKB: %v", err)
			}
			if !reflect.DeepEqual(back, tc.g) {
				t.Errorf("round trip gave %v, want %v", back, tc.g)
			}
		})
	}
}

// TestEWKBBytes pins the exact bytes PostGIS produces for
// ST_AsEWKB('SRID=4326;POINT(1 2)'::geometry).
func TestEWKBBytes(t *testing.T) {
	const postgis = "0101000020e6100000000000000000f03f0000000000000040"
	b, err := EWKB(orb.Point{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != postgis {
		t.Errorf("EWKB(POINT(1 2)) = %s, want %s", got, postgis)
	}
	raw, _ := hex.DecodeString(postgis)
	g, err := FromEWKB(raw)
	if err != nil || g != (orb.Point{1, 2}) {
		t.Errorf("FromEWKB(%s) = %v, %v", postgis, g, err)
	}
}

// postgisMultiPolygon writes EWKB the way PostGIS does, by hand, so the
// decoder is checked against the format rather than against itself.
func postgisMultiPolygon(order binary.ByteOrder, srid bool, mp [][][][2]float64) []byte {
	var buf bytes.Buffer
	bo := byte(1)
	if order == binary.BigEndian {
		bo = 0
	}
	header := func(typ uint32, withSRID bool) {
		buf.WriteByte(bo)
		if withSRID {
			_ = binary.Write(&buf, order, typ|0x20000000)
			_ = binary.Write(&buf, order, uint32(4326))
		} else {
			_ = binary.Write(&buf, order, typ)
		}
	}
	header(6, srid)
	_ = binary.Write(&buf, order, uint32(len(mp)))
	for _, poly := range mp {
		header(3, false)
		_ = binary.Write(&buf, order, uint32(len(poly)))
		for _, ring := range poly {
			_ = binary.Write(&buf, order, uint32(len(ring)))
			for _, p := range ring {
				_ = binary.Write(&buf, order, p)
			}
		}
	}
	return buf.Bytes()
}

func TestMultiPolygonFromEWKB(t *testing.T) {
	shape := [][][][2]float64{{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}, {{{2, 2}, {3, 2}, {3, 3}, {2, 2}}}}
	wantShape := orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}, {{{2, 2}, {3, 2}, {3, 3}, {2, 2}}}}
	mustEWKB := func(g orb.Geometry) []byte {
		b, err := EWKB(g)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mustWKB := func(g orb.Geometry) []byte {
		b, err := wkb.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		in   []byte
		want orb.MultiPolygon
		err  string
	}{
		{name: "PostGIS little-endian EWKB", in: postgisMultiPolygon(binary.LittleEndian, true, shape), want: wantShape},
		{name: "PostGIS big-endian EWKB", in: postgisMultiPolygon(binary.BigEndian, true, shape), want: wantShape},
		{name: "plain WKB (no SRID)", in: postgisMultiPolygon(binary.LittleEndian, false, shape), want: wantShape},
		{name: "orb WKB", in: mustWKB(wantShape), want: wantShape},
		{name: "polygon is widened", in: mustEWKB(orb.Polygon{sq(0, 0, 1, 1)}), want: orb.MultiPolygon{{sq(0, 0, 1, 1)}}},
		{name: "multipolygon", in: mustEWKB(wantShape), want: wantShape},
		{name: "point", in: mustEWKB(orb.Point{1, 2}), err: "geometry is Point, want MultiPolygon"},
		{name: "linestring", in: mustEWKB(orb.LineString{{0, 0}, {1, 1}}), err: "geometry is LineString, want MultiPolygon"},
		{name: "empty bytes", in: nil, err: "decode EWKB: "},
		{name: "garbage", in: []byte("POLYGON((0 0,1 0,1 1,0 0))"), err: "decode EWKB: "},
		{name: "truncated", in: postgisMultiPolygon(binary.LittleEndian, true, shape)[:30], err: "decode EWKB: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MultiPolygonFromEWKB(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("MultiPolygonFromEWKB = %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("MultiPolygonFromEWKB: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MultiPolygonFromEWKB = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFromEWKBErrorWraps(t *testing.T) {
	_, err := FromEWKB([]byte{1, 2, 3})
	if err == nil || !strings.HasPrefix(err.Error(), "decode EWKB: ") {
		t.Fatalf("FromEWKB = %v, want a wrapped decode error", err)
	}
	// The go-geom reader is a second opinion on the same bytes.
	if _, err := gewkb.Unmarshal([]byte{1, 2, 3}); err == nil {
		t.Fatal("go-geom accepted garbage too")
	}
}
