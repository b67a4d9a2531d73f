package grid

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTransitions(t *testing.T) {
	want := map[EventStatus][]EventStatus{
		StatusReported:   {StatusRegistered, StatusRejected},
		StatusRegistered: {StatusDispatched},
		StatusDispatched: {StatusHandling, StatusDispatched, StatusSuspended},
		StatusHandling:   {StatusHandled, StatusDispatched, StatusSuspended},
		StatusHandled:    {StatusVerified, StatusReturned},
		StatusReturned:   {StatusDispatched},
		StatusVerified:   {StatusClosed},
		StatusClosed:     nil,
		StatusRejected:   nil,
		StatusSuspended:  {StatusDispatched, StatusHandling},
	}
	for _, from := range EventStatuses {
		got := Transitions(from)
		if !slices.Equal(got, want[from]) {
			t.Errorf("Transitions(%s) = %v, want %v", from, got, want[from])
		}
		if from.Final() != (len(want[from]) == 0) {
			t.Errorf("%s.Final() = %v", from, from.Final())
		}
	}
	// The caller's slice is its own.
	Transitions(StatusReported)[0] = StatusClosed
	if Transitions(StatusReported)[0] != StatusRegistered {
		t.Error("Transitions shares its slice")
	}
	if Transitions("nonsense") != nil {
		t.Error("Transitions of an unknown status is not nil")
	}
}

// TestCheckTransitionMatrix tries every pair of statuses: the legal ones
// pass (a re-dispatch naming a new department), every other one is a
// *TransitionError listing the legal moves.
func TestCheckTransitionMatrix(t *testing.T) {
	legal := 0
	for _, from := range EventStatuses {
		for _, to := range EventStatuses {
			dept := ""
			if to == StatusDispatched {
				dept = "urban_mgmt"
			}
			err := CheckTransition(from, to, "sanitation", dept)
			if slices.Contains(Transitions(from), to) {
				legal++
				if err != nil {
					t.Errorf("%s → %s: %v", from, to, err)
				}
				continue
			}
			var te *TransitionError
			if !errors.As(err, &te) {
				t.Errorf("%s → %s: got %v, want a *TransitionError", from, to, err)
				continue
			}
			if te.From != from || te.To != to || te.Reason != "" || !slices.Equal(te.Allowed, Transitions(from)) {
				t.Errorf("%s → %s: %+v", from, to, te)
			}
		}
	}
	if legal != 15 {
		t.Errorf("%d legal transitions, want 15", legal)
	}
}

func TestCheckTransition(t *testing.T) {
	cases := []struct {
		name              string
		from, to          EventStatus
		current, dept     string
		wantTransition    bool          // a *TransitionError
		wantPlain         bool          // another error
		allowed           []EventStatus // checked when wantTransition
		reason, errSubstr string
	}{
		{"register", StatusReported, StatusRegistered, "", "", false, false, nil, "", ""},
		{"reject", StatusReported, StatusRejected, "", "", false, false, nil, "", ""},
		{"first dispatch, department from the class", StatusRegistered, StatusDispatched, "", "", false, false, nil, "", ""},
		{"first dispatch naming a department", StatusRegistered, StatusDispatched, "", "water", false, false, nil, "", ""},
		{"first dispatch naming the current department", StatusRegistered, StatusDispatched, "water", "water", false, false, nil, "", ""},
		{"accept", StatusDispatched, StatusHandling, "water", "", false, false, nil, "", ""},
		{"re-dispatch from dispatched", StatusDispatched, StatusDispatched, "water", "roads", false, false, nil, "", ""},
		{"re-dispatch from handling", StatusHandling, StatusDispatched, "water", "roads", false, false, nil, "", ""},
		{"re-dispatch to the same department", StatusDispatched, StatusDispatched, "water", "water", true, false,
			[]EventStatus{StatusHandling, StatusDispatched, StatusSuspended}, "other than the current one", ""},
		{"re-dispatch from handling to the same department", StatusHandling, StatusDispatched, "water", "water", true, false,
			[]EventStatus{StatusHandled, StatusDispatched, StatusSuspended}, "other than the current one", ""},
		{"re-dispatch without a department", StatusDispatched, StatusDispatched, "water", "", true, false,
			[]EventStatus{StatusHandling, StatusDispatched, StatusSuspended}, "must name the department", ""},
		{"re-dispatch from handling without a department", StatusHandling, StatusDispatched, "water", "", true, false,
			[]EventStatus{StatusHandled, StatusDispatched, StatusSuspended}, "must name the department", ""},
		{"dispatch again after return, same department", StatusReturned, StatusDispatched, "water", "water", false, false, nil, "", ""},
		{"dispatch again after return, no department", StatusReturned, StatusDispatched, "water", "", false, false, nil, "", ""},
		{"dispatch again after return, other department", StatusReturned, StatusDispatched, "water", "roads", false, false, nil, "", ""},
		{"handled", StatusHandling, StatusHandled, "water", "", false, false, nil, "", ""},
		{"verify", StatusHandled, StatusVerified, "water", "", false, false, nil, "", ""},
		{"verification failed", StatusHandled, StatusReturned, "water", "", false, false, nil, "", ""},
		{"close", StatusVerified, StatusClosed, "water", "", false, false, nil, "", ""},

		{"department on a move that does not dispatch", StatusDispatched, StatusHandling, "water", "roads", false, true, nil, "", "only when dispatching"},
		{"department on registration", StatusReported, StatusRegistered, "", "water", false, true, nil, "", "only when dispatching"},
		{"malformed department", StatusRegistered, StatusDispatched, "", "water dept", false, true, nil, "", "department code"},

		{"skip registration", StatusReported, StatusDispatched, "", "", true, false,
			[]EventStatus{StatusRegistered, StatusRejected}, "", "allowed: registered, rejected"},
		{"illegal move checked before the department", StatusReported, StatusHandling, "", "water", true, false,
			[]EventStatus{StatusRegistered, StatusRejected}, "", "allowed: registered, rejected"},
		{"close without verification", StatusHandled, StatusClosed, "water", "", true, false,
			[]EventStatus{StatusVerified, StatusReturned}, "", "allowed: verified, returned"},
		{"back from handled to handling", StatusHandled, StatusHandling, "water", "", true, false,
			[]EventStatus{StatusVerified, StatusReturned}, "", ""},
		{"return before handling", StatusHandling, StatusReturned, "water", "", true, false,
			[]EventStatus{StatusHandled, StatusDispatched, StatusSuspended}, "", ""},
		{"returned straight to handling", StatusReturned, StatusHandling, "water", "", true, false,
			[]EventStatus{StatusDispatched}, "", "allowed: dispatched"},
		{"stay registered", StatusRegistered, StatusRegistered, "", "", true, false,
			[]EventStatus{StatusDispatched}, "", ""},
		{"reopen a closed event", StatusClosed, StatusHandling, "water", "", true, false,
			nil, "", `cannot move an event from "closed" to "handling": "closed" is final`},
		{"reopen a rejected event", StatusRejected, StatusRegistered, "", "", true, false,
			nil, "", `"rejected" is final`},
		{"unknown target", StatusReported, "done", "", "", true, false,
			[]EventStatus{StatusRegistered, StatusRejected}, `unknown status "done"`, ""},
		{"unknown source", "new", StatusRegistered, "", "", true, false,
			nil, `unknown status "new"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckTransition(c.from, c.to, c.current, c.dept)
			var te *TransitionError
			isTE := errors.As(err, &te)
			switch {
			case c.wantTransition:
				if !isTE {
					t.Fatalf("got %v, want a *TransitionError", err)
				}
				if !slices.Equal(te.Allowed, c.allowed) {
					t.Errorf("allowed %v, want %v", te.Allowed, c.allowed)
				}
				if c.reason == "" && te.Reason != "" || !strings.Contains(te.Reason, c.reason) {
					t.Errorf("reason %q, want %q", te.Reason, c.reason)
				}
			case c.wantPlain:
				if err == nil || isTE {
					t.Fatalf("got %v, want a plain error", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
			}
			if c.errSubstr != "" && !strings.Contains(err.Error(), c.errSubstr) {
				t.Errorf("error %q does not contain %q", err, c.errSubstr)
			}
		})
	}
}

func TestTransitionErrorJSON(t *testing.T) {
	err := CheckTransition(StatusReported, StatusClosed, "", "")
	b, _ := json.Marshal(err)
	want := `{"from":"reported","to":"closed","allowed":["registered","rejected"]}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestStatusProperties(t *testing.T) {
	cases := []struct {
		s       EventStatus
		open    bool
		final   bool
		chinese string
	}{
		{StatusReported, true, false, "上报"},
		{StatusRegistered, true, false, "立案"},
		{StatusDispatched, true, false, "派遣"},
		{StatusHandling, true, false, "处置中"},
		{StatusHandled, false, false, "已处置"},
		{StatusVerified, false, false, "已核查"},
		{StatusClosed, false, true, "结案"},
		{StatusRejected, false, true, "不予立案"},
		{StatusReturned, true, false, "退回"},
		{StatusSuspended, false, false, "挂起"},
		{"nonsense", false, false, ""},
	}
	for _, c := range cases {
		if c.s.Open() != c.open || c.s.Final() != c.final || c.s.Chinese() != c.chinese {
			t.Errorf("%s: open %v final %v chinese %q", c.s, c.s.Open(), c.s.Final(), c.s.Chinese())
		}
	}
	if len(EventStatuses) != 10 {
		t.Errorf("%d statuses", len(EventStatuses))
	}
}

func TestParseEventStatus(t *testing.T) {
	for _, s := range EventStatuses {
		got, err := ParseEventStatus(string(s))
		if err != nil || got != s {
			t.Errorf("ParseEventStatus(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Reported", "closed ", "overdue", "上报"} {
		_, err := ParseEventStatus(s)
		if err == nil {
			t.Errorf("ParseEventStatus(%q) accepted", s)
			continue
		}
		if !strings.Contains(err.Error(), "reported, registered, dispatched, handling, handled, verified, closed, rejected, returned") {
			t.Errorf("error does not list the statuses: %v", err)
		}
	}
}

func TestParseEventSource(t *testing.T) {
	want := []EventSource{"grid_worker", "hotline", "sensor", "app", "inspection", "other"}
	if !slices.Equal(EventSources, want) {
		t.Errorf("EventSources = %v", EventSources)
	}
	for _, s := range EventSources {
		got, err := ParseEventSource(string(s))
		if err != nil || got != s {
			t.Errorf("ParseEventSource(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "12345", "Hotline", "grid-worker"} {
		_, err := ParseEventSource(s)
		if err == nil || !strings.Contains(err.Error(), "grid_worker, hotline, sensor, app, inspection, other") {
			t.Errorf("ParseEventSource(%q): %v", s, err)
		}
	}
}

func TestOverdue(t *testing.T) {
	deadline := time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC)
	before, after := deadline.Add(-time.Minute), deadline.Add(time.Minute)
	cases := []struct {
		name     string
		status   EventStatus
		deadline time.Time
		now      time.Time
		want     bool
	}{
		{"open, past the deadline", StatusHandling, deadline, after, true},
		{"reported, past", StatusReported, deadline, after, true},
		{"registered, past", StatusRegistered, deadline, after, true},
		{"dispatched, past", StatusDispatched, deadline, after, true},
		{"returned, past", StatusReturned, deadline, after, true},
		{"open, before the deadline", StatusHandling, deadline, before, false},
		{"open, exactly at the deadline", StatusHandling, deadline, deadline, false},
		{"open, deadline in another zone", StatusHandling, deadline.In(time.FixedZone("CST", 8*3600)), after, true},
		{"handled late is not overdue any more", StatusHandled, deadline, after, false},
		{"verified", StatusVerified, deadline, after, false},
		{"closed", StatusClosed, deadline, after, false},
		{"rejected", StatusRejected, deadline, after, false},
		{"no deadline", StatusHandling, time.Time{}, after, false},
	}
	for _, c := range cases {
		if got := Overdue(c.status, c.deadline, c.now); got != c.want {
			t.Errorf("%s: Overdue = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestEventCode(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-03-01 23:30 in Shenzhen is still 2026-03-01 15:30 UTC, but
	// 2026-03-02 00:30 in Shenzhen is 2026-03-01 16:30 UTC: the date is the
	// caller's local one.
	cases := []struct {
		district string
		day      time.Time
		seq      int
		want     string
	}{
		{"440306", time.Date(2026, 3, 1, 23, 30, 0, 0, shanghai), 1, "44030620260301000001"},
		{"440306", time.Date(2026, 3, 2, 0, 30, 0, 0, shanghai), 1, "44030620260302000001"},
		{"440306", time.Date(2026, 3, 2, 0, 30, 0, 0, shanghai).UTC(), 1, "44030620260301000001"},
		{"110101", time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC), 999999, "11010120251231999999"},
		{"320508", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), 42, "32050820240229000042"},
	}
	for _, c := range cases {
		got, err := EventCode(c.district, c.day, c.seq)
		if err != nil || got != c.want {
			t.Errorf("EventCode(%s, %v, %d) = %q, %v; want %s", c.district, c.day, c.seq, got, err, c.want)
			continue
		}
		d, day, seq, err := ParseEventCode(got)
		y, m, dd := c.day.Date()
		if err != nil || d != c.district || seq != c.seq || day != time.Date(y, m, dd, 0, 0, 0, 0, time.UTC) {
			t.Errorf("ParseEventCode(%s) = %s, %v, %d, %v", got, d, day, seq, err)
		}
	}

	day := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	bad := []struct {
		name     string
		district string
		day      time.Time
		seq      int
		msg      string
	}{
		{"sequence 0", "440306", day, 0, "sequence 0"},
		{"sequence negative", "440306", day, -1, "sequence -1"},
		{"sequence too large", "440306", day, 1000000, "sequence 1000000"},
		{"district short", "44030", day, 1, "district"},
		{"district a city", "440300", day, 1, "district"},
		{"district letters", "44O306", day, 1, "district"},
		{"district empty", "", day, 1, "district"},
		{"year 10000", "440306", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), 1, "year"},
		{"zero time", "440306", time.Time{}, 1, ""},
	}
	for _, c := range bad {
		got, err := EventCode(c.district, c.day, c.seq)
		if err == nil {
			// The zero time is year 1: a valid if silly date.
			if c.name == "zero time" && got == "44030600010101000001" {
				continue
			}
			t.Errorf("%s: EventCode = %q, want an error", c.name, got)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.msg)
		}
	}
}

func TestParseEventCodeErrors(t *testing.T) {
	cases := []struct {
		code   string
		rule   string
		digits string
	}{
		{"", RuleCodeLength, ""},
		{"4403062026030100000", RuleCodeLength, ""},
		{"440306202603010000011", RuleCodeLength, ""},
		{"44030620260301 00001", RuleCodeDigits, "15"},
		{"44030620260301-00001", RuleCodeDigits, "15"},
		{"44030６20260301000001", RuleCodeDigits, "6"},
		{"44030020260301000001", RuleCodeRange, "1-6"},
		{"99030620260301000001", RuleCodeRange, "1-6"},
		{"44030620260230000001", RuleCodeRange, "7-14"}, // 30 February
		{"44030620250229000001", RuleCodeRange, "7-14"}, // not a leap year
		{"44030620261301000001", RuleCodeRange, "7-14"},
		{"44030620260001000001", RuleCodeRange, "7-14"},
		{"44030620260100000001", RuleCodeRange, "7-14"},
		{"44030600000101000001", RuleCodeRange, "7-14"},
		{"44030620260301000000", RuleCodeRange, "15-20"},
	}
	for _, c := range cases {
		_, _, _, err := ParseEventCode(c.code)
		var ce *CodeError
		if !errors.As(err, &ce) {
			t.Errorf("ParseEventCode(%q) = %v, want a *CodeError", c.code, err)
			continue
		}
		if ce.Rule != c.rule || ce.Digits != c.digits {
			t.Errorf("ParseEventCode(%q): rule %s digits %q, want %s %q (%v)", c.code, ce.Rule, ce.Digits, c.rule, c.digits, err)
		}
	}
}

func TestLimit(t *testing.T) {
	cases := []struct {
		l     Limit
		str   string
		valid bool
	}{
		{Limit{4, WorkingHours}, "4 working hours", true},
		{Limit{1, WorkingHours}, "1 working hour", true},
		{Limit{20, WorkingDays}, "20 working days", true},
		{Limit{1, WorkingDays}, "1 working day", true},
		{Limit{10000, WorkingHours}, "10000 working hours", true},
		{Limit{10001, WorkingHours}, "10001 working hours", false},
		{Limit{0, WorkingDays}, "0 working days", false},
		{Limit{-3, WorkingDays}, "-3 working days", false},
		{Limit{4, "hours"}, "4 hours", false},
		{Limit{4, ""}, "4 ", false},
	}
	for _, c := range cases {
		if got := c.l.String(); got != c.str {
			t.Errorf("%+v.String() = %q, want %q", c.l, got, c.str)
		}
		if err := c.l.Validate(); (err == nil) != c.valid {
			t.Errorf("%+v.Validate() = %v", c.l, err)
		}
	}
	var l Limit
	if err := json.Unmarshal([]byte(`{"amount":4,"unit":"working_hours"}`), &l); err != nil || l != (Limit{4, WorkingHours}) {
		t.Errorf("JSON: %+v, %v", l, err)
	}
}

func TestEventClassValidate(t *testing.T) {
	ok := EventClass{Code: "0102", Major: "01", MajorName: "市容环境", Minor: "02", Name: "暴露垃圾",
		Department: "sanitation", Limit: Limit{4, WorkingHours}}
	cases := []struct {
		name  string
		edit  func(*EventClass)
		field string // "" when valid; else a word the error must contain
	}{
		{"ok", func(*EventClass) {}, ""},
		{"20 working days", func(c *EventClass) {
			c.Code, c.Minor, c.Name, c.Limit = "0101", "01", "私搭乱建", Limit{20, WorkingDays}
		}, ""},
		{"no major and minor", func(c *EventClass) { c.Code, c.Major, c.Minor = "SZ_noise", "", "" }, ""},
		{"major only", func(c *EventClass) { c.Code, c.Minor = "01", "" }, ""},
		{"wider codes of a revision", func(c *EventClass) { c.Code, c.Major, c.Minor = "010203", "0102", "03" }, ""},
		{"department with a hyphen", func(c *EventClass) { c.Department = "sz-ba-cg_01" }, ""},
		{"empty code", func(c *EventClass) { c.Code, c.Major, c.Minor = "", "", "" }, "code"},
		{"code with a space", func(c *EventClass) { c.Code, c.Major, c.Minor = "01 02", "", "" }, "code"},
		{"code with a hyphen", func(c *EventClass) { c.Code, c.Major, c.Minor = "01-02", "", "" }, "code"},
		{"code too long", func(c *EventClass) { c.Code, c.Major, c.Minor = strings.Repeat("1", 33), "", "" }, "code"},
		{"major + minor differ from code", func(c *EventClass) { c.Minor = "03" }, "major"},
		{"major not digits", func(c *EventClass) { c.Code, c.Major = "A102", "A1" }, "major"},
		{"minor not digits", func(c *EventClass) { c.Code, c.Minor = "01B2", "B2" }, "minor"},
		{"name missing", func(c *EventClass) { c.Name = " " }, "name"},
		{"department missing", func(c *EventClass) { c.Department = "" }, "department"},
		{"department with a space", func(c *EventClass) { c.Department = "city dept" }, "department"},
		{"department Chinese", func(c *EventClass) { c.Department = "城管" }, "department"},
		{"department too long", func(c *EventClass) { c.Department = strings.Repeat("d", 33) }, "department"},
		{"limit zero", func(c *EventClass) { c.Limit = Limit{} }, "limit"},
		{"limit unit unknown", func(c *EventClass) { c.Limit.Unit = "days" }, "limit unit"},
		{"limit too large", func(c *EventClass) { c.Limit.Amount = 20000 }, "limit amount"},
	}
	for _, c := range cases {
		cl := ok
		c.edit(&cl)
		err := cl.Validate()
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %v does not name %q", c.name, err, c.field)
		}
	}
}

func TestValidDepartmentCode(t *testing.T) {
	for s, want := range map[string]bool{
		"sanitation": true, "440306-cg": true, "A_1": true, strings.Repeat("x", 32): true,
		"": false, " x": false, "a.b": false, "城管": false, strings.Repeat("x", 33): false,
	} {
		if ValidDepartmentCode(s) != want {
			t.Errorf("ValidDepartmentCode(%q) != %v", s, want)
		}
	}
}

func TestCheckResume(t *testing.T) {
	if err := CheckResume(StatusHandling, StatusHandling); err != nil {
		t.Errorf("resume to the status suspended from: %v", err)
	}
	var te *TransitionError
	if err := CheckResume(StatusHandling, StatusDispatched); !errors.As(err, &te) || !slices.Equal(te.Allowed, []EventStatus{StatusHandling}) {
		t.Errorf("resume elsewhere: %v, want a *TransitionError allowing handling", err)
	}
	for s, want := range map[EventStatus]bool{StatusDispatched: true, StatusHandling: true, StatusReturned: true,
		StatusHandled: false, StatusSuspended: false, StatusReported: false, StatusClosed: false} {
		if ExtensionAllowed(s) != want {
			t.Errorf("ExtensionAllowed(%s) = %v", s, !want)
		}
	}
}
