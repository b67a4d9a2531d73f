package grid

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gridmap/geo"
)

// EventStatus is where an event stands in the closed loop of urban
// management: report → register → dispatch → handle → feedback → verify →
// close (DESIGN §1).
type EventStatus string

const (
	StatusReported   EventStatus = "reported"   // 上报: arrived, not yet accepted as a case
	StatusRegistered EventStatus = "registered" // 立案: accepted as a case
	StatusDispatched EventStatus = "dispatched" // 派遣: sent to a responsible department
	StatusHandling   EventStatus = "handling"   // 处置中: the department is working on it
	StatusHandled    EventStatus = "handled"    // 已处置: the department reports it done
	StatusVerified   EventStatus = "verified"   // 已核查: a grid worker confirmed it on site
	StatusClosed     EventStatus = "closed"     // 结案
	StatusRejected   EventStatus = "rejected"   // 不予立案: not a valid case
	StatusReturned   EventStatus = "returned"   // 退回: verification failed, to be dispatched again
	StatusSuspended  EventStatus = "suspended"  // 挂起: the clock stops until the suspension is lifted
)

// EventStatuses lists every status in workflow order: the main line first,
// then the two side branches.
var EventStatuses = []EventStatus{
	StatusReported, StatusRegistered, StatusDispatched, StatusHandling, StatusHandled,
	StatusVerified, StatusClosed, StatusRejected, StatusReturned, StatusSuspended,
}

// ParseEventStatus accepts a status name and says which names exist otherwise.
func ParseEventStatus(s string) (EventStatus, error) {
	for _, st := range EventStatuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown event status %q: use one of %s", geo.Excerpt(s, geo.MaxExcerpt), joinNames(EventStatuses))
}

func joinNames[S ~string](names []S) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(n))
	}
	return b.String()
}

func (s EventStatus) known() bool { return slices.Contains(EventStatuses, s) }

// Open reports whether the deadline clock runs in this status: the event
// still waits for someone in the city to act. Once the department reports
// it handled, the clock stops (verification is the centre's own work), and
// a failed verification (returned) starts it again.
func (s EventStatus) Open() bool {
	switch s {
	case StatusReported, StatusRegistered, StatusDispatched, StatusHandling, StatusReturned:
		return true
	}
	return false
}

// Final reports whether no transition leaves this status.
func (s EventStatus) Final() bool { return s == StatusClosed || s == StatusRejected }

// Chinese is the status as a command centre names it.
func (s EventStatus) Chinese() string {
	switch s {
	case StatusReported:
		return "上报"
	case StatusRegistered:
		return "立案"
	case StatusDispatched:
		return "派遣"
	case StatusHandling:
		return "处置中"
	case StatusHandled:
		return "已处置"
	case StatusVerified:
		return "已核查"
	case StatusClosed:
		return "结案"
	case StatusRejected:
		return "不予立案"
	case StatusReturned:
		return "退回"
	case StatusSuspended:
		return "挂起"
	}
	return ""
}

// transitions is the state machine. A dispatched or handling event may be
// dispatched again: the department it went to says it is not theirs (a
// common case in practice), and the centre sends it elsewhere.
//
// A dispatched or handling event may be suspended (挂起: work cannot go on
// for a reason outside the department's hands); lifting the suspension
// returns it to the status it was suspended from (CheckResume), and the
// deadline moves on by the working time it was suspended.
var transitions = map[EventStatus][]EventStatus{
	StatusReported:   {StatusRegistered, StatusRejected},
	StatusRegistered: {StatusDispatched},
	StatusDispatched: {StatusHandling, StatusDispatched, StatusSuspended},
	StatusHandling:   {StatusHandled, StatusDispatched, StatusSuspended},
	StatusHandled:    {StatusVerified, StatusReturned},
	StatusReturned:   {StatusDispatched},
	StatusVerified:   {StatusClosed},
	StatusSuspended:  {StatusDispatched, StatusHandling},
}

// Transitions lists the statuses an event may move to from this one, nil
// for a final (or unknown) status. The slice is the caller's own.
func Transitions(from EventStatus) []EventStatus {
	return slices.Clone(transitions[from])
}

// TransitionError is an illegal move: the API answers it with 409 and the
// allowed moves, so a client can offer them.
type TransitionError struct {
	From    EventStatus   `json:"from"`
	To      EventStatus   `json:"to"`
	Allowed []EventStatus `json:"allowed"`
	// Reason explains a refusal of a move that is otherwise in the state
	// machine (a re-dispatch to the same department) or of an unknown status.
	Reason string `json:"reason,omitempty"`
}

func (e *TransitionError) Error() string {
	head := fmt.Sprintf("cannot move an event from %q to %q", geo.Excerpt(string(e.From), geo.MaxExcerpt), geo.Excerpt(string(e.To), geo.MaxExcerpt))
	switch {
	case e.Reason != "":
		return head + ": " + e.Reason
	case len(e.Allowed) == 0:
		return fmt.Sprintf("%s: %q is final", head, e.From)
	default:
		return head + ": allowed: " + joinNames(e.Allowed)
	}
}

// CheckTransition says whether an event in status from, currently with
// department current, may move to status to, naming department (a
// department code, or "").
//
// An illegal move is a *TransitionError. A re-dispatch (to dispatched from
// dispatched or handling) exists to send the event to someone else, so it
// must name a department other than the current one, else a
// *TransitionError with a Reason. On other moves into dispatched the
// department is optional (the class's department applies). Naming a
// department on a move that does not dispatch, or a malformed department
// code, is a plain error: the request is malformed, not the move.
func CheckTransition(from, to EventStatus, current, department string) error {
	allowed := Transitions(from)
	bad := func(reason string) error {
		return &TransitionError{From: from, To: to, Allowed: allowed, Reason: reason}
	}
	switch {
	case !from.known():
		return bad(fmt.Sprintf("unknown status %q", geo.Excerpt(string(from), geo.MaxExcerpt)))
	case !to.known():
		return bad(fmt.Sprintf("unknown status %q", geo.Excerpt(string(to), geo.MaxExcerpt)))
	case !slices.Contains(allowed, to):
		return bad("")
	}
	if department != "" {
		if to != StatusDispatched {
			return fmt.Errorf("moving an event to %q names no department: a department is named only when dispatching", geo.Excerpt(string(to), geo.MaxExcerpt))
		}
		if !ValidDepartmentCode(department) {
			return fmt.Errorf("department code %q: 1–32 letters, digits, _ or -", geo.Excerpt(department, geo.MaxExcerpt))
		}
	}
	if to == StatusSuspended && department != "" {
		return fmt.Errorf("suspending an event names no department")
	}
	if to == StatusDispatched && (from == StatusDispatched || from == StatusHandling) {
		switch department {
		case "":
			return bad("a re-dispatch must name the department to send the event to")
		case current:
			return bad(fmt.Sprintf("a re-dispatch must name a department other than the current one (%s)", current))
		}
	}
	return nil
}

// EventSource is how an event reached the centre.
type EventSource string

const (
	SourceGridWorker EventSource = "grid_worker" // 网格员 on patrol
	SourceHotline    EventSource = "hotline"     // 12345 citizen hotline
	SourceSensor     EventSource = "sensor"      // IoT device, video analytics
	SourceApp        EventSource = "app"         // citizens' mobile app or mini-program
	SourceInspection EventSource = "inspection"  // 巡查 by a department or supervisor
	SourceOther      EventSource = "other"
)

// EventSources lists every source.
var EventSources = []EventSource{
	SourceGridWorker, SourceHotline, SourceSensor, SourceApp, SourceInspection, SourceOther,
}

// ParseEventSource accepts a source name and says which names exist otherwise.
func ParseEventSource(s string) (EventSource, error) {
	for _, src := range EventSources {
		if string(src) == s {
			return src, nil
		}
	}
	return "", fmt.Errorf("unknown event source %q: use one of %s", geo.Excerpt(s, geo.MaxExcerpt), joinNames(EventSources))
}

// Event code layout: district (6) + report date YYYYMMDD (8) + sequence (6).
const (
	eventCodeLen = 20
	maxEventSeq  = 999999
)

// EventCode builds the public code of an event: the district code, the
// report date and the district's daily sequence number, 20 digits. The date
// is day's calendar date in day's own location, so the caller decides whose
// "today" counts (the city's, not the server's).
func EventCode(district string, day time.Time, seq int) (string, error) {
	if err := ValidateCode(District, district, ""); err != nil {
		return "", fmt.Errorf("event code: district: %w", err)
	}
	if seq < 1 || seq > maxEventSeq {
		return "", fmt.Errorf("event code: sequence %d is outside 1–%d", seq, maxEventSeq)
	}
	y, m, d := day.Date()
	if y < 1 || y > 9999 {
		return "", fmt.Errorf("event code: year %d does not fit 4 digits", y)
	}
	return fmt.Sprintf("%s%04d%02d%02d%06d", district, y, int(m), d, seq), nil
}

// ParseEventCode splits an event code into its district, its date (midnight
// UTC of that calendar date: a date, not an instant) and its sequence.
// Errors are *CodeError, naming the offending digits.
func ParseEventCode(code string) (district string, day time.Time, seq int, err error) {
	bad := func(rule, digits, format string, args ...any) error {
		return &CodeError{Code: code, Rule: rule, Digits: digits, Msg: fmt.Sprintf(format, args...)}
	}
	for i, r := range code {
		if r < '0' || r > '9' {
			return "", time.Time{}, 0, bad(RuleCodeDigits, strconv.Itoa(i+1), "%q is not a digit; event codes are decimal digits only", r)
		}
	}
	if len(code) != eventCodeLen {
		return "", time.Time{}, 0, bad(RuleCodeLength, "", "an event code has %d digits (district 6 + date 8 + sequence 6), this one has %d", eventCodeLen, len(code))
	}
	district = code[:6]
	if err := ValidateCode(District, district, ""); err != nil {
		return "", time.Time{}, 0, bad(RuleCodeRange, "1-6", "not a district code: %s", err.(*CodeError).Msg)
	}
	y, _ := strconv.Atoi(code[6:10])
	m, _ := strconv.Atoi(code[10:12])
	d, _ := strconv.Atoi(code[12:14])
	day = time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if y < 1 || day.Year() != y || int(day.Month()) != m || day.Day() != d {
		return "", time.Time{}, 0, bad(RuleCodeRange, "7-14", "%s is not a date (YYYYMMDD)", code[6:14])
	}
	seq, _ = strconv.Atoi(code[14:])
	if seq < 1 {
		return "", time.Time{}, 0, bad(RuleCodeRange, "15-20", "sequence starts at 000001")
	}
	return district, day, seq, nil
}

// LimitUnit is what a deadline counts: working hours or working days of
// the city's working calendar (calendar.go).
type LimitUnit string

const (
	WorkingHours LimitUnit = "working_hours"
	WorkingDays  LimitUnit = "working_days"
)

// maxLimitAmount bounds a limit so a typo in the catalogue (4000 days for
// 4 hours) cannot produce a deadline decades away unnoticed; 10,000
// working hours is about five years.
const maxLimitAmount = 10000

// Limit is the time an event class allows for handling an event, as the
// class catalogue states it (DESIGN §6: 暴露垃圾 4 working hours, 私搭乱建
// 20 working days).
type Limit struct {
	Amount int       `json:"amount"`
	Unit   LimitUnit `json:"unit"`
}

// Validate checks a limit before it enters the catalogue.
func (l Limit) Validate() error {
	if l.Unit != WorkingHours && l.Unit != WorkingDays {
		return fmt.Errorf("limit unit %q: use %s or %s", geo.Excerpt(string(l.Unit), geo.MaxExcerpt), WorkingHours, WorkingDays)
	}
	if l.Amount < 1 || l.Amount > maxLimitAmount {
		return fmt.Errorf("limit amount %d is outside 1–%d", l.Amount, maxLimitAmount)
	}
	return nil
}

// String reads as a person says it: "4 working hours", "1 working day".
func (l Limit) String() string {
	var unit string
	switch l.Unit {
	case WorkingHours:
		unit = "working hour"
	case WorkingDays:
		unit = "working day"
	default:
		return fmt.Sprintf("%d %s", l.Amount, l.Unit)
	}
	if l.Amount != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", l.Amount, unit)
}

// EventClass is one entry of the event class catalogue: what the problem
// is, who must handle it and how fast. The catalogue is data (DESIGN §6),
// so cities can extend it and the 2026 revision can change code widths.
type EventClass struct {
	Code       string `json:"code"` // e.g. "0102": major + minor
	Major      string `json:"major"`
	MajorName  string `json:"major_name"`
	Minor      string `json:"minor"`
	Name       string `json:"name"`
	Department string `json:"department"` // code of the responsible department
	Limit      Limit  `json:"limit"`
}

var departmentCode = regexp.MustCompile(`^[0-9A-Za-z_-]{1,32}$`)

// ValidDepartmentCode reports whether s can name a department: 1–32 ASCII
// letters, digits, _ or -.
func ValidDepartmentCode(s string) bool { return departmentCode.MatchString(s) }

// Validate checks a class before it enters the catalogue. Major and minor
// are optional (a city's own classes may have neither); when given, they
// are digits and spell the code, so the code's prefix keeps naming the
// major class as in GB/T 30428.2.
func (c EventClass) Validate() error {
	if !classCode.MatchString(c.Code) {
		return fmt.Errorf("event class code %q: 1–32 letters, digits or _", geo.Excerpt(c.Code, geo.MaxExcerpt))
	}
	if c.Major != "" || c.Minor != "" {
		if c.Major != "" && !digitsOnly.MatchString(c.Major) {
			return fmt.Errorf("event class %s: major %q: digits only", c.Code, geo.Excerpt(c.Major, geo.MaxExcerpt))
		}
		if c.Minor != "" && !digitsOnly.MatchString(c.Minor) {
			return fmt.Errorf("event class %s: minor %q: digits only", c.Code, geo.Excerpt(c.Minor, geo.MaxExcerpt))
		}
		if c.Major+c.Minor != c.Code {
			return fmt.Errorf("event class %s: major %q + minor %q must equal the code", c.Code, geo.Excerpt(c.Major, geo.MaxExcerpt), geo.Excerpt(c.Minor, geo.MaxExcerpt))
		}
	}
	if strings.TrimSpace(c.Name) == "" {
		return fmt.Errorf("event class %s: name is missing", c.Code)
	}
	if c.Department == "" {
		return fmt.Errorf("event class %s: department is missing", c.Code)
	}
	if !ValidDepartmentCode(c.Department) {
		return fmt.Errorf("event class %s: department %q: 1–32 letters, digits, _ or -", c.Code, geo.Excerpt(c.Department, geo.MaxExcerpt))
	}
	if err := c.Limit.Validate(); err != nil {
		return fmt.Errorf("event class %s: %w", c.Code, err)
	}
	return nil
}

// Overdue reports whether an event is past its deadline. It is derived,
// never stored, so it cannot go stale: an open event whose deadline lies
// before now. An event without a deadline (zero time) is never overdue,
// and neither is one whose clock has stopped (handled, verified, final).
func Overdue(status EventStatus, deadline, now time.Time) bool {
	return status.Open() && !deadline.IsZero() && now.After(deadline)
}

// CheckResume says whether a suspended event may move to "to": lifting a
// suspension returns the event to the status it was suspended from, so
// that the suspension neither skips nor repeats a step.
func CheckResume(suspendedFrom, to EventStatus) error {
	if to != suspendedFrom {
		return &TransitionError{From: StatusSuspended, To: to, Allowed: []EventStatus{suspendedFrom},
			Reason: fmt.Sprintf("lifting the suspension returns the event to %q, the status it was suspended from", suspendedFrom)}
	}
	return nil
}

// ExtensionAllowed says whether the handler may ask for more time in this
// status: while the department still works on the event (its clock runs).
func ExtensionAllowed(s EventStatus) bool {
	return s == StatusDispatched || s == StatusHandling || s == StatusReturned
}
