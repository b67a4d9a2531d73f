package data

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gridmap/geo/geotest"
	"gridmap/grid"
)

// Fuzz targets for the pure parsers of this package: the class catalogues'
// CSV and list cursors. None needs the database.

// csvRows is the number of records after the header, or -1 when
// encoding/csv (with the catalogue's field count) refuses the text.
func csvRows(raw []byte, fields int) int {
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = fields
	recs, err := r.ReadAll()
	if err != nil || len(recs) == 0 {
		return -1
	}
	return len(recs) - 1
}

// checkCatalogue holds a catalogue reader to its contract on raw: a
// refusal repeats little of the input; what it accepts is one valid entry
// per row (row writes an entry back as its CSV fields, checking what only
// that catalogue has) and reads the same once written back.
func checkCatalogue[T interface{ Validate() error }](t *testing.T, raw []byte, head string, read func(io.Reader) ([]T, error), row func(T) []string) {
	t.Helper()
	entries, err := read(bytes.NewReader(raw))
	if err != nil {
		geotest.CheckNoEcho(t, err.Error(), string(raw))
		return
	}
	header := strings.Split(strings.TrimSpace(head), ",")
	if n := csvRows(raw, len(header)); n != len(entries) {
		t.Fatalf("%d entries from %d rows", len(entries), n)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(header)
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted %+v: %v", e, err)
		}
		_ = w.Write(row(e))
	}
	w.Flush()
	again, err := read(&b)
	if err != nil || !reflect.DeepEqual(again, entries) {
		t.Fatalf("written back and read as %+v, %v; first read %+v", again, err, entries)
	}
}

// FuzzReadClasses: an accepted catalogue has one valid class per row and
// reads the same after writing it back; a refusal repeats little of it.
func FuzzReadClasses(f *testing.F) {
	head := "code,kind,major,major_name,minor,name,geometry_types\n"
	for _, s := range []string{
		head + "0101,component,01,公用设施,01,上水井盖,Point\n",
		head + "house,building,,,,房屋,Polygon|MultiPolygon\n",
		head + "0101,component,01,x,02,y,Point\n",
		head + "0101,component,01,x,01,y,Circle\n",
		head + "0101,component,01,x,01,,Point\n",
		head + "corp,enterprise,,,,法人,\n",
		head + "a b,building,,,,x,Point\n",
		head + "0101,component,01,x,01\n",
		head + "\"0101,component,01,x,01,y,Point\n",
		head + strings.Repeat("c", 300) + ",building,,,,x,Point\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkCatalogue(t, raw, head, ReadClasses, func(c grid.Class) []string {
			return []string{c.Code, string(c.Kind), c.Major, c.MajorName, c.Minor, c.Name, strings.Join(c.GeometryTypes, "|")}
		})
	})
}

// FuzzReadEventClasses: an accepted catalogue has one valid class per row,
// its limits in range, and reads the same after writing it back.
func FuzzReadEventClasses(f *testing.F) {
	head := "code,major,major_name,minor,name,department,limit_amount,limit_unit\n"
	for _, s := range []string{
		head + "0102,01,市容环境,02,暴露垃圾,city_management,4,working_hours\n",
		head + "0501,05,施工管理,01,私搭乱建,urban_planning,20,working_days\n",
		head + "own,,,,本市事件,dep-1,1,working_days\n",
		head + "0102,01,x,03,y,dep,4,working_hours\n",
		head + "0102,01,x,02,y,dep,0,working_hours\n",
		head + "0102,01,x,02,y,dep,10001,working_hours\n",
		head + "0102,01,x,02,y,dep,4,hours\n",
		head + "0102,01,x,02,y,dep,+4,working_hours\n",
		head + "0102,01,x,02,y,dep,4.5,working_hours\n",
		head + "0102,01,x,02,y,dep dep,4,working_hours\n",
		head + "0102,01,x,02,y,dep," + strings.Repeat("9", 300) + ",working_hours\n",
		head + "0102,01,x,02,y,dep,4\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkCatalogue(t, raw, head, ReadEventClasses, func(c grid.EventClass) []string {
			if c.Limit.Amount < 1 || c.Limit.Amount > 10000 {
				t.Fatalf("accepted limit %v", c.Limit)
			}
			return []string{c.Code, c.Major, c.MajorName, c.Minor, c.Name, c.Department, strconv.Itoa(c.Limit.Amount), string(c.Limit.Unit)}
		})
	})
}

// FuzzDecodeCursor: a cursor is accepted only for the order it was issued
// for, with a code, a finite distance that is not negative, and a time
// exactly for the newest-first order; what decodes encodes to a cursor
// that decodes the same (encode(decode(x)) is x up to JSON spelling), and
// what encodes decodes back. A refusal is a *FilterError naming cursor.
func FuzzDecodeCursor(f *testing.F) {
	at := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	for _, c := range []cursor{
		{Order: orderCode, Code: "4403040101000001"},
		{Order: orderGrid, Code: "A1", Grid: "440304001001001"},
		{Order: orderDistance, Code: "A1", Dist: 12.5},
		{Order: orderReported, Code: "44030420261123000001", At: &at},
	} {
		f.Add(c.encode(), c.Order, c.Code, c.Grid, c.Dist, at.UnixNano())
		f.Add(c.encode(), orderCode, c.Code, c.Grid, -1.0, int64(0))
	}
	for _, s := range []string{"", "e30", "!!", "eyJvIjoiY29kZSIsImMiOiIifQ", "eyJvIjoiZGlzdGFuY2UiLCJjIjoiQSIsImQiOi0xfQ",
		"eyJvIjoiY29kZSIsImMiOiJBIiwidCI6bnVsbH0", strings.Repeat("QUFB", 100)} {
		f.Add(s, orderDistance, "", "", math.Inf(1), int64(math.MaxInt64))
	}
	f.Fuzz(func(t *testing.T, s, order, code, gridCode string, dist float64, nanos int64) {
		c, err := decodeCursor(s, order)
		switch {
		case err != nil:
			var fe *FilterError
			if !errors.As(err, &fe) || fe.Param != "cursor" {
				t.Fatalf("%T %v", err, err)
			}
			geotest.CheckNoEcho(t, err.Error(), s)
		case s == "":
			if c != nil {
				t.Fatalf("a cursor %+v from nothing", c)
			}
		default:
			if c.Order != order || c.Code == "" || math.IsNaN(c.Dist) || math.IsInf(c.Dist, 0) || c.Dist < 0 || (order == orderReported) != (c.At != nil) {
				t.Fatalf("accepted %q for %q as %+v", s, order, c)
			}
			again, err := decodeCursor(c.encode(), order)
			if err != nil || !sameCursor(*again, *c) {
				t.Fatalf("%q → %+v → %q → %+v, %v", s, c, c.encode(), again, err)
			}
		}
		// Cursors are made of the list's order and rows' values, which are
		// valid UTF-8.
		if !utf8.ValidString(order) || !utf8.ValidString(code) || !utf8.ValidString(gridCode) || code == "" {
			return
		}
		out := cursor{Order: order, Code: code, Grid: gridCode, Dist: dist}
		if order == orderReported {
			ts := time.Unix(0, nanos).UTC()
			out.At = &ts
		}
		back, err := decodeCursor(out.encode(), order)
		valid := !math.IsNaN(dist) && !math.IsInf(dist, 0) && dist >= 0
		if (err == nil) != valid || (valid && !sameCursor(*back, out)) {
			t.Fatalf("%+v → %q → %+v, %v", out, out.encode(), back, err)
		}
	})
}

func sameCursor(a, b cursor) bool {
	if (a.At == nil) != (b.At == nil) || (a.At != nil && !a.At.Equal(*b.At)) {
		return false
	}
	a.At, b.At = nil, nil
	return a == b
}
