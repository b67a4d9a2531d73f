package grid

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

func square(x0, y0, x1, y1 float64) orb.Polygon {
	return orb.Polygon{{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}}
}

var (
	sqPoly = square(113.9, 22.5, 114.0, 22.6)
	sqMP   = orb.MultiPolygon{sqPoly}
)

// feat makes a feature with the given index, properties and geometry.
func feat(i int, props map[string]any, g orb.Geometry) geo.Feature {
	return geo.Feature{Index: i, Properties: props, Geometry: g}
}

func props(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// TestDraftsFromFeaturesOne runs one feature at a time: either it becomes
// a draft, or it is reported with exactly one violation.
func TestDraftsFromFeaturesOne(t *testing.T) {
	cases := []struct {
		name         string
		f            geo.Feature
		defaultLayer string
		// want a draft:
		want *Unit
		// or a violation:
		rule    string
		codes   []string
		message string // part of the message
	}{
		{
			name: "district",
			f:    feat(0, props("code", "440306", "name", "宝安区", "level", "district"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306", Name: "宝安区", Level: District, Geometry: sqMP},
		},
		{
			name: "street, parent read from the code",
			f:    feat(0, props("code", "440306001", "name", "新安街道", "level", "street"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306001", Name: "新安街道", Level: Street, ParentCode: "440306", Geometry: sqMP},
		},
		{
			name: "community with matching parent_code",
			f:    feat(0, props("code", "440306001001", "name", "上川社区", "level", "community", "parent_code", "440306001"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306001001", Name: "上川社区", Level: Community, ParentCode: "440306001", Geometry: sqMP},
		},
		{
			name: "grid, complete, multipolygon",
			f:    feat(0, props("code", "440306001001001", "name", "网格1", "level", "grid", "complete", true), orb.MultiPolygon{sqPoly, square(114.1, 22.5, 114.2, 22.6)}),
			want: &Unit{Layer: BaseLayer, Code: "440306001001001", Name: "网格1", Level: Grid, ParentCode: "440306001001", Complete: true,
				Geometry: orb.MultiPolygon{sqPoly, square(114.1, 22.5, 114.2, 22.6)}},
		},
		{
			name: "14-digit grid code is widened",
			f:    feat(0, props("code", "44030600100107", "name", "g", "level", "grid"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306001001007", Name: "g", Level: Grid, ParentCode: "440306001001", Geometry: sqMP},
		},
		{
			name: "14-digit grid code with parent_code",
			f:    feat(0, props("code", "44030600100107", "name", "g", "level", "grid", "parent_code", "440306001001"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306001001007", Name: "g", Level: Grid, ParentCode: "440306001001", Geometry: sqMP},
		},
		{
			name: "code as JSON number",
			f:    feat(0, props("code", float64(440306001), "name", "s", "level", "street"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306001", Name: "s", Level: Street, ParentCode: "440306", Geometry: sqMP},
		},
		{
			name: "15-digit grid code as JSON number",
			f:    feat(0, props("code", float64(440306001001999), "name", "g", "level", "grid", "parent_code", float64(440306001001)), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306001001999", Name: "g", Level: Grid, ParentCode: "440306001001", Geometry: sqMP},
		},
		{
			name: "14-digit grid code as JSON number",
			f:    feat(0, props("code", float64(44030600100107), "name", "g", "level", "grid"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306001001007", Name: "g", Level: Grid, ParentCode: "440306001001", Geometry: sqMP},
		},
		{
			name: "code and name trimmed",
			f:    feat(0, props("code", " 440306 ", "name", "  宝安区\t", "level", "district"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306", Name: "宝安区", Level: District, Geometry: sqMP},
		},
		{
			name: "district parent_code = city prefix 4403 is ignored",
			f:    feat(0, props("code", "440306", "name", "宝安区", "level", "district", "parent_code", "4403"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306", Name: "宝安区", Level: District, Geometry: sqMP},
		},
		{
			name: "district parent_code = province prefix 44 is ignored",
			f:    feat(0, props("code", "440306", "name", "宝安区", "level", "district", "parent_code", "44"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306", Name: "宝安区", Level: District, Geometry: sqMP},
		},
		{
			name: "district parent_code = city prefix as a number",
			f:    feat(0, props("code", float64(440306), "name", "宝安区", "level", "district", "parent_code", float64(4403)), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306", Name: "宝安区", Level: District, Geometry: sqMP},
		},
		{
			name: "district parent_code of another city",
			f:    feat(0, props("code", "440306", "name", "宝安区", "level", "district", "parent_code", "4401"), sqPoly),
			rule: RuleBadCode, codes: []string{"440306"}, message: "a district has no parent unit",
		},
		{
			name:         "default layer",
			f:            feat(0, props("code", "440306", "name", "d", "level", "district"), sqPoly),
			defaultLayer: "police",
			want:         &Unit{Layer: "police", Code: "440306", Name: "d", Level: District, Geometry: sqMP},
		},
		{
			name:         "layer property beats default",
			f:            feat(0, props("code", "440306", "name", "d", "level", "district", "layer", "fire_2"), sqPoly),
			defaultLayer: "police",
			want:         &Unit{Layer: "fire_2", Code: "440306", Name: "d", Level: District, Geometry: sqMP},
		},
		{
			name: "complete that is not a bool is false",
			f:    feat(0, props("code", "440306", "name", "d", "level", "district", "complete", "yes"), sqPoly),
			want: &Unit{Layer: BaseLayer, Code: "440306", Name: "d", Level: District, Geometry: sqMP},
		},
		{
			name: "repeated vertices dropped",
			f: feat(0, props("code", "440306", "name", "d", "level", "district"),
				orb.Polygon{{{113.9, 22.5}, {113.9, 22.5}, {114, 22.5}, {114, 22.6}, {113.9, 22.6}, {113.9, 22.6}, {113.9, 22.5}}}),
			want: &Unit{Layer: BaseLayer, Code: "440306", Name: "d", Level: District, Geometry: sqMP},
		},

		// level
		{
			name: "level missing", f: feat(3, props("code", "440306", "name", "d"), sqPoly),
			rule: RuleBadLevel, codes: []string{"440306"}, message: `unknown level ""`,
		},
		{
			name: "level unknown", f: feat(3, props("code", "440306", "name", "d", "level", "city"), sqPoly),
			rule: RuleBadLevel, codes: []string{"440306"}, message: `unknown level "city": use one of district, street, community, grid`,
		},
		{
			name: "level in Chinese", f: feat(3, props("code", "440306", "name", "d", "level", "区"), sqPoly),
			rule: RuleBadLevel, codes: []string{"440306"}, message: "unknown level",
		},
		{
			name: "level as a number", f: feat(3, props("code", "440306", "name", "d", "level", float64(1)), sqPoly),
			rule: RuleBadLevel, codes: []string{"440306"}, message: `unknown level "1"`,
		},

		// code
		{
			name: "code missing", f: feat(4, props("name", "d", "level", "district"), sqPoly),
			rule: RuleBadCode, codes: []string{}, message: `property "code" is missing`,
		},
		{
			name: "code blank", f: feat(4, props("code", "  ", "name", "d", "level", "district"), sqPoly),
			rule: RuleBadCode, codes: []string{}, message: `property "code" is missing`,
		},
		{
			name: "code too short", f: feat(4, props("code", "44030", "name", "d", "level", "district"), sqPoly),
			rule: RuleBadCode, codes: []string{"44030"}, message: "code_length",
		},
		{
			name: "code out of range", f: feat(4, props("code", "440306600", "name", "s", "level", "street"), sqPoly),
			rule: RuleBadCode, codes: []string{"440306600"}, message: "code_range (digits 7-9)",
		},
		{
			name: "code not digits", f: feat(4, props("code", "44030A", "name", "d", "level", "district"), sqPoly),
			rule: RuleBadCode, codes: []string{"44030A"}, message: "code_digits (digits 6)",
		},
		{
			name: "code does not match parent_code", f: feat(4, props("code", "440306001", "name", "s", "level", "street", "parent_code", "440307"), sqPoly),
			rule: RuleBadCode, codes: []string{"440306001"}, message: "code_prefix",
		},
		{
			name: "code at the wrong level", f: feat(4, props("code", "440306001", "name", "s", "level", "district"), sqPoly),
			rule: RuleBadCode, codes: []string{"440306001"}, message: "a district code has 6 digits",
		},
		{
			name: "code as a bool", f: feat(4, props("code", true, "name", "s", "level", "district"), sqPoly),
			rule: RuleBadCode, codes: []string{"true"}, message: "code_digits",
		},
		{
			name: "non-integer JSON number is not a code", f: feat(4, props("code", 440306.7, "name", "d", "level", "district"), sqPoly),
			rule: RuleBadCode, codes: []string{"440306.7"}, message: "code_digits",
		},
		{
			name: "name missing", f: feat(4, props("code", "440306", "level", "district"), sqPoly),
			rule: RuleMissingName, codes: []string{"440306"}, message: `property "name" is missing`,
		},

		// layer
		{
			name: "layer upper case", f: feat(5, props("code", "440306", "name", "d", "level", "district", "layer", "Police"), sqPoly),
			rule: RuleBadLayer, codes: []string{"440306"}, message: `layer "Police"`,
		},
		{
			name: "layer starting with a digit", f: feat(5, props("code", "440306", "name", "d", "level", "district", "layer", "1st"), sqPoly),
			rule: RuleBadLayer, codes: []string{"440306"}, message: `layer "1st"`,
		},
		{
			name: "layer too long", f: feat(5, props("code", "440306", "name", "d", "level", "district", "layer", strings.Repeat("a", 33)), sqPoly),
			rule: RuleBadLayer, codes: []string{"440306"}, message: "at most 32",
		},
		{
			name: "layer with a dash", f: feat(5, props("code", "440306", "name", "d", "level", "district", "layer", "fire-dept"), sqPoly),
			rule: RuleBadLayer, codes: []string{"440306"}, message: `"fire-dept"`,
		},
		{
			name: "bad default layer", f: feat(5, props("code", "440306", "name", "d", "level", "district"), sqPoly), defaultLayer: "Bad Layer",
			rule: RuleBadLayer, codes: []string{"440306"}, message: `"Bad Layer"`,
		},

		// geometry
		{
			name: "GeoJSON error from decoding",
			f:    geo.Feature{Index: 6, Properties: props("code", "440306", "name", "d", "level", "district"), Err: errors.New("features[6]: geometry is missing")},
			rule: RuleInvalidGeoJSON, codes: []string{"440306"}, message: "features[6]: geometry is missing",
		},
		{
			name: "GeoJSON error without a code",
			f:    geo.Feature{Index: 6, Properties: map[string]any{}, Err: errors.New(`features[6]: type is "Fature", want "Feature"`)},
			rule: RuleInvalidGeoJSON, codes: []string{}, message: `type is "Fature"`,
		},
		{
			name: "point geometry", f: feat(6, props("code", "440306", "name", "d", "level", "district"), orb.Point{114, 22.5}),
			rule: RuleInvalidGeoJSON, codes: []string{"440306"}, message: "geometry type Point: a unit must be a Polygon or MultiPolygon",
		},
		{
			name: "linestring geometry", f: feat(6, props("code", "440306", "name", "d", "level", "district"), orb.LineString{{0, 0}, {1, 1}}),
			rule: RuleInvalidGeoJSON, codes: []string{"440306"}, message: "geometry type LineString",
		},
		{
			name: "no geometry", f: feat(6, props("code", "440306", "name", "d", "level", "district"), nil),
			rule: RuleInvalidGeoJSON, codes: []string{"440306"}, message: "geometry is missing",
		},
		{
			name: "open ring", f: feat(6, props("code", "440306", "name", "d", "level", "district"), orb.Polygon{{{0, 0}, {1, 0}, {1, 1}}}),
			rule: RuleInvalidGeoJSON, codes: []string{"440306"}, message: "ring is not closed",
		},
		{
			name: "ring of two points", f: feat(6, props("code", "440306", "name", "d", "level", "district"), orb.Polygon{{{0, 0}, {1, 0}, {0, 0}}}),
			rule: RuleInvalidGeoJSON, codes: []string{"440306"}, message: "at least 3 are needed",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			drafts, bad := DraftsFromFeatures([]geo.Feature{c.f}, c.defaultLayer)
			if c.want != nil {
				if len(bad) != 0 {
					t.Fatalf("violations %+v, want none", bad)
				}
				if len(drafts) != 1 {
					t.Fatalf("%d drafts, want 1", len(drafts))
				}
				if drafts[0].Feature != c.f.Index {
					t.Errorf("Draft.Feature = %d, want %d", drafts[0].Feature, c.f.Index)
				}
				if !reflect.DeepEqual(drafts[0].Unit, *c.want) {
					t.Errorf("unit\n got %+v\nwant %+v", drafts[0].Unit, *c.want)
				}
				return
			}
			if len(drafts) != 0 {
				t.Errorf("drafts %+v, want none", drafts)
			}
			if len(bad) != 1 {
				t.Fatalf("violations %+v, want exactly one", bad)
			}
			v := bad[0]
			if v.Rule != c.rule {
				t.Errorf("Rule = %q, want %q (%s)", v.Rule, c.rule, v.Message)
			}
			if v.Severity != SeverityError {
				t.Errorf("Severity = %q, want %q", v.Severity, SeverityError)
			}
			if v.Codes == nil || !reflect.DeepEqual(v.Codes, c.codes) {
				t.Errorf("Codes = %#v, want %#v", v.Codes, c.codes)
			}
			if v.Feature == nil || *v.Feature != c.f.Index {
				t.Errorf("Feature = %v, want %d", v.Feature, c.f.Index)
			}
			if !strings.Contains(v.Message, c.message) {
				t.Errorf("Message = %q, want it to contain %q", v.Message, c.message)
			}
			if !strings.HasPrefix(v.Message, "features[") {
				t.Errorf("Message = %q does not name the feature", v.Message)
			}
		})
	}
}

func TestDraftsFromFeaturesDuplicates(t *testing.T) {
	fs := []geo.Feature{
		feat(0, props("code", "440306001001001", "name", "a", "level", "grid"), sqPoly),
		feat(1, props("code", "440306001001002", "name", "b", "level", "grid"), sqPoly),
		feat(2, props("code", "440306001001001", "name", "again", "level", "grid"), sqPoly),
		feat(3, props("code", "44030600100102", "name", "14-digit twin of b", "level", "grid"), sqPoly),
		feat(4, props("code", "440306001001001", "name", "other layer", "level", "grid", "layer", "police"), sqPoly),
		feat(5, props("code", float64(440306001001001), "name", "number twin", "level", "grid"), sqPoly),
		feat(6, props("code", "440306001001003", "name", "bad geometry", "level", "grid"), orb.Point{1, 1}),
		feat(7, props("code", "440306001001003", "name", "after bad geometry", "level", "grid"), sqPoly),
	}
	drafts, bad := DraftsFromFeatures(fs, "")
	var gotDrafts []string
	for _, d := range drafts {
		gotDrafts = append(gotDrafts, d.Layer+"/"+d.Code+"@"+itoa(d.Feature))
	}
	wantDrafts := []string{"base/440306001001001@0", "base/440306001001002@1", "police/440306001001001@4"}
	if !reflect.DeepEqual(gotDrafts, wantDrafts) {
		t.Errorf("drafts %v, want %v", gotDrafts, wantDrafts)
	}
	type vio struct {
		rule, code string
		feature    int
		msg        string
	}
	want := []vio{
		{RuleDuplicateCode, "440306001001001", 2, "code 440306001001001 appears again (first at features[0])"},
		{RuleDuplicateCode, "440306001001002", 3, "(first at features[1])"},
		{RuleDuplicateCode, "440306001001001", 5, "(first at features[0])"},
		{RuleInvalidGeoJSON, "440306001001003", 6, "geometry type Point"},
		{RuleDuplicateCode, "440306001001003", 7, "(first at features[6])"},
	}
	if len(bad) != len(want) {
		t.Fatalf("violations %+v, want %d", bad, len(want))
	}
	for i, w := range want {
		v := bad[i]
		if v.Rule != w.rule || len(v.Codes) != 1 || v.Codes[0] != w.code || v.Feature == nil || *v.Feature != w.feature || !strings.Contains(v.Message, w.msg) {
			t.Errorf("violation %d = {%s %v %v %q}, want %+v", i, v.Rule, v.Codes, derefInt(v.Feature), v.Message, w)
		}
	}
}

func derefInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// Every problem is reported at once, each naming its own feature, and the
// good features still become drafts.
func TestDraftsFromFeaturesCollectsAll(t *testing.T) {
	doc := `{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"code":"440306","name":"宝安区","level":"district","parent_code":"4403"},
  "geometry":{"type":"Polygon","coordinates":[[[113.7,22.5],[114,22.5],[114,22.9],[113.7,22.5]]]}},
 {"type":"Feature","properties":{"code":440306001,"name":"新安街道","level":"street"},
  "geometry":{"type":"MultiPolygon","coordinates":[[[[113.8,22.5],[113.9,22.5],[113.9,22.6],[113.8,22.5]]]]}},
 {"type":"Feature","properties":{"code":"440306001001","name":"上川社区"},
  "geometry":{"type":"Polygon","coordinates":[[[113.8,22.5],[113.85,22.5],[113.85,22.55],[113.8,22.5]]]}},
 {"type":"Feature","properties":{"code":"440306001001001","name":"g","level":"grid"},
  "geometry":{"type":"Polygon","coordinates":[[[113.8,22.5],[113.81,22.5],[113.81,95],[113.8,22.5]]]}},
 {"type":"Feature","properties":{"code":"440306001001002","name":"g","level":"grid"},
  "geometry":{"type":"Point","coordinates":[113.8,22.5]}},
 {"type":"Feature","properties":{"code":"440306001001003","name":"g","level":"grid","layer":"Police"},
  "geometry":{"type":"Polygon","coordinates":[[[113.8,22.5],[113.81,22.5],[113.81,22.51],[113.8,22.5]]]}},
 {"type":"Feature","properties":{"code":"440306","name":"again","level":"district"},
  "geometry":{"type":"Polygon","coordinates":[[[113.7,22.5],[114,22.5],[114,22.9],[113.7,22.5]]]}},
 {"type":"Feature","properties":{"code":"440306001001004","name":"g","level":"grid"}}
]}`
	fs, err := geo.DecodeFeatureCollection(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	drafts, bad := DraftsFromFeatures(fs, "")
	if len(drafts) != 2 || drafts[0].Code != "440306" || drafts[1].Code != "440306001" {
		t.Fatalf("drafts %+v, want 440306 and 440306001", drafts)
	}
	if drafts[0].ParentCode != "" || drafts[1].ParentCode != "440306" || drafts[1].Feature != 1 {
		t.Errorf("drafts %+v", drafts)
	}
	wantGeom := orb.MultiPolygon{{{{113.7, 22.5}, {114, 22.5}, {114, 22.9}, {113.7, 22.5}}}}
	if !reflect.DeepEqual(drafts[0].Geometry, wantGeom) {
		t.Errorf("district geometry %v, want %v", drafts[0].Geometry, wantGeom)
	}
	want := []struct {
		feature int
		rule    string
		msg     string
	}{
		{2, RuleBadLevel, "unknown level"},
		{3, RuleInvalidGeoJSON, "latitude out of range"},
		{4, RuleInvalidGeoJSON, "geometry type Point"},
		{5, RuleBadLayer, `"Police"`},
		{6, RuleDuplicateCode, "first at features[0]"},
		{7, RuleInvalidGeoJSON, "geometry is missing"},
	}
	if len(bad) != len(want) {
		t.Fatalf("%d violations %+v, want %d", len(bad), bad, len(want))
	}
	for i, w := range want {
		v := bad[i]
		if *v.Feature != w.feature || v.Rule != w.rule || !strings.Contains(v.Message, w.msg) {
			t.Errorf("violation %d = {feature %d %s %q}, want %+v", i, *v.Feature, v.Rule, v.Message, w)
		}
		if !strings.HasPrefix(v.Message, "features["+itoa(w.feature)+"]") {
			t.Errorf("violation %d message %q does not start with its feature", i, v.Message)
		}
	}
	// Violations are JSON for the editor: codes always an array.
	b, err := json.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"codes":null`) {
		t.Errorf("codes must be [] rather than null: %s", b)
	}
}

func TestDraftsFromFeaturesEmpty(t *testing.T) {
	drafts, bad := DraftsFromFeatures(nil, "")
	if len(drafts) != 0 || len(bad) != 0 {
		t.Errorf("got %v, %v", drafts, bad)
	}
}
