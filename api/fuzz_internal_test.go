package api

import (
	"errors"
	"math"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"gridmap/data"
	"gridmap/geo/geotest"
	"gridmap/grid"
	"gridmap/tiles"
)

// Fuzz targets for the API's readers of query parameters and path
// segments. `go test` runs each on its seeds; `make fuzz` explores further.

// checkParamError fails unless err is a *paramError naming one of params
// whose detail repeats little of the inputs (as is or %q-quoted) and is
// short whatever they are.
func checkParamError(t *testing.T, err error, params []string, inputs ...string) {
	t.Helper()
	var pe *paramError
	if !errors.As(err, &pe) || !slices.Contains(params, pe.param) {
		t.Fatalf("%T %v: want a *paramError naming one of %v", err, err, params)
	}
	geotest.CheckNoEcho(t, err.Error(), inputs...)
}

// FuzzParseBBox: an accepted bbox has four finite numbers in range with
// min ≤ max, and written back with %g-like precision it reads the same.
func FuzzParseBBox(f *testing.F) {
	for _, s := range []string{"113.9,22.5,114.1,22.6", " 113.9 , 22.5,114.1,22.6", "-180,-90,180,90", "1,2,3", "1,2,3,4,5",
		"NaN,0,1,1", "Inf,0,1,1", "0x1p-2,0,1,1", "1_0,0,20,1", "181,0,182,1", "2,0,1,1", ",,,", "1e999,0,1,1",
		strings.Repeat("9", 300) + ",0,1,1", strings.Repeat("1,", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseBBox(s)
		if err != nil {
			checkParamError(t, err, []string{"bbox"}, s)
			return
		}
		if s == "" {
			if b != nil {
				t.Fatalf("a bbox %v from nothing", b)
			}
			return
		}
		for i, lim := range []float64{180, 90, 180, 90} {
			if math.IsNaN(b[i]) || b[i] < -lim || b[i] > lim {
				t.Fatalf("%q read as %v", s, b)
			}
		}
		if b[0] > b[2] || b[1] > b[3] {
			t.Fatalf("%q read as %v", s, b)
		}
		text := strings.Join([]string{fmtFloat(b[0]), fmtFloat(b[1]), fmtFloat(b[2]), fmtFloat(b[3])}, ",")
		again, err := parseBBox(text)
		if err != nil || *again != *b {
			t.Fatalf("%q → %v → %q → %v, %v", s, b, text, again, err)
		}
	})
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// FuzzParseLonLat: an accepted lon,lat is two finite numbers in range
// that read the same written back.
func FuzzParseLonLat(f *testing.F) {
	for _, s := range []string{"114.05,22.55", " 114 , 22 ", "114", "114,22,3", "NaN,0", "0,NaN", "Inf,0", "181,0", "0,-91", ",",
		"-0,-0", "1e-400,0", strings.Repeat("1", 300) + ",0", "0," + strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseLonLat(url.Values{"near": {s}}, "near")
		if err != nil {
			checkParamError(t, err, []string{"near"}, s)
			return
		}
		if s == "" {
			if p != nil {
				t.Fatalf("a point %v from nothing", p)
			}
			return
		}
		if !(p[0] >= -180 && p[0] <= 180 && p[1] >= -90 && p[1] <= 90) {
			t.Fatalf("%q read as %v", s, p)
		}
		text := fmtFloat(p[0]) + "," + fmtFloat(p[1])
		again, err := parseLonLat(url.Values{"near": {text}}, "near")
		if err != nil || *again != *p {
			t.Fatalf("%q → %v → %q → %v, %v", s, p, text, again, err)
		}
	})
}

// FuzzTileParams: z/x/y path segments are accepted only as integers
// naming a tile inside the pyramid.
func FuzzTileParams(f *testing.F) {
	for _, s := range [][3]string{{"0", "0", "0"}, {"14", "13358", "7124"}, {"22", "4194303", "4194303"}, {"23", "0", "0"},
		{"1", "2", "0"}, {"-1", "0", "0"}, {"+1", "01", "0"}, {"1.0", "0", "0"}, {"", "0", "0"}, {"99999999999999999999", "0", "0"},
		{"0x1", "0", "0"}, {"1", "0", strings.Repeat("9", 300)}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, z, x, y string) {
		r := mux.SetURLVars(httptest.NewRequest("GET", "/", nil), map[string]string{"z": z, "x": x, "y": y})
		zxy, err := tileParams(r)
		if err != nil {
			checkParamError(t, err, []string{"z", "x", "y", "z/x/y"}, z, x, y)
			return
		}
		for i, s := range []string{z, x, y} {
			if n, err := strconv.Atoi(s); err != nil || n != zxy[i] {
				t.Fatalf("%s/%s/%s read as %v", z, x, y, zxy)
			}
		}
		if err := tiles.CheckTile(zxy[0], zxy[1], zxy[2]); err != nil {
			t.Fatalf("%s/%s/%s accepted: %v", z, x, y, err)
		}
	})
}

// FuzzQueryParams: levels, geometry modes, statuses (as the event list
// reads them), integers and booleans are accepted only as what they say,
// and refused naming their parameter.
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{"", "grid", "Grid", "none", "simplified", "full", "reported", "closed", "100", "-1", "1e3", "true",
		"T", "yes", "\x00", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if l, err := parseLevel(s); err != nil {
			checkParamError(t, err, []string{"level"}, s)
		} else if string(l) != s || (s != "" && !slices.Contains(grid.Levels, l)) {
			t.Fatalf("level %q read as %q", s, l)
		}
		if m, err := parseGeometryMode(s, data.GeometrySimplified); err != nil {
			checkParamError(t, err, []string{"geometry"}, s)
		} else if (s == "" && m != data.GeometrySimplified) || (s != "" && (string(m) != s ||
			!slices.Contains([]data.GeometryMode{data.GeometryNone, data.GeometrySimplified, data.GeometryFull}, m))) {
			t.Fatalf("geometry %q read as %q", s, m)
		}
		q := url.Values{"limit": {s}, "flag": {s}, "radius": {s}}
		if n, err := parseIntParam(q, "limit", 100, 1, 1000); err != nil {
			checkParamError(t, err, []string{"limit"}, s)
		} else if want, aerr := strconv.Atoi(s); (s == "" && n != 100) || (s != "" && (aerr != nil || n != want || n < 1 || n > 1000)) {
			t.Fatalf("limit %q read as %d", s, n)
		}
		if v, err := parseBoolParam(q, "flag"); err != nil {
			checkParamError(t, err, []string{"flag"}, s)
		} else if want, berr := strconv.ParseBool(s); s != "" && (berr != nil || v != want) {
			t.Fatalf("flag %q read as %v", s, v)
		}
		if v, err := parseFloatParam(q, "radius", 0, 50000); err != nil {
			checkParamError(t, err, []string{"radius"}, s)
		} else if !(v >= 0 && v <= 50000) {
			t.Fatalf("radius %q read as %v", s, v)
		}
	})
}

// FuzzDates: a calendar day of a path and a time of a query are accepted
// only as real dates and times of years 1–9999 (what PostgreSQL stores and
// an event code spells); an event code of a path only as ParseEventCode
// reads it.
func FuzzDates(f *testing.F) {
	for _, s := range []string{"2026-11-23", "2026-02-29", "2028-02-29", "0000-01-01", "0001-01-01", "9999-12-31", "2026-1-1",
		"2026-11-23T09:00:00+08:00", "2026-11-23T09:00:00Z", "0000-01-01T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T09:00:00+24:00",
		"44030420261123000001", "44030400000101000001", strings.Repeat("2", 300)} {
		f.Add(s)
	}
	cal, err := grid.NewCalendar(nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	cfg := &data.EventConfig{Calendar: cal}
	f.Fuzz(func(t *testing.T, s string) {
		r := mux.SetURLVars(httptest.NewRequest("GET", "/", nil), map[string]string{"day": s, "code": s})
		if day, err := dayParam(r); err != nil {
			checkParamError(t, err, []string{"day"}, s)
		} else if d, perr := time.Parse(time.DateOnly, day); perr != nil || day != s || d.Year() < 1 {
			t.Fatalf("day %q read as %q", s, day)
		}
		if at, err := timeParam(url.Values{"from": {s}}, "from", cfg); err != nil {
			checkParamError(t, err, []string{"from"}, s)
		} else if s != "" && (at == nil || at.Year() < 1 || at.Year() > 9999) {
			t.Fatalf("from=%q read as %v", s, at)
		}
		if code, err := eventCodeParam(r); err != nil {
			checkParamError(t, err, []string{"code"}, s)
		} else if _, _, _, perr := grid.ParseEventCode(code); perr != nil || code != s {
			t.Fatalf("event code %q read as %q", s, code)
		}
	})
}
