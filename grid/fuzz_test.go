package grid

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gridmap/geo"
	"gridmap/geo/geotest"
)

// Fuzz targets for the parsers of outside input in this package: unit,
// object and event codes, names of levels, statuses and sources, working
// periods, calendar dates, and the drafts of a units import. `go test`
// runs each on its seeds (below and under testdata/fuzz); `make fuzz`
// explores further.

func levelOf(b uint8) Level {
	if int(b) < len(Levels) {
		return Levels[b]
	}
	return Level(strconv.Itoa(int(b))) // an unknown level
}

// FuzzValidateCode: what ValidateCode accepts has its level's length,
// digits only, each segment in range and its parent's code as prefix; the
// derived parent code is itself valid; refusals are *CodeError naming
// digits inside the code.
func FuzzValidateCode(f *testing.F) {
	for _, s := range []struct {
		level        uint8
		code, parent string
	}{
		{0, "440304", ""}, {0, "440300", ""}, {0, "1", ""}, {0, "", ""}, {0, "44030a", ""}, {0, "440304", "4403"},
		{1, "440304001", "440304"}, {1, "440304600", ""}, {1, "440304001", "440305"},
		{2, "440304001001", ""}, {2, "440304001498", "440304001"},
		{3, "440304001001001", "440304001001"}, {3, "44030400100101", ""}, {3, "440304001001000", ""},
		{9, "440304", ""}, {3, "٤٤٠٣٠٤٠٠١٠٠١٠٠١", ""}, {0, "\xff\xfe", ""}, {2, strings.Repeat("9", 300), strings.Repeat("x", 300)},
	} {
		f.Add(s.level, s.code, s.parent)
	}
	f.Fuzz(func(t *testing.T, lb uint8, code, parent string) {
		level := levelOf(lb % 6)
		err := ValidateCode(level, code, parent)
		if err != nil {
			var ce *CodeError
			if !errors.As(err, &ce) {
				t.Fatalf("%T %v is not a *CodeError", err, err)
			}
			switch ce.Rule {
			case RuleCodeDigits, RuleCodeLength, RuleCodeRange, RuleCodePrefix:
			default:
				t.Fatalf("unknown rule %q", ce.Rule)
			}
			if ce.Digits != "" {
				from, to, _ := strings.Cut(ce.Digits, "-")
				a, err1 := strconv.Atoi(from)
				b := a
				if to != "" {
					b, _ = strconv.Atoi(to)
				}
				if err1 != nil || a < 1 || b < a || b > len(code) {
					t.Fatalf("digits %q of a code of %d bytes", ce.Digits, len(code))
				}
			}
			geotest.CheckNoEcho(t, err.Error(), code, parent)
			return
		}
		if len(code) != level.CodeLen() || !digitsOnly.MatchString(code) {
			t.Fatalf("accepted %s code %q", level, code)
		}
		if p, _ := strconv.Atoi(code[:2]); p < 11 || p > 82 {
			t.Fatalf("accepted province %s", code[:2])
		}
		if parent != "" && !strings.HasPrefix(code, parent) {
			t.Fatalf("accepted %q under parent %q", code, parent)
		}
		if pl := level.Parent(); pl != "" {
			pc := ParentCode(level, code)
			if len(pc) != pl.CodeLen() {
				t.Fatalf("parent code %q of %q", pc, code)
			}
			if err := ValidateCode(pl, pc, ""); err != nil {
				t.Fatalf("%s %s accepted, its parent %s is not: %v", level, code, pc, err)
			}
			if err := ValidateCode(level, code, pc); err != nil {
				t.Fatalf("%s %s refused under its own parent %s: %v", level, code, pc, err)
			}
		} else if ParentCode(level, code) != "" {
			t.Fatalf("a district has parent %q", ParentCode(level, code))
		}
		if n := NormalizeCode(level, code); n != code {
			t.Fatalf("a canonical code %q normalises to %q", code, n)
		}
	})
}

// FuzzNormalizeCode: normalising is idempotent, and widens exactly the
// 14-digit grid codes, by one 0 before the sequence.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"44030400100101", "440304001001001", "4403040010010a", "", "١٢٣٤٥٦٧٨٩٠١٢٣٤"} {
		f.Add(uint8(3), s)
		f.Add(uint8(2), s)
	}
	f.Fuzz(func(t *testing.T, lb uint8, code string) {
		level := levelOf(lb % 6)
		n := NormalizeCode(level, code)
		if NormalizeCode(level, n) != n {
			t.Fatalf("%q → %q → %q", code, n, NormalizeCode(level, n))
		}
		if n == code {
			return
		}
		if level != Grid || len(code) != 14 || n != code[:12]+"0"+code[12:] || !digitsOnly.MatchString(code) {
			t.Fatalf("%s %q normalised to %q", level, code, n)
		}
	})
}

// FuzzObjectCode: what ValidateObjectCode accepts has its kind's form
// (component: 16 digits carrying the class; building: 19 digits; both
// with a valid district; enterprise: a USCC with its check character);
// refusals are *ObjectCodeError. A USCC built with USCCCheck validates.
func FuzzObjectCode(f *testing.F) {
	for _, s := range []struct {
		kind        uint8
		class, code string
	}{
		{0, "0101", "4403040101000001"}, {0, "0101", "4403040102000001"}, {0, "0101", "4403040101000000"},
		{0, "0101", "440304010100000"}, {1, "house", "4403040000000000001"}, {1, "house", "0003040000000000001"},
		{2, "corp", "91440300MA5EXAMPL1"}, {2, "corp", "9144030071526726XG"}, {2, "corp", "91440300ma5examp11"},
		{3, "x", "1"}, {2, "corp", strings.Repeat("\x00", 200)},
	} {
		f.Add(s.kind, s.class, s.code)
	}
	kinds := []ObjectKind{KindComponent, KindBuilding, KindEnterprise, "other"}
	f.Fuzz(func(t *testing.T, kb uint8, class, code string) {
		c := Class{Code: class, Kind: kinds[int(kb)%len(kinds)]}
		err := ValidateObjectCode(c, code)
		if err != nil {
			var oe *ObjectCodeError
			if !errors.As(err, &oe) {
				t.Fatalf("%T %v is not an *ObjectCodeError", err, err)
			}
			geotest.CheckNoEcho(t, err.Error(), class, code)
		} else {
			switch c.Kind {
			case KindComponent:
				if len(code) != 16 || !digitsOnly.MatchString(code) || code[6:10] != class || code[10:] == "000000" {
					t.Fatalf("accepted component %q of class %q", code, class)
				}
			case KindBuilding:
				if len(code) != 19 || !digitsOnly.MatchString(code) {
					t.Fatalf("accepted house code %q", code)
				}
			case KindEnterprise:
				if len(code) != 18 || USCCCheck(code[:17]) != code[17] {
					t.Fatalf("accepted USCC %q", code)
				}
			default:
				t.Fatalf("accepted %q of kind %q", code, c.Kind)
			}
			if d := CodeDistrict(c, code); d != "" {
				if err := ValidateCode(District, d, ""); err != nil {
					t.Fatalf("accepted %q whose district %s is not one: %v", code, d, err)
				}
			} else if c.Kind != KindEnterprise {
				t.Fatalf("accepted %q of kind %s without a district", code, c.Kind)
			}
		}
		// A USCC from any 17 characters of the alphabet with a division
		// code in 3-8 and its computed check character is valid.
		if len(code) >= 17 {
			first := []byte(code[:17])
			for i, b := range first {
				if strings.IndexByte(usccChars, b) < 0 || (i >= 2 && i < 8 && (b < '0' || b > '9')) {
					return
				}
			}
			full := string(first) + string(USCCCheck(string(first)))
			if err := ValidateUSCC(full); err != nil {
				t.Fatalf("USCCCheck made %q, which ValidateUSCC refuses: %v", full, err)
			}
		}
	})
}

// FuzzEventCode: what ParseEventCode accepts EventCode builds back to the
// same 20 digits; what EventCode builds ParseEventCode reads back to its
// parts; refusals are *CodeError.
func FuzzEventCode(f *testing.F) {
	for _, s := range []string{"44030420261123000001", "44030420260229000001", "44030420280229000001", "44030400000101000001",
		"44030420261123000000", "4403042026112300000", "440304202611230000011", "4403042026112300000a", "99030420261123000001", "٤٤٠٣٠٤٢٠٢٦١١٢٣٠٠٠٠٠١"} {
		f.Add(s, "440304", int32(20415), 1)
	}
	f.Add("", "440300", int32(-719162), 999999) // day 1 of year 1
	f.Add("", "440304", int32(2932896), 1000000)
	f.Fuzz(func(t *testing.T, code, district string, days int32, seq int) {
		d, day, n, err := ParseEventCode(code)
		if err != nil {
			var ce *CodeError
			if !errors.As(err, &ce) {
				t.Fatalf("%T %v is not a *CodeError", err, err)
			}
			geotest.CheckNoEcho(t, err.Error(), code)
		} else {
			if day.Location() != time.UTC || day.Hour() != 0 || day.Minute() != 0 || day.Second() != 0 || day.Nanosecond() != 0 {
				t.Fatalf("%q: date %v is not a UTC midnight", code, day)
			}
			again, err := EventCode(d, day, n)
			if err != nil || again != code {
				t.Fatalf("%q read as (%s, %v, %d), built back as %q, %v", code, d, day, n, again, err)
			}
		}
		at := time.Unix(int64(days)*86400, 0).UTC()
		built, err := EventCode(district, at, seq)
		if err != nil {
			geotest.CheckNoEcho(t, err.Error(), district)
			return
		}
		d, day, n, err = ParseEventCode(built)
		if err != nil || d != district || !day.Equal(at) || n != seq {
			t.Fatalf("built %q from (%s, %v, %d), read back (%s, %v, %d), %v", built, district, at, seq, d, day, n, err)
		}
	})
}

// FuzzParseNames: a level, status or source is accepted only as one of
// the listed names, spelled exactly; a refusal lists the names and
// repeats little of the input.
func FuzzParseNames(f *testing.F) {
	for _, s := range []string{"grid", "Grid", "grid ", "reported", "closed", "hotline", "grid_worker", "", "\x00", strings.Repeat("a", 500)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if l, err := ParseLevel(s); err == nil {
			if !slices.Contains(Levels, l) || string(l) != s || l.CodeLen() == 0 {
				t.Fatalf("level %q read as %q", s, l)
			}
		} else {
			geotest.CheckNoEcho(t, err.Error(), s)
		}
		if st, err := ParseEventStatus(s); err == nil {
			if !slices.Contains(EventStatuses, st) || string(st) != s || st.Chinese() == "" {
				t.Fatalf("status %q read as %q", s, st)
			}
		} else {
			geotest.CheckNoEcho(t, err.Error(), s)
		}
		if src, err := ParseEventSource(s); err == nil {
			if !slices.Contains(EventSources, src) || string(src) != s {
				t.Fatalf("source %q read as %q", s, src)
			}
		} else {
			geotest.CheckNoEcho(t, err.Error(), s)
		}
		if err := CheckTransition(StatusReported, EventStatus(s), "", ""); err == nil && !slices.Contains(Transitions(StatusReported), EventStatus(s)) {
			t.Fatalf("reported → %q allowed", s)
		} else if err != nil {
			geotest.CheckNoEcho(t, err.Error(), s)
		}
		if err := CheckTransition(StatusRegistered, StatusDispatched, "", s); err == nil && s != "" && !ValidDepartmentCode(s) {
			t.Fatalf("department %q accepted", s)
		} else if err != nil {
			geotest.CheckNoEcho(t, err.Error(), s)
		}
	})
}

// FuzzParsePeriods: accepted periods are sorted, inside the day, start
// before end, and do not overlap; FormatPeriods writes them so that
// ParsePeriods reads the same back; a calendar takes them.
func FuzzParsePeriods(f *testing.F) {
	for _, s := range []string{"09:00-12:00,14:00-18:00", "14:00-18:00, 9:00-12:00", "08:30-12:00", "00:00-24:00", "24:00-24:00",
		"12:00-09:00", "09:00-12:00,11:00-13:00", "09:00-12:00,12:00-13:00", "9:0-12:00", "09:60-10:00", "24:01-24:02",
		"+9:00-12:00", "09:00-", "-", "", " , ", "٠٩:٠٠-١٢:٠٠", "09:00-12:00-13:00", strings.Repeat("09:00-12:00,", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParsePeriods(s)
		if err != nil {
			geotest.CheckNoEcho(t, err.Error(), s)
			return
		}
		for i, p := range ps {
			if p.Start < 0 || p.End > dayMinutes || p.Start >= p.End || (i > 0 && p.Start < ps[i-1].End) {
				t.Fatalf("%q read as %v", s, ps)
			}
		}
		text := FormatPeriods(ps)
		again, err := ParsePeriods(text)
		if err != nil || !slices.Equal(again, ps) {
			t.Fatalf("%q → %v → %q → %v, %v", s, ps, text, again, err)
		}
		if _, err := NewCalendar(time.UTC, ps, nil); err != nil {
			t.Fatalf("periods %v refused by a calendar: %v", ps, err)
		}
	})
}

// FuzzCalendar: a calendar accepts an override date only as YYYY-MM-DD
// and a kind only as holiday or workday; the override decides that day;
// a deadline in working hours is exactly that much working time after its
// start, and one in working days falls at the end of a working day.
func FuzzCalendar(f *testing.F) {
	f.Add("2026-10-01", "holiday", "09:00-12:00,14:00-18:00", int64(1790000000), uint16(4), false)
	f.Add("2026-10-10", "workday", "08:30-12:00", int64(1791500000), uint16(20), true)
	f.Add("0000-01-01", "holiday", "00:00-24:00", int64(-62135596800), uint16(1), false)
	f.Add("2026-02-30", "holiday", "09:00-12:00", int64(0), uint16(1), false)
	f.Add("2026-1-1", "weekend", "09:00-12:00", int64(0), uint16(1), true)
	f.Add("1988-04-10", "workday", "01:00-03:00", int64(576530000), uint16(30), false) // Shanghai's daylight saving years
	f.Fuzz(func(t *testing.T, day, kind, periods string, start int64, amount uint16, days bool) {
		ps, err := ParsePeriods(periods)
		if err != nil {
			return
		}
		cal, err := NewCalendar(nil, ps, map[string]DayKind{day: DayKind(kind)})
		if err != nil {
			geotest.CheckNoEcho(t, err.Error(), day, kind)
			return
		}
		at, perr := time.Parse(time.DateOnly, day)
		if perr != nil || (kind != string(Holiday) && kind != string(Workday)) {
			t.Fatalf("override %q %q accepted", day, kind)
		}
		noon := time.Date(at.Year(), at.Month(), at.Day(), 12, 0, 0, 0, cal.Location())
		if cal.IsWorkday(noon) != (kind == string(Workday)) {
			t.Fatalf("%s marked %s, IsWorkday says %v", day, kind, cal.IsWorkday(noon))
		}
		// Keep the walk through the calendar short enough to fuzz.
		l := Limit{Amount: int(amount%200) + 1, Unit: WorkingHours}
		if days {
			l.Unit = WorkingDays
		}
		from := time.Unix(start%(300*365*86400), 0) // 1670–2270
		deadline, err := cal.Deadline(from, l)
		if err != nil {
			t.Fatalf("deadline of %v from %v: %v", l, from, err)
		}
		if !deadline.After(from) {
			t.Fatalf("deadline %v of %v is not after %v", deadline, l, from)
		}
		if !days {
			if got := cal.WorkingTime(from, deadline); got != time.Duration(l.Amount)*time.Hour {
				t.Fatalf("%v from %v: deadline %v, %v of working time between", l, from, deadline, got)
			}
			return
		}
		if !cal.IsWorkday(deadline) && !cal.IsWorkday(deadline.Add(-time.Minute)) {
			t.Fatalf("%v from %v ends on %v, not a working day", l, from, deadline)
		}
	})
}

// FuzzDrafts: each feature of a units import becomes exactly one draft or
// one violation; a draft's code is valid for its level with its parent as
// prefix, its layer and name are set, no two drafts share layer and code,
// and its geometry is a non-empty MultiPolygon; a violation names its
// feature and repeats little of the input.
func FuzzDrafts(f *testing.F) {
	poly := `{"type":"Polygon","coordinates":[[[114,22],[114.1,22],[114.1,22.1],[114,22]]]}`
	for _, s := range []struct{ props, geom string }{
		{`{"code":"440304","name":"福田区","level":"district"}`, poly},
		{`{"code":440304,"name":"福田区","level":"district","parent_code":"4403"}`, poly},
		{`{"code":"440304","name":"福田区","level":"district","parent_code":"440300"}`, poly},
		{`{"code":"44030400100101","name":"网格","level":"grid","parent_code":"440304001001","complete":true}`, poly},
		{`{"code":"440304001","name":" ","level":"street"}`, poly},
		{`{"code":"440304001","name":"x","level":"street","layer":"Police"}`, poly},
		{`{"code":"440304001","name":"x","level":"street","parent_code":440305}`, poly},
		{`{"code":4.403040010010011e+14,"name":"x","level":"grid"}`, poly},
		{`{"code":["440304"],"name":{"a":1},"level":"district"}`, poly},
		{`{"code":"440304","name":"x","level":"district"}`, `{"type":"Point","coordinates":[114,22]}`},
		{`{"code":"440304","name":"x","level":"district"}`, `{"type":"Polygon","coordinates":[[[114],[114.1,22]]]}`},
		{`{"code":"440304","name":"x","level":"district"}`, `null`},
		{`{"code":"` + strings.Repeat("4", 300) + `","name":"x","level":"` + strings.Repeat("z", 300) + `"}`, poly},
	} {
		feat := `{"type":"Feature","properties":` + s.props + `,"geometry":` + s.geom + `}`
		f.Add([]byte(`{"type":"FeatureCollection","features":[`+feat+`,`+feat+`]}`), "")
		f.Add([]byte(`{"type":"FeatureCollection","features":[`+feat+`]}`), "police")
	}
	f.Fuzz(func(t *testing.T, raw []byte, defaultLayer string) {
		features, err := geo.DecodeFeatureCollection(bytes.NewReader(raw))
		if err != nil {
			return
		}
		drafts, bad := DraftsFromFeatures(features, defaultLayer)
		seen := map[int]bool{}
		keys := map[string]bool{}
		for _, d := range drafts {
			if seen[d.Feature] {
				t.Fatalf("features[%d] twice", d.Feature)
			}
			seen[d.Feature] = true
			if !ValidLayerName(d.Layer) || d.Name == "" || strings.TrimSpace(d.Name) != d.Name {
				t.Fatalf("draft %+v", d.Unit)
			}
			if err := ValidateCode(d.Level, d.Code, d.ParentCode); err != nil {
				t.Fatalf("draft %s %s under %q: %v", d.Level, d.Code, d.ParentCode, err)
			}
			if d.ParentCode != ParentCode(d.Level, d.Code) {
				t.Fatalf("draft %s %s has parent %q", d.Level, d.Code, d.ParentCode)
			}
			if keys[d.Layer+"/"+d.Code] {
				t.Fatalf("two drafts %s/%s", d.Layer, d.Code)
			}
			keys[d.Layer+"/"+d.Code] = true
			if len(d.Geometry) == 0 {
				t.Fatalf("draft %s without geometry", d.Code)
			}
		}
		for _, v := range bad {
			if v.Feature == nil || seen[*v.Feature] {
				t.Fatalf("violation %+v for no feature or one already drafted", v)
			}
			seen[*v.Feature] = true
			if v.Severity != SeverityError || v.Message == "" || !utf8.ValidString(v.Message) && utf8.Valid(raw) {
				t.Fatalf("violation %+v", v)
			}
			geotest.CheckNoEcho(t, v.Message, string(raw), defaultLayer)
			for _, c := range v.Codes {
				geotest.CheckNoEcho(t, c, string(raw))
			}
		}
		if len(seen) != len(features) {
			t.Fatalf("%d features, %d drafts and %d violations", len(features), len(drafts), len(bad))
		}
		if _, err := json.Marshal(bad); err != nil {
			t.Fatalf("violations do not encode: %v", err)
		}
	})
}
