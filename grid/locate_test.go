package grid

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
)

func unit(layer string, level Level, code, name string, g orb.MultiPolygon) Unit {
	return Unit{Layer: layer, Level: level, Code: code, Name: name, Geometry: g, ParentCode: ParentCode(level, code)}
}

func box(x0, y0, x1, y1 float64) orb.MultiPolygon {
	return orb.MultiPolygon{square(x0, y0, x1, y1)}
}

// testUnits is a small city on a unit grid:
//
//	district 440306 [0,4]×[0,4], district 440307 [4,8]×[0,4]
//	street   440306001 [0,2]×[0,4], 440306002 [2,4]×[0,4], 440307001 [4,8]×[0,4]
//	community 440306001001 [0,2]×[0,2], 440306001002 [0,2]×[2,4]
//	grid 440306001001001 [0,1]×[0,2], 440306001001002 [1,2]×[0,2]
//	community 440306002001 [2,4]×[0,4] with a hole [2.5,3.5]², filled by
//	community 440306002002 (the hole's island)
//
// plus layer "police" (one grid-level unit [0,3]×[0,3]) and layer
// "emergency" (one district-level unit [0,8]×[0,4] and a street [6,8]×[0,4]).
// Units are listed highest code first, so a result that follows insertion
// order instead of the lowest-code rule shows.
func testUnits() []Unit {
	holed := orb.MultiPolygon{{square(2, 0, 4, 4)[0], square(2.5, 2.5, 3.5, 3.5)[0]}}
	return []Unit{
		unit("police", Grid, "440306001001901", "警务网格901", box(0, 0, 3, 3)),
		unit("emergency", Street, "440399002", "应急街道", box(6, 0, 8, 4)),
		unit("emergency", District, "440399", "应急片区", box(0, 0, 8, 4)),
		unit(BaseLayer, Grid, "440306001001002", "网格2", box(1, 0, 2, 2)),
		unit(BaseLayer, Grid, "440306001001001", "网格1", box(0, 0, 1, 2)),
		unit(BaseLayer, Community, "440306002002", "岛社区", box(2.5, 2.5, 3.5, 3.5)),
		unit(BaseLayer, Community, "440306002001", "环社区", holed),
		unit(BaseLayer, Community, "440306001002", "社区2", box(0, 2, 2, 4)),
		unit(BaseLayer, Community, "440306001001", "社区1", box(0, 0, 2, 2)),
		unit(BaseLayer, Street, "440307001", "街道3", box(4, 0, 8, 4)),
		unit(BaseLayer, Street, "440306002", "街道2", box(2, 0, 4, 4)),
		unit(BaseLayer, Street, "440306001", "街道1", box(0, 0, 2, 4)),
		unit(BaseLayer, District, "440307", "区2", box(4, 0, 8, 4)),
		unit(BaseLayer, District, "440306", "区1", box(0, 0, 4, 4)),
	}
}

// chain is a compact expected chain: codes, "" for nil.
type chain [4]string

func codesOf(d, s, c, g *Ref) chain {
	code := func(r *Ref) string {
		if r == nil {
			return ""
		}
		return r.Code
	}
	return chain{code(d), code(s), code(c), code(g)}
}

func TestLocate(t *testing.T) {
	noPolice := chain{}
	police := chain{"", "", "", "440306001001901"}
	emerg := chain{"440399", "", "", ""}
	cases := []struct {
		name      string
		lon, lat  float64
		base      chain
		police    chain
		emergency chain
	}{
		{"interior of grid 1", 0.5, 0.5, chain{"440306", "440306001", "440306001001", "440306001001001"}, police, emerg},
		{"interior of grid 2", 1.5, 1.5, chain{"440306", "440306001", "440306001001", "440306001001002"}, police, emerg},
		{"edge between grids 1 and 2 → lowest", 1, 0.5, chain{"440306", "440306001", "440306001001", "440306001001001"}, police, emerg},
		{"edge between communities → lowest", 0.5, 2, chain{"440306", "440306001", "440306001001", "440306001001001"}, police, emerg},
		{"vertex shared by grids and communities", 1, 2, chain{"440306", "440306001", "440306001001", "440306001001001"}, police, emerg},
		{"edge between streets → lowest", 2, 1, chain{"440306", "440306001", "440306001001", "440306001001002"}, police, emerg},
		{"community without grids", 0.5, 3.5, chain{"440306", "440306001", "440306001002", ""}, noPolice, emerg},
		{"edge between districts → lowest", 4, 1, chain{"440306", "440306002", "440306002001", ""}, noPolice, emerg},
		{"corner of two districts", 4, 4, chain{"440306", "440306002", "440306002001", ""}, noPolice, emerg},
		{"second district", 5, 1, chain{"440307", "440307001", "", ""}, noPolice, emerg},
		{"outer edge of second district (bound max)", 8, 4, chain{"440307", "440307001", "", ""}, noPolice, chain{"440399", "440399002", "", ""}},
		{"outer corner (bound min)", 0, 0, chain{"440306", "440306001", "440306001001", "440306001001001"}, police, emerg},
		{"island inside a hole", 3, 3, chain{"440306", "440306002", "440306002002", ""}, police, emerg},
		{"on the hole's edge → lowest of ring and island", 2.5, 3, chain{"440306", "440306002", "440306002001", ""}, police, emerg},
		{"ring community", 2.2, 3, chain{"440306", "440306002", "440306002001", ""}, police, emerg},
		{"police edge", 3, 1, chain{"440306", "440306002", "440306002001", ""}, police, emerg},
		{"outside everything", 10, 10, chain{}, noPolice, chain{}},
		{"west of everything", -0.000001, 1, chain{}, noPolice, chain{}},
		{"NaN longitude", math.NaN(), 1, chain{}, noPolice, chain{}},
		{"NaN latitude", 1, math.NaN(), chain{}, noPolice, chain{}},
	}
	loc := NewLocator(testUnits())
	if loc.Len() != len(testUnits()) {
		t.Fatalf("Len = %d, want %d", loc.Len(), len(testUnits()))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := loc.Locate(c.lon, c.lat)
			if !sameFloat(got.Lon, c.lon) || !sameFloat(got.Lat, c.lat) {
				t.Errorf("lon/lat = %v/%v, want %v/%v", got.Lon, got.Lat, c.lon, c.lat)
			}
			if b := codesOf(got.District, got.Street, got.Community, got.Grid); b != c.base {
				t.Errorf("base chain %q, want %q", b, c.base)
			}
			if len(got.Layers) != 2 {
				t.Errorf("layers %v, want police and emergency (and never base)", got.Layers)
			}
			if _, ok := got.Layers[BaseLayer]; ok {
				t.Error("base layer repeated under layers")
			}
			p := got.Layers["police"]
			if g := codesOf(p.District, p.Street, p.Community, p.Grid); g != c.police {
				t.Errorf("police chain %q, want %q", g, c.police)
			}
			e := got.Layers["emergency"]
			if g := codesOf(e.District, e.Street, e.Community, e.Grid); g != c.emergency {
				t.Errorf("emergency chain %q, want %q", g, c.emergency)
			}
		})
	}
}

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// The answer must not depend on the order the units were indexed in.
func TestLocateOrderIndependent(t *testing.T) {
	units := testUnits()
	want := NewLocator(units)
	rng := rand.New(rand.NewPCG(11, 12))
	pts := []orb.Point{{1, 0.5}, {1, 2}, {2, 2}, {4, 1}, {4, 4}, {2.5, 3}, {3.5, 3.5}, {0, 0}}
	for k := 0; k < 200; k++ {
		pts = append(pts, orb.Point{float64(rng.IntN(33)) / 4, float64(rng.IntN(17)) / 4})
	}
	for trial := 0; trial < 20; trial++ {
		rng.Shuffle(len(units), func(i, j int) { units[i], units[j] = units[j], units[i] })
		got := NewLocator(units)
		for _, p := range pts {
			a, b := got.Locate(p[0], p[1]), want.Locate(p[0], p[1])
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("trial %d, point %v: %s, want %s", trial, p, ja, jb)
			}
		}
	}
}

// Find on a grid of 10×10 cells: every lattice point, including the ones
// on four cells' common corner, goes to the lowest-coded cell covering it.
func TestFindLowestCodeOnLattice(t *testing.T) {
	var units []Unit
	code := func(i, j int) string { // row-major from the south-west, 001..100
		n := j*10 + i + 1
		return "440306001001" + string(rune('0'+n/100)) + string(rune('0'+n/10%10)) + string(rune('0'+n%10))
	}
	for i := 0; i < 10; i++ {
		for j := 0; j < 10; j++ {
			units = append(units, unit(BaseLayer, Grid, code(i, j), "", box(float64(i), float64(j), float64(i+1), float64(j+1))))
		}
	}
	loc := NewLocator(units)
	for x := 0; x <= 10; x++ {
		for y := 0; y <= 10; y++ {
			// lowest code covering (x, y): the lowest row, then the lowest column
			i, j := max(x-1, 0), max(y-1, 0)
			want := code(i, j)
			got := loc.Find(BaseLayer, Grid, orb.Point{float64(x), float64(y)})
			if got == nil || got.Code != want {
				t.Errorf("Find(%d, %d) = %v, want %s", x, y, got, want)
			}
		}
	}
	// centres
	for i := 0; i < 10; i++ {
		for j := 0; j < 10; j++ {
			got := loc.Find(BaseLayer, Grid, orb.Point{float64(i) + 0.5, float64(j) + 0.5})
			if got == nil || got.Code != code(i, j) {
				t.Errorf("Find(centre of %d,%d) = %v, want %s", i, j, got, code(i, j))
			}
		}
	}
}

func TestFind(t *testing.T) {
	loc := NewLocator(testUnits())
	cases := []struct {
		name  string
		layer string
		level Level
		p     orb.Point
		want  *Ref
	}{
		{"base grid", BaseLayer, Grid, orb.Point{0.5, 0.5}, &Ref{Code: "440306001001001", Name: "网格1"}},
		{"police grid", "police", Grid, orb.Point{0.5, 0.5}, &Ref{Code: "440306001001901", Name: "警务网格901"}},
		{"police has no districts", "police", District, orb.Point{0.5, 0.5}, nil},
		{"unknown layer", "water", Grid, orb.Point{0.5, 0.5}, nil},
		{"unknown level", BaseLayer, Level("city"), orb.Point{0.5, 0.5}, nil},
		{"not covered", BaseLayer, Grid, orb.Point{3, 3}, nil},
		{"in a hole, no island at street level", BaseLayer, Street, orb.Point{3, 3}, &Ref{Code: "440306002", Name: "街道2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := loc.Find(c.layer, c.level, c.p)
			if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
				t.Errorf("Find = %v, want %v", got, c.want)
			}
		})
	}
	// The returned Ref is a copy: changing it does not change the index.
	r := loc.Find(BaseLayer, Grid, orb.Point{0.5, 0.5})
	r.Name = "changed"
	if again := loc.Find(BaseLayer, Grid, orb.Point{0.5, 0.5}); again.Name != "网格1" {
		t.Errorf("Find returned a Ref aliasing the index: %v", again)
	}
}

func TestLocateJSON(t *testing.T) {
	loc := NewLocator(testUnits())
	cases := []struct {
		name     string
		locator  *Locator
		lon, lat float64
		want     string
	}{
		{
			name: "full chain and layers", locator: loc, lon: 0.5, lat: 0.5,
			want: `{"lon":0.5,"lat":0.5,` +
				`"district":{"code":"440306","name":"区1"},` +
				`"street":{"code":"440306001","name":"街道1"},` +
				`"community":{"code":"440306001001","name":"社区1"},` +
				`"grid":{"code":"440306001001001","name":"网格1"},` +
				`"layers":{` +
				`"emergency":{"district":{"code":"440399","name":"应急片区"},"street":null,"community":null,"grid":null},` +
				`"police":{"district":null,"street":null,"community":null,"grid":{"code":"440306001001901","name":"警务网格901"}}}}`,
		},
		{
			name: "nothing covers the point", locator: loc, lon: 113.93, lat: 22.55,
			want: `{"lon":113.93,"lat":22.55,"district":null,"street":null,"community":null,"grid":null,` +
				`"layers":{"emergency":{"district":null,"street":null,"community":null,"grid":null},` +
				`"police":{"district":null,"street":null,"community":null,"grid":null}}}`,
		},
		{
			name: "only the base layer: layers is an empty object", locator: NewLocator(testUnits()[3:]), lon: 5, lat: 1,
			want: `{"lon":5,"lat":1,"district":{"code":"440307","name":"区2"},"street":{"code":"440307001","name":"街道3"},"community":null,"grid":null,"layers":{}}`,
		},
		{
			name: "empty locator", locator: NewLocator(nil), lon: -1.5, lat: 0,
			want: `{"lon":-1.5,"lat":0,"district":null,"street":null,"community":null,"grid":null,"layers":{}}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.locator.Locate(c.lon, c.lat))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Errorf("JSON\n got %s\nwant %s", b, c.want)
			}
		})
	}
	// A Location built by hand with nil Layers still has "layers": {}.
	b, err := json.Marshal(Location{Lon: 1, Lat: 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"lon":1,"lat":2,"district":null,"street":null,"community":null,"grid":null,"layers":{}}`; string(b) != want {
		t.Errorf("zero Location JSON %s, want %s", b, want)
	}
	// And as a pointer (how handlers often encode it).
	lp := &Location{Lon: 1, Lat: 2}
	if b2, _ := json.Marshal(lp); string(b2) != string(b) {
		t.Errorf("*Location JSON %s, want %s", b2, b)
	}
}

// Locate on realistic coordinates: a grid cell and its neighbour sharing a
// meridian edge near Shenzhen, with points exactly on that edge.
func TestLocateRealCoordinates(t *testing.T) {
	units := []Unit{
		unit(BaseLayer, Grid, "440306001001002", "东", box(113.905, 22.55, 113.91, 22.555)),
		unit(BaseLayer, Grid, "440306001001001", "西", box(113.90, 22.55, 113.905, 22.555)),
	}
	loc := NewLocator(units)
	cases := []struct {
		lon, lat float64
		want     string
	}{
		{113.9025, 22.552, "440306001001001"},
		{113.9075, 22.552, "440306001001002"},
		{113.905, 22.552, "440306001001001"},
		{113.905, 22.55, "440306001001001"},
		{113.91, 22.555, "440306001001002"},
		{math.Nextafter(113.905, 114), 22.552, "440306001001002"},
		{113.911, 22.552, ""},
	}
	for _, c := range cases {
		got := loc.Locate(c.lon, c.lat)
		code := ""
		if got.Grid != nil {
			code = got.Grid.Code
		}
		if code != c.want {
			t.Errorf("Locate(%v, %v).Grid = %q, want %q", c.lon, c.lat, code, c.want)
		}
	}
}

// TestLocateChainFromDeepestUnit: the chain is the deepest covering unit
// and its ancestors by code, so a grid that overhangs its parents by a
// hair still answers with them, and a point in a gap under a district gets
// just the district.
func TestLocateChainFromDeepestUnit(t *testing.T) {
	units := []Unit{
		{Layer: BaseLayer, Level: District, Code: "440399", Name: "区", Geometry: orb.MultiPolygon{{{{0, 0}, {10, 0}, {10, 10}, {0, 10}, {0, 0}}}}},
		{Layer: BaseLayer, Level: Street, Code: "440399001", Name: "街道", ParentCode: "440399", Geometry: orb.MultiPolygon{{{{0, 0}, {5, 0}, {5, 10}, {0, 10}, {0, 0}}}}},
		{Layer: BaseLayer, Level: Community, Code: "440399001001", Name: "社区", ParentCode: "440399001", Geometry: orb.MultiPolygon{{{{0, 0}, {5, 0}, {5, 10}, {0, 10}, {0, 0}}}}},
		// Overhangs the community, street and district by 1e-9 to the west.
		{Layer: BaseLayer, Level: Grid, Code: "440399001001001", Name: "网格", ParentCode: "440399001001", Geometry: orb.MultiPolygon{{{{-1e-9, 0}, {5, 0}, {5, 10}, {-1e-9, 10}, {-1e-9, 0}}}}},
	}
	loc := NewLocator(units)
	got := loc.Locate(-5e-10, 5)
	if got.Grid == nil || got.Community == nil || got.Street == nil || got.District == nil || got.District.Code != "440399" {
		t.Errorf("overhang point: %+v; want the grid and all its ancestors", got)
	}
	if loc.Find(BaseLayer, District, orb.Point{-5e-10, 5}) != nil {
		t.Errorf("the district alone does not cover the overhang")
	}
	got = loc.Locate(7, 5) // in the district, under no street
	if got.District == nil || got.Street != nil || got.Community != nil || got.Grid != nil {
		t.Errorf("gap point: %+v; want the district only", got)
	}
}
