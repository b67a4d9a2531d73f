package api

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// Limits of a report.
const (
	maxEventBodyBytes  = 64 << 10
	maxDescription     = 4000
	maxShortText       = 200
	maxMedia           = 20
	maxMediaURL        = 2048
	maxIdempotencyKey  = 255
	occurredAtFutureOK = 5 * time.Minute // clock skew of a reporter's device
)

// checkTextLength refuses a note or reason of an event's workflow longer
// than a report's description may be, naming the member.
func checkTextLength(member, text string) error {
	if utf8.RuneCountInString(text) > maxDescription {
		return invalidMember(member, fmt.Sprintf("%s has more than %d characters", member, maxDescription))
	}
	return nil
}

func (s *Server) eventRoutes(r *mux.Router) {
	s.handleWrite(r, "/v1/events", auth.Report, s.reportEvent, http.MethodPost)
	s.handle(r, "/v1/events", s.listEvents, http.MethodGet)
	s.handle(r, "/v1/events/stream", s.eventStream, http.MethodGet)
	s.handle(r, "/v1/events/{code}", s.getEvent, http.MethodGet)
	s.handleWrite(r, "/v1/events/{code}/transitions", auth.Dispatch, s.transitionEvent, http.MethodPost)
	s.handle(r, "/v1/event-classes", listed("classes", s.store.EventClasses), http.MethodGet)
	s.handle(r, "/v1/event-classes/{code}", s.getEventClass, http.MethodGet)
	s.handleWrite(r, "/v1/event-classes/{code}", auth.Administer, s.putEventClass, http.MethodPut)
	s.handle(r, "/v1/departments", listed("departments", s.store.Departments), http.MethodGet)
	s.handleWrite(r, "/v1/departments/{code}", auth.Administer, s.putDepartment, http.MethodPut)
	s.handle(r, "/v1/calendar", s.getCalendar, http.MethodGet)
	s.handleWrite(r, "/v1/calendar/hours", auth.Administer, s.putWorkHours, http.MethodPut)
	s.handleWrite(r, "/v1/calendar/days/{day}", auth.Administer, s.putCalendarDay, http.MethodPut)
	s.handleWrite(r, "/v1/calendar/days/{day}", auth.Administer, s.deleteCalendarDay, http.MethodDelete)
}

// reportBody is POST /v1/events. Pointers tell a missing member from a zero.
type reportBody struct {
	Class       string   `json:"class"`
	Lon         *float64 `json:"lon"`
	Lat         *float64 `json:"lat"`
	CRS         string   `json:"crs"`
	Description string   `json:"description"`
	Source      string   `json:"source"`
	Reporter    string   `json:"reporter"`
	Media       []string `json:"media"`
	OccurredAt  *string  `json:"occurred_at"` // parsed in checkReport, so an error names the member
}

// reportEvent: POST /v1/events. Located, coded, routed and logged in one
// transaction; with an Idempotency-Key the same key and body answer the
// same event (200, Idempotent-Replayed: true), another body a 422.
func (s *Server) reportEvent(w http.ResponseWriter, r *http.Request) error {
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	key, err := headerText(r, "Idempotency-Key")
	if err != nil {
		return err
	}
	if len(key) > maxIdempotencyKey || strings.ContainsFunc(key, func(c rune) bool { return c < 0x20 || c > 0x7e }) {
		return badRequest("Bad Idempotency-Key", fmt.Sprintf("Idempotency-Key must be 1–%d printable ASCII characters (a UUID is a good choice)", maxIdempotencyKey))
	}
	raw, err := readBodyMax(w, r, maxEventBodyBytes)
	if err != nil {
		return err
	}
	var b reportBody
	if err := decodeStrict(raw, &b, "a JSON object with class, lon, lat, source and optional crs, description, reporter, media, occurred_at"); err != nil {
		return err
	}
	if err := bodyCRS(&b, crs, r.URL.Query().Has("crs")); err != nil {
		return err
	}
	ev, err := s.checkReport(r, &b)
	if err != nil {
		return err
	}
	if err := need(r, auth.Report, ev.Location.Grid.Code); err != nil {
		return err
	}
	ev.Actor = identityOf(r).Actor
	if p, err := s.callerPerson(r); err != nil {
		return err
	} else if p != nil {
		ev.ReporterID = p.ID
	}
	if key != "" {
		// The hash of the decoded body: the same report sent with other
		// spacing or member order is the same report. The actor is part
		// of it: another credential's key is never answered its event.
		canon, _ := json.Marshal(b)
		h := sha256.Sum256(append(canon, "\x00"+ev.Actor...))
		ev.IdempotencyKey, ev.BodyHash = key, h[:]
	}
	res, err := s.reporter.Report(r.Context(), *ev)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	s.metrics.eventReported(res.Replayed)
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/events/"+res.Event.Code)
	s.writeEvent(w, status, res.Event, crs)
	return nil
}

// bodyCRS reconciles ?crs= with the body's crs member (kept from before
// ?crs= existed): either names the system of lon and lat; both must agree.
// A ?crs= the body does not repeat is written into it, so the idempotency
// hash of the body covers what its lon and lat mean. Only the query names
// the system of the answer: a client that sent crs in the body alone was
// answered in WGS-84 before, and still is.
func bodyCRS(b *reportBody, crs geo.CRS, given bool) error {
	if !given {
		return nil // the body's crs alone, checked with the other members
	}
	if b.CRS == "" {
		if crs != geo.WGS84 {
			b.CRS = string(crs)
		}
		return nil
	}
	inBody, err := geo.ParseCRS(b.CRS)
	if err != nil {
		return invalidMember("crs", err.Error())
	}
	if inBody != crs {
		return &paramError{"crs", fmt.Sprintf("crs=%s and the body's crs %q disagree: name the coordinate system of lon and lat once, or the same in both", crs, geo.Excerpt(b.CRS, geo.MaxExcerpt))}
	}
	return nil
}

// checkReport applies the rules that need no database: members, ranges,
// the coordinate system, and the location (in memory).
func (s *Server) checkReport(r *http.Request, b *reportBody) (*data.NewEvent, error) {
	switch {
	case b.Class == "":
		return nil, invalidMember("class", "class is missing: an event class code such as 0102 (GET /v1/event-classes lists them)")
	case b.Lon == nil || b.Lat == nil:
		return nil, invalidMember(map[bool]string{true: "lon", false: "lat"}[b.Lon == nil], "lon and lat are required: the position of the event")
	case !(*b.Lon >= -180 && *b.Lon <= 180):
		return nil, invalidMember("lon", fmt.Sprintf("longitude %g is out of range [-180, 180]", *b.Lon))
	case !(*b.Lat >= -90 && *b.Lat <= 90):
		return nil, invalidMember("lat", fmt.Sprintf("latitude %g is out of range [-90, 90]", *b.Lat))
	case b.Source == "":
		return nil, invalidMember("source", fmt.Sprintf("source is missing: one of %s", sourceNames()))
	case utf8.RuneCountInString(b.Description) > maxDescription:
		return nil, invalidMember("description", fmt.Sprintf("description has %d characters; at most %d", utf8.RuneCountInString(b.Description), maxDescription))
	case utf8.RuneCountInString(b.Reporter) > maxShortText:
		return nil, invalidMember("reporter", fmt.Sprintf("reporter has more than %d characters", maxShortText))
	case len(b.Media) > maxMedia:
		return nil, invalidMember("media", fmt.Sprintf("media has %d links; at most %d", len(b.Media), maxMedia))
	}
	var occurred *time.Time
	if b.OccurredAt != nil {
		t, err := time.Parse(time.RFC3339, *b.OccurredAt)
		switch {
		case err != nil:
			return nil, invalidMember("occurred_at", fmt.Sprintf("occurred_at %q is not an RFC 3339 time such as 2026-11-23T09:30:00+08:00", geo.Excerpt(*b.OccurredAt, 60)))
		case !storableTime(t):
			return nil, invalidMember("occurred_at", fmt.Sprintf("occurred_at %s is outside the years 0001 to 9999 (in UTC too)", *b.OccurredAt))
		case t.After(time.Now().Add(occurredAtFutureOK)):
			return nil, invalidMember("occurred_at", fmt.Sprintf("occurred_at %s is in the future", t.Format(time.RFC3339)))
		}
		occurred = &t
	}
	crs, err := geo.ParseCRS(b.CRS)
	if err != nil {
		return nil, invalidMember("crs", err.Error())
	}
	src, err := grid.ParseEventSource(b.Source)
	if err != nil {
		return nil, invalidMember("source", err.Error())
	}
	for i, m := range b.Media {
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(m) > maxMediaURL {
			return nil, invalidMember(fmt.Sprintf("media[%d]", i), fmt.Sprintf("media[%d] %q: want an http(s) URL of at most %d bytes", i, geo.Excerpt(m, 80), maxMediaURL))
		}
	}
	lon, lat := geo.ToWGS84(crs, *b.Lon, *b.Lat)
	loc := s.Locator().Locate(lon, lat)
	if loc.Grid == nil {
		return nil, s.outsideGrids(r, loc, lon, lat, crs)
	}
	return &data.NewEvent{Class: b.Class, Lon: lon, Lat: lat, CRS: crs, InputLon: *b.Lon, InputLat: *b.Lat, Location: loc,
		Description: b.Description, Source: src, Reporter: b.Reporter, Media: b.Media, OccurredAt: occurred}, nil
}

// outsideGrids refuses a report no grid covers, saying how far the nearest
// grid is: such a point is a wrong position (a GPS fix in the sea, swapped
// lon/lat, a coordinate system other than the one named), and an event no
// grid owns would reach no grid worker.
func (s *Server) outsideGrids(r *http.Request, loc grid.Location, lon, lat float64, crs geo.CRS) *Problem {
	detail := fmt.Sprintf("(%g, %g) in WGS-84 lies outside every grid", lon, lat)
	ext := map[string]any{"lon": lon, "lat": lat}
	if loc.District != nil {
		detail += fmt.Sprintf(", in a gap of district %s %s", loc.District.Code, loc.District.Name)
	}
	if code, name, m, err := s.store.NearestGrid(r.Context(), lon, lat); err == nil {
		detail += fmt.Sprintf("; the nearest grid is %s %s, %.0f m away", code, name, m)
		ext["nearest_grid"] = map[string]any{"code": code, "name": name, "distance_m": m}
	}
	if crs == geo.WGS84 && !geo.OutsideChina(lon, lat) {
		detail += "; if the position came from a Chinese map (Amap, Tencent, Baidu), name its crs (gcj02 or bd09)"
	}
	return &Problem{Type: probOutside, Title: "Outside every grid", Status: http.StatusUnprocessableEntity,
		Param: "lon", Detail: detail, Extensions: ext}
}

func sourceNames() string {
	var out []string
	for _, s := range grid.EventSources {
		out = append(out, string(s))
	}
	return strings.Join(out, ", ")
}

// eventFeature is an event as GeoJSON.
type eventFeature struct {
	Type       string      `json:"type"`
	ID         string      `json:"id"`
	Geometry   pointGeom   `json:"geometry"`
	Properties *data.Event `json:"properties"`
}

type pointGeom struct {
	Type        string     `json:"type"`
	Coordinates [2]float64 `json:"coordinates"`
}

func toEventFeature(e *data.Event) eventFeature {
	return eventFeature{Type: "Feature", ID: e.Code, Geometry: pointGeom{"Point", [2]float64{e.Lon, e.Lat}}, Properties: e}
}

// writeEvent answers an event, its geometry in crs (its properties keep
// the position as it was reported: input_lon, input_lat in the event's own
// crs).
func (s *Server) writeEvent(w http.ResponseWriter, status int, e *data.Event, crs geo.CRS) {
	w.Header().Set("ETag", e.ETag())
	w.Header().Set("Cache-Control", "no-cache")
	setContentCRS(w, crs)
	writeJSON(w, status, ctGeoJSON, eventFeatureIn(crs)(e))
}

// eventFeatureIn is toEventFeature with the geometry in crs.
func eventFeatureIn(crs geo.CRS) func(*data.Event) eventFeature {
	return func(e *data.Event) eventFeature {
		f := toEventFeature(e)
		f.Geometry.Coordinates[0], f.Geometry.Coordinates[1] = pointFromWGS84(crs, e.Lon, e.Lat)
		return f
	}
}

// eventCodeParam is the {code} of an event path, checked.
func eventCodeParam(r *http.Request) (string, error) {
	code := mux.Vars(r)["code"]
	if _, _, _, err := grid.ParseEventCode(code); err != nil {
		return "", &paramError{"code", fmt.Sprintf("event code %q: %v", geo.Excerpt(code, geo.MaxExcerpt), err)}
	}
	return code, nil
}

// getEvent: GET /v1/events/{code}?crs=, with its log.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	code, err := eventCodeParam(r)
	if err != nil {
		return err
	}
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	e, err := s.store.GetEvent(r.Context(), code, true)
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	if err := needRead(r, e.GridCode); err != nil {
		return err
	}
	if notModified(w, r, e.ETag()) {
		return nil
	}
	s.writeEvent(w, http.StatusOK, e, crs)
	return nil
}

type transitionBody struct {
	To string `json:"to"`
	// Actor is refused: who moves an event is the credential's identity.
	Actor      *json.RawMessage `json:"actor"`
	Note       string           `json:"note"`
	Department string           `json:"department"`
	// Handler names the handler (a person of the department) a dispatch
	// sends the event to.
	Handler int64 `json:"handler"`
}

// transitionEvent: POST /v1/events/{code}/transitions. With If-Match the
// event must still be at that version (412 otherwise).
func (s *Server) transitionEvent(w http.ResponseWriter, r *http.Request) error {
	code, err := eventCodeParam(r)
	if err != nil {
		return err
	}
	raw, err := readBodyMax(w, r, maxEventBodyBytes)
	if err != nil {
		return err
	}
	var b transitionBody
	if err := decodeStrict(raw, &b, `a JSON object {"to", "note", "department", "handler"}`); err != nil {
		return err
	}
	if b.Actor != nil {
		return invalidMember("actor", "actor is not taken from the body: who makes the move is the credential's identity; leave actor out")
	}
	to, err := grid.ParseEventStatus(b.To)
	if err != nil {
		return invalidMember("to", err.Error())
	}
	if err := checkTextLength("note", b.Note); err != nil {
		return err
	}
	ifVersion, err := versionPrecondition(r, "event "+code)
	if err != nil {
		return err
	}
	person, err := s.callerPerson(r)
	if err != nil {
		return err
	}
	if b.Handler < 0 {
		return invalidMember("handler", "handler is a person's id (GET /v1/people?role=handler lists them)")
	}
	t := data.Transition{To: to, Actor: identityOf(r).Actor, Note: b.Note, Department: b.Department, IfVersion: ifVersion,
		Handler: b.Handler, Person: person}
	e, err := s.store.TransitionEvent(r.Context(), code, t)
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	s.syncTiles(r.Context())
	s.writeEvent(w, http.StatusOK, e, geo.WGS84)
	return nil
}

// listEvents: GET /v1/events?status=&class=&department=&unit=&bbox=&overdue=&from=&to=&limit=&cursor=&crs=
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	crs, err := crsParam(r)
	if err != nil {
		return err
	}
	f, err := s.eventFilter(r)
	if pe, ok := err.(*paramError); ok && pe.param == "bbox" {
		return crsError(err, crs)
	}
	if err != nil {
		return err
	}
	f.BBox = bboxToWGS84(crs, f.BBox)
	p, err := s.store.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-cache")
	setContentCRS(w, crs)
	writePage(w, r, p.Events, eventFeatureIn(crs), p.Next)
	return nil
}

// eventFilter reads the list's (and the stream's) filter parameters,
// checking every value, so a typo is a 400 rather than an empty answer.
func (s *Server) eventFilter(r *http.Request) (data.EventFilter, error) {
	q := r.URL.Query()
	f := data.EventFilter{Scopes: readScopes(r)}
	var err error
	if f.Statuses, err = statusesParam(q); err != nil {
		return f, err
	}
	// The configuration only when a parameter needs it: most lists (the
	// wall's, by unit and status) do not.
	var cfg *data.EventConfig
	if q.Has("class") || q.Has("department") || q.Has("from") || q.Has("to") {
		if cfg, err = s.store.EventConfig(r.Context()); err != nil {
			return f, err
		}
	}
	for _, c := range listParam(q, "class") {
		if err := knownEventClass(cfg, c); err != nil {
			return f, err
		}
		f.Classes = append(f.Classes, c)
	}
	for _, d := range listParam(q, "department") {
		if _, ok := cfg.Departments[d]; !ok {
			return f, &paramError{"department", fmt.Sprintf("unknown department %q (GET /v1/departments lists them)", d)}
		}
		f.Departments = append(f.Departments, d)
	}
	if f.Unit, err = s.unitParam(r, q.Get("unit")); err != nil {
		return f, err
	}
	if f.BBox, err = parseBBox(q.Get("bbox")); err != nil {
		return f, err
	}
	if q.Has("overdue") {
		b, err := parseBoolParam(q, "overdue")
		if err != nil {
			return f, err
		}
		f.Overdue = &b
	}
	if f.From, f.To, err = periodParams(q, cfg); err != nil {
		return f, err
	}
	if f.Limit, err = parseIntParam(q, "limit", 100, 1, 1000); err != nil {
		return f, err
	}
	f.Cursor = q.Get("cursor")
	return f, nil
}

// knownEventClass checks class= against the configuration.
func knownEventClass(cfg *data.EventConfig, class string) error {
	if _, ok := cfg.Classes[class]; !ok {
		return &paramError{"class", fmt.Sprintf("unknown event class %q (GET /v1/event-classes lists them)", class)}
	}
	return nil
}

// listParam splits a comma-separated parameter (given once or repeated).
func listParam(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func statusesParam(q url.Values) ([]grid.EventStatus, error) {
	var out []grid.EventStatus
	for _, v := range listParam(q, "status") {
		st, err := grid.ParseEventStatus(v)
		if err != nil {
			return nil, &paramError{"status", err.Error()}
		}
		out = append(out, st)
	}
	return out, nil
}

// unitParam checks that unit= names a current base unit.
func (s *Server) unitParam(r *http.Request, code string) (string, error) {
	if code == "" {
		return "", nil
	}
	if _, err := s.store.GetUnit(r.Context(), grid.BaseLayer, code, data.GeometryNone); err != nil {
		if errors.Is(err, data.ErrNotFound) {
			return "", &paramError{"unit", fmt.Sprintf("no unit with code %q", code)}
		}
		return "", err
	}
	return code, nil
}

// timeParam reads an RFC 3339 time, or a date (YYYY-MM-DD, midnight in the
// calendar's time zone).
// periodParams reads from and to (timeParam) and refuses a period that does
// not end after it starts.
func periodParams(q url.Values, cfg *data.EventConfig) (from, to *time.Time, err error) {
	if from, err = timeParam(q, "from", cfg); err != nil {
		return nil, nil, err
	}
	if to, err = timeParam(q, "to", cfg); err != nil {
		return nil, nil, err
	}
	if from != nil && to != nil && !from.Before(*to) {
		return nil, nil, &paramError{"to", "to must be after from"}
	}
	return from, to, nil
}

func timeParam(q url.Values, name string, cfg *data.EventConfig) (*time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t, err = time.ParseInLocation(time.DateOnly, v, cfg.Calendar.Location())
	}
	if err == nil {
		if !storableTime(t) {
			return nil, &paramError{name, fmt.Sprintf("%s=%q is outside the years 0001 to 9999 (in UTC too)", name, v)}
		}
		return &t, nil
	}
	return nil, &paramError{name, fmt.Sprintf("%s=%q: want an RFC 3339 time (2026-11-23T09:00:00+08:00) or a date (2026-11-23)", name, geo.Excerpt(v, geo.MaxExcerpt))}
}
