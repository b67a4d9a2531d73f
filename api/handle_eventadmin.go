package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"gridmap/data"
	"gridmap/grid"
)

// The event configuration: classes with their departments and deadlines,
// departments, and the working calendar. Every edit takes effect for the
// next report on every server (reports read the configuration's version in
// their own transaction); events already reported keep their deadline.

// listEventClasses: GET /v1/event-classes
func (s *Server) listEventClasses(w http.ResponseWriter, r *http.Request) {
	cs, err := s.store.EventClasses(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"classes": cs})
}

// getEventClass: GET /v1/event-classes/{code}
func (s *Server) getEventClass(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	c, err := s.store.EventClass(r.Context(), code)
	if errors.Is(err, data.ErrNotFound) {
		notFound(w, r, fmt.Sprintf("no event class %q", code))
		return
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	etag := `"` + strconv.Itoa(c.Version) + `"`
	if notModified(w, r, etag) {
		return
	}
	w.Header().Set("ETag", etag)
	writeJSON(w, http.StatusOK, c)
}

// putEventClass: PUT /v1/event-classes/{code} creates or replaces a class
// (department, deadline). With If-Match the class must still be at that
// version (412 otherwise).
func (s *Server) putEventClass(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	raw := readBody(w, r)
	if raw == nil {
		return
	}
	var c grid.EventClass
	if !decodeStrict(w, r, raw, &c, `an event class {"code", "major", "major_name", "minor", "name", "department", "limit": {"amount", "unit"}}`) {
		return
	}
	if c.Code == "" {
		c.Code = code
	}
	if c.Code != code {
		badParam(w, r, "code", fmt.Sprintf("the body's code %q differs from the path's %q", c.Code, code))
		return
	}
	ifVersion, ok := versionPrecondition(w, r, "event class "+code)
	if !ok {
		return
	}
	row, created, err := s.store.PutEventClass(r.Context(), c, ifVersion)
	var stale *data.StaleError
	switch {
	case errors.Is(err, data.ErrNotFound):
		notFound(w, r, fmt.Sprintf("no event class %q (PUT without If-Match creates it)", code))
		return
	case errors.As(err, &stale):
		writeProblem(w, r, Problem{Type: probStale, Title: "Stale version", Status: http.StatusPreconditionFailed,
			Detail: stale.Error(), Extensions: map[string]any{"etag": stale.Current}})
		return
	case err != nil:
		objectFail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("ETag", `"`+strconv.Itoa(row.Version)+`"`)
	writeJSON(w, status, row)
}

// versionPrecondition reads If-Match as one version ETag ("3"); 0 when
// absent. A malformed one has been answered (412: it can name no version).
func versionPrecondition(w http.ResponseWriter, r *http.Request, what string) (int, bool) {
	tags := entityTags(r, "If-Match")
	if len(tags) == 0 {
		return 0, true
	}
	var v int
	if len(tags) == 1 && tags[0] == "*" {
		return 0, true
	}
	if len(tags) != 1 {
		badParam(w, r, "If-Match", "name one ETag: the version read")
		return 0, false
	}
	if _, err := fmt.Sscanf(tags[0], `"%d"`, &v); err != nil || v <= 0 {
		writeProblem(w, r, Problem{Type: probStale, Title: "Stale version", Status: http.StatusPreconditionFailed,
			Detail: fmt.Sprintf("If-Match %s names no version of %s; GET it for its ETag", tags[0], what)})
		return 0, false
	}
	return v, true
}

// listDepartments: GET /v1/departments
func (s *Server) listDepartments(w http.ResponseWriter, r *http.Request) {
	ds, err := s.store.Departments(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"departments": ds})
}

// putDepartment: PUT /v1/departments/{code} {"name": …} creates or renames.
func (s *Server) putDepartment(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	raw := readBody(w, r)
	if raw == nil {
		return
	}
	var d data.Department
	if !decodeStrict(w, r, raw, &d, `a department {"code", "name"}`) {
		return
	}
	if d.Code == "" {
		d.Code = code
	}
	if d.Code != code {
		badParam(w, r, "code", fmt.Sprintf("the body's code %q differs from the path's %q", d.Code, code))
		return
	}
	created, err := s.store.PutDepartment(r.Context(), d)
	if err != nil {
		objectFail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, d)
}

// getCalendar: GET /v1/calendar — working periods, time zone, and the
// dates that differ from their weekday.
func (s *Server) getCalendar(w http.ResponseWriter, r *http.Request) {
	c, err := s.store.Calendar(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// putWorkHours: PUT /v1/calendar/hours {"timezone", "periods"}
func (s *Server) putWorkHours(w http.ResponseWriter, r *http.Request) {
	raw := readBody(w, r)
	if raw == nil {
		return
	}
	var h data.WorkHours
	if !decodeStrict(w, r, raw, &h, `{"timezone": "Asia/Shanghai", "periods": "09:00-12:00,14:00-18:00"}`) {
		return
	}
	if err := s.store.PutWorkHours(r.Context(), h); err != nil {
		objectFail(w, r, err)
		return
	}
	s.getCalendar(w, r)
}

// putCalendarDay: PUT /v1/calendar/days/{day} {"kind": "holiday"|"workday", "name"}
func (s *Server) putCalendarDay(w http.ResponseWriter, r *http.Request) {
	day := mux.Vars(r)["day"]
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		badParam(w, r, "day", fmt.Sprintf("%q is not a date (YYYY-MM-DD)", day))
		return
	}
	raw := readBody(w, r)
	if raw == nil {
		return
	}
	var d data.CalendarDay
	if !decodeStrict(w, r, raw, &d, `{"kind": "holiday" or "workday", "name": "…"}`) {
		return
	}
	if d.Day != "" && d.Day != day {
		badParam(w, r, "day", fmt.Sprintf("the body's day %q differs from the path's %q", d.Day, day))
		return
	}
	d.Day = day
	if d.Kind == "" {
		invalidMember(w, r, "kind", "kind is missing: holiday or workday (DELETE the day to clear it)")
		return
	}
	if err := s.store.PutCalendarDay(r.Context(), d); err != nil {
		objectFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// deleteCalendarDay: DELETE /v1/calendar/days/{day}: the date follows its
// weekday again.
func (s *Server) deleteCalendarDay(w http.ResponseWriter, r *http.Request) {
	day := mux.Vars(r)["day"]
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		badParam(w, r, "day", fmt.Sprintf("%q is not a date (YYYY-MM-DD)", day))
		return
	}
	if err := s.store.PutCalendarDay(r.Context(), data.CalendarDay{Day: day}); err != nil {
		objectFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
