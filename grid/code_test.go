package grid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidateCode(t *testing.T) {
	cases := []struct {
		name   string
		level  Level
		code   string
		parent string
		rule   string // "" when the code is valid
		digits string
	}{
		// district: 6 digits, province 11–82, digits 5–6 01–99
		{"district ok", District, "440306", "", "", ""},
		{"district Beijing Dongcheng", District, "110101", "", "", ""},
		{"district lowest province", District, "110199", "", "", ""},
		{"district highest province (Macau)", District, "820001", "", "", ""},
		{"district province 10", District, "100101", "", RuleCodeRange, "1-2"},
		{"district province 83", District, "830101", "", RuleCodeRange, "1-2"},
		{"district province 00", District, "000101", "", RuleCodeRange, "1-2"},
		{"district province 99", District, "990101", "", RuleCodeRange, "1-2"},
		{"district is a city code (digits 5-6 = 00)", District, "440300", "", RuleCodeRange, "5-6"},
		{"district province checked before county", District, "100100", "", RuleCodeRange, "1-2"},
		{"district 5 digits", District, "44030", "", RuleCodeLength, ""},
		{"district 7 digits", District, "4403061", "", RuleCodeLength, ""},
		{"district 9 digits", District, "440306001", "", RuleCodeLength, ""},
		{"district empty", District, "", "", RuleCodeDigits, ""},
		{"district letter O", District, "44O306", "", RuleCodeDigits, "3"},
		{"district leading space", District, " 440306", "", RuleCodeDigits, "1"},
		{"district trailing space", District, "440306 ", "", RuleCodeDigits, "7"},
		{"district minus sign", District, "-44030", "", RuleCodeDigits, "1"},
		{"district full-width digit", District, "44030６", "", RuleCodeDigits, "6"},
		{"district decimal point", District, "4403.6", "", RuleCodeDigits, "5"},
		{"district exponent", District, "4.4e5", "", RuleCodeDigits, "2"},
		{"district parent given", District, "440306", "440300", RuleCodePrefix, ""},

		// street: 9 digits, 7–9 in 001–599
		{"street ok", Street, "440306001", "", "", ""},
		{"street 099 (last 街道)", Street, "440306099", "", "", ""},
		{"street 100 (镇)", Street, "440306100", "", "", ""},
		{"street 599", Street, "440306599", "", "", ""},
		{"street 000", Street, "440306000", "", RuleCodeRange, "7-9"},
		{"street 600", Street, "440306600", "", RuleCodeRange, "7-9"},
		{"street 999", Street, "440306999", "", RuleCodeRange, "7-9"},
		{"street 8 digits", Street, "44030600", "", RuleCodeLength, ""},
		{"street 12 digits", Street, "440306001001", "", RuleCodeLength, ""},
		{"street letter", Street, "4403060a1", "", RuleCodeDigits, "8"},
		{"street with parent", Street, "440306001", "440306", "", ""},
		{"street wrong parent", Street, "440306001", "440307", RuleCodePrefix, "1-6"},
		{"street parent too short", Street, "440306001", "4403", RuleCodePrefix, "1-6"},
		{"street parent too long", Street, "440306001", "4403060", RuleCodePrefix, "1-6"},
		{"street range checked before prefix", Street, "440306000", "440307", RuleCodeRange, "7-9"},
		{"street digits checked before length", Street, "4403x6", "", RuleCodeDigits, "5"},

		// community: 12 digits, 10–12 in 001–599
		{"community ok", Community, "440306001001", "", "", ""},
		{"community 村委会", Community, "440306001200", "", "", ""},
		{"community 498 virtual", Community, "440306001498", "", "", ""},
		{"community 599", Community, "440306001599", "", "", ""},
		{"community 000", Community, "440306001000", "", RuleCodeRange, "10-12"},
		{"community 600", Community, "440306001600", "", RuleCodeRange, "10-12"},
		{"community 11 digits", Community, "44030600100", "", RuleCodeLength, ""},
		{"community with parent", Community, "440306001001", "440306001", "", ""},
		{"community wrong parent", Community, "440306001001", "440306002", RuleCodePrefix, "1-9"},
		{"community district as parent", Community, "440306001001", "440306", RuleCodePrefix, "1-9"},

		// grid: 15 digits, 13–15 in 001–999
		{"grid ok", Grid, "440306001001001", "", "", ""},
		{"grid 999", Grid, "440306001001999", "", "", ""},
		{"grid 600 (above the community range)", Grid, "440306001001600", "", "", ""},
		{"grid 000", Grid, "440306001001000", "", RuleCodeRange, "13-15"},
		{"grid 14 digits is not canonical", Grid, "44030600100101", "", RuleCodeLength, ""},
		{"grid 16 digits", Grid, "4403060010010011", "", RuleCodeLength, ""},
		{"grid with parent", Grid, "440306001001001", "440306001001", "", ""},
		{"grid wrong parent", Grid, "440306001001001", "440306001002", RuleCodePrefix, "1-12"},
		{"grid street as parent", Grid, "440306001001001", "440306001", RuleCodePrefix, "1-12"},

		// levels
		{"unknown level", Level("city"), "440300", "", RuleCodeLength, ""},
		{"empty level", Level(""), "440306", "", RuleCodeLength, ""},
		{"level is case sensitive", Level("District"), "440306", "", RuleCodeLength, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateCode(c.level, c.code, c.parent)
			if c.rule == "" {
				if err != nil {
					t.Fatalf("ValidateCode(%s, %q, %q) = %v, want nil", c.level, c.code, c.parent, err)
				}
				return
			}
			var ce *CodeError
			if !errors.As(err, &ce) {
				t.Fatalf("ValidateCode(%s, %q, %q) = %v (%T), want *CodeError", c.level, c.code, c.parent, err, err)
			}
			if ce.Rule != c.rule || ce.Digits != c.digits {
				t.Errorf("ValidateCode(%s, %q, %q): Rule %q, Digits %q; want Rule %q, Digits %q (%v)",
					c.level, c.code, c.parent, ce.Rule, ce.Digits, c.rule, c.digits, err)
			}
			if ce.Code != c.code {
				t.Errorf("CodeError.Code = %q, want %q", ce.Code, c.code)
			}
			if ce.Msg == "" {
				t.Error("CodeError.Msg is empty")
			}
		})
	}
}

func TestCodeErrorMessages(t *testing.T) {
	cases := []struct {
		level        Level
		code, parent string
		want         []string
	}{
		{District, "", "", []string{`code "": code_digits: code is empty`}},
		{District, "44O306", "", []string{`code "44O306": code_digits (digits 3): 'O' is not a digit`}},
		{Street, "4403060", "", []string{`code_length`, "a street code has 9 digits, this one has 7"}},
		{Level("city"), "440300", "", []string{`unknown level "city"`}},
		{District, "100101", "", []string{"(digits 1-2)", "province code 10 is outside 11–82"}},
		{District, "440300", "", []string{"(digits 5-6)", "county-level sequence 00 is outside 01–99"}},
		{Street, "440306600", "", []string{"(digits 7-9)", "township code 600 is outside 001–599"}},
		{Community, "440306001000", "", []string{"(digits 10-12)", "community code 000 is outside 001–599"}},
		{Grid, "440306001001000", "", []string{"(digits 13-15)", "grid sequence 000 is outside 001–999"}},
		{Street, "440306001", "440307", []string{"code_prefix (digits 1-6)", `prefix 440306 must equal the parent district code "440307"`}},
		{Grid, "440306001001001", "440306001002", []string{`prefix 440306001001 must equal the parent community code "440306001002"`}},
		{District, "440306", "44", []string{"code_prefix: a district has no parent unit"}},
	}
	for _, c := range cases {
		err := ValidateCode(c.level, c.code, c.parent)
		if err == nil {
			t.Errorf("ValidateCode(%s, %q, %q) = nil", c.level, c.code, c.parent)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ValidateCode(%s, %q, %q) = %q, want it to contain %q", c.level, c.code, c.parent, err, w)
			}
		}
	}
}

func TestCodeErrorJSON(t *testing.T) {
	err := ValidateCode(Street, "440306600", "")
	b, jerr := json.Marshal(err)
	if jerr != nil {
		t.Fatal(jerr)
	}
	var m map[string]string
	if jerr := json.Unmarshal(b, &m); jerr != nil {
		t.Fatal(jerr)
	}
	if m["code"] != "440306600" || m["rule"] != RuleCodeRange || m["digits"] != "7-9" || m["message"] == "" {
		t.Errorf("JSON = %s", b)
	}
	b, _ = json.Marshal(ValidateCode(Street, "44030", ""))
	if strings.Contains(string(b), `"digits"`) {
		t.Errorf("digits should be omitted when empty: %s", b)
	}
}

func TestNormalizeCode(t *testing.T) {
	cases := []struct {
		level Level
		in    string
		want  string
	}{
		{Grid, "44030600100101", "440306001001001"},
		{Grid, "44030600100199", "440306001001099"},
		{Grid, "44030600100100", "440306001001000"}, // widened, then rejected by ValidateCode
		{Grid, "440306001001001", "440306001001001"},
		{Grid, "4403060010010", "4403060010010"},
		{Grid, "4403060010010a", "4403060010010a"},
		{Grid, "44030600100 01", "44030600100 01"},
		{Grid, "", ""},
		{Community, "44030600100101", "44030600100101"},
		{Street, "44030600100101", "44030600100101"},
		{District, "440306", "440306"},
		{Street, "440306001", "440306001"},
		{Level("city"), "44030600100101", "44030600100101"},
	}
	for _, c := range cases {
		if got := NormalizeCode(c.level, c.in); got != c.want {
			t.Errorf("NormalizeCode(%s, %q) = %q, want %q", c.level, c.in, got, c.want)
		}
	}
	// A widened 14-digit code is a valid 15-digit code with the same parent.
	wide := NormalizeCode(Grid, "44030600100107")
	if err := ValidateCode(Grid, wide, "440306001001"); err != nil {
		t.Errorf("ValidateCode(widened %q) = %v", wide, err)
	}
	if err := ValidateCode(Grid, NormalizeCode(Grid, "44030600100100"), ""); err == nil {
		t.Error("sequence 00 widened to 000 must still be rejected")
	}
}

func TestParentCode(t *testing.T) {
	cases := []struct {
		level Level
		code  string
		want  string
	}{
		{District, "440306", ""},
		{Street, "440306001", "440306"},
		{Community, "440306001001", "440306001"},
		{Grid, "440306001001001", "440306001001"},
		{Grid, "44030600100101", "440306001001"}, // 14-digit form has the same parent
		{Street, "4403", ""},
		{Street, "", ""},
		{Community, "440306001", "440306001"},
		{Level("city"), "440306001", ""},
	}
	for _, c := range cases {
		if got := ParentCode(c.level, c.code); got != c.want {
			t.Errorf("ParentCode(%s, %q) = %q, want %q", c.level, c.code, got, c.want)
		}
	}
	// The parent read from a valid code is a valid code of the level above.
	for _, c := range []struct {
		l    Level
		code string
	}{{Street, "440306001"}, {Community, "440306001001"}, {Grid, "440306001001001"}} {
		p := ParentCode(c.l, c.code)
		if err := ValidateCode(c.l.Parent(), p, ""); err != nil {
			t.Errorf("ParentCode(%s, %s) = %s, which is invalid: %v", c.l, c.code, p, err)
		}
		if err := ValidateCode(c.l, c.code, p); err != nil {
			t.Errorf("ValidateCode(%s, %s, its own parent %s) = %v", c.l, c.code, p, err)
		}
	}
}

func TestLevel(t *testing.T) {
	cases := []struct {
		l              Level
		depth, codeLen int
		parent, child  Level
		chinese        string
		parseErr       bool
		parseName      string
	}{
		{District, 0, 6, "", Street, "区", false, "district"},
		{Street, 1, 9, District, Community, "街道", false, "street"},
		{Community, 2, 12, Street, Grid, "社区", false, "community"},
		{Grid, 3, 15, Community, "", "网格", false, "grid"},
		{Level("city"), -1, 0, "", "", "", true, "city"},
	}
	for _, c := range cases {
		if c.l.Depth() != c.depth || c.l.CodeLen() != c.codeLen || c.l.Parent() != c.parent || c.l.Child() != c.child || c.l.Chinese() != c.chinese {
			t.Errorf("%q: depth %d len %d parent %q child %q chinese %q", c.l, c.l.Depth(), c.l.CodeLen(), c.l.Parent(), c.l.Child(), c.l.Chinese())
		}
		got, err := ParseLevel(c.parseName)
		if (err != nil) != c.parseErr || (!c.parseErr && got != c.l) {
			t.Errorf("ParseLevel(%q) = %q, %v", c.parseName, got, err)
		}
	}
	if _, err := ParseLevel(""); err == nil || !strings.Contains(err.Error(), "district, street, community, grid") {
		t.Errorf("ParseLevel(\"\") = %v, want the list of levels", err)
	}
}
