package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// The event configuration: classes with their departments and deadlines,
// departments, and the working calendar. Every edit takes effect for the
// next report on every server (reports read the configuration's version in
// their own transaction); events already reported keep their deadline.

// getEventClass: GET /v1/event-classes/{code}
func (s *Server) getEventClass(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	c, err := s.store.EventClass(r.Context(), code)
	if err != nil {
		return notFoundAs(err, "no event class %q", code)
	}
	etag := versionETag(c.Version)
	if notModified(w, r, etag) {
		return nil
	}
	w.Header().Set("ETag", etag)
	writeJSON(w, http.StatusOK, ctJSON, c)
	return nil
}

// putEventClass: PUT /v1/event-classes/{code} creates or replaces a class
// (department, deadline). With If-Match the class must still be at that
// version (412 otherwise).
func (s *Server) putEventClass(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	var c grid.EventClass
	if err := readStrict(w, r, &c, `an event class {"code", "major", "major_name", "minor", "name", "department", "limit": {"amount", "unit"}}`); err != nil {
		return err
	}
	if err := samePathCode(&c.Code, code, ""); err != nil {
		return err
	}
	ifVersion, err := versionPrecondition(r, "event class "+code)
	if err != nil {
		return err
	}
	row, created, err := s.store.PutEventClass(r.Context(), c, ifVersion)
	if err != nil {
		return notFoundAs(err, "no event class %q (PUT without If-Match creates it)", code)
	}
	w.Header().Set("ETag", versionETag(row.Version))
	writeJSON(w, createdOr(created), ctJSON, row)
	return nil
}

// putDepartment: PUT /v1/departments/{code} {"name": …} creates or renames.
func (s *Server) putDepartment(w http.ResponseWriter, r *http.Request) error {
	code := mux.Vars(r)["code"]
	var d data.Department
	if err := readStrict(w, r, &d, `a department {"code", "name"}`); err != nil {
		return err
	}
	if err := samePathCode(&d.Code, code, ""); err != nil {
		return err
	}
	created, err := s.store.PutDepartment(r.Context(), d)
	if err != nil {
		return err
	}
	writeJSON(w, createdOr(created), ctJSON, d)
	return nil
}

// getCalendar: GET /v1/calendar — working periods, time zone, and the
// dates that differ from their weekday.
func (s *Server) getCalendar(w http.ResponseWriter, r *http.Request) error {
	c, err := s.store.Calendar(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, c)
	return nil
}

// putWorkHours: PUT /v1/calendar/hours {"timezone", "periods"}
func (s *Server) putWorkHours(w http.ResponseWriter, r *http.Request) error {
	var h data.WorkHours
	if err := readStrict(w, r, &h, `{"timezone": "Asia/Shanghai", "periods": "09:00-12:00,14:00-18:00"}`); err != nil {
		return err
	}
	if err := s.store.PutWorkHours(r.Context(), h); err != nil {
		return err
	}
	return s.getCalendar(w, r)
}

// dayParam is the {day} of a calendar path, checked.
func dayParam(r *http.Request) (string, error) {
	day := mux.Vars(r)["day"]
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return "", &paramError{"day", fmt.Sprintf("%q is not a date (YYYY-MM-DD)", geo.Excerpt(day, geo.MaxExcerpt))}
	}
	if !storableTime(t) {
		return "", &paramError{"day", fmt.Sprintf("%s: there is no year 0000; years run from 0001 to 9999", day)}
	}
	return day, nil
}

// putCalendarDay: PUT /v1/calendar/days/{day} {"kind": "holiday"|"workday", "name"}
func (s *Server) putCalendarDay(w http.ResponseWriter, r *http.Request) error {
	day, err := dayParam(r)
	if err != nil {
		return err
	}
	var d data.CalendarDay
	if err := readStrict(w, r, &d, `{"kind": "holiday" or "workday", "name": "…"}`); err != nil {
		return err
	}
	if d.Day != "" && d.Day != day {
		return &paramError{"day", fmt.Sprintf("the body's day %q differs from the path's %q", d.Day, day)}
	}
	d.Day = day
	if d.Kind == "" {
		return invalidMember("kind", "kind is missing: holiday or workday (DELETE the day to clear it)")
	}
	if err := s.store.PutCalendarDay(r.Context(), d); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, d)
	return nil
}

// deleteCalendarDay: DELETE /v1/calendar/days/{day}: the date follows its
// weekday again.
func (s *Server) deleteCalendarDay(w http.ResponseWriter, r *http.Request) error {
	day, err := dayParam(r)
	if err != nil {
		return err
	}
	if err := s.store.PutCalendarDay(r.Context(), data.CalendarDay{Day: day}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
