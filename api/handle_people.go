package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"gridmap/auth"
	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// People, grid assignment, tasks, extensions and figures (issue 16;
// docs/api.md, People and their work). The contract of these routes is
// api/openapi/workers.yaml.

// Bounds of the people routes.
const (
	maxPeopleCSVBytes = 8 << 20
	defaultMaxLoad    = 3 // grids one worker may be responsible for before the coverage report names them
)

func (s *Server) peopleRoutes(r *mux.Router) {
	// The fixed paths first: {id} would match them.
	s.handle(r, "/v1/people/coverage", s.getCoverage, http.MethodGet)
	s.handle(r, "/v1/people/assignments", s.listAssignments, http.MethodGet)
	s.handleWrite(r, "/v1/people/import", auth.Administer, s.importPeople, http.MethodPost)
	s.handle(r, "/v1/people", s.listPeople, http.MethodGet)
	s.handleWrite(r, "/v1/people", auth.Administer, s.createPerson, http.MethodPost)
	s.handle(r, "/v1/people/{id}", s.getPerson, http.MethodGet)
	s.handleWrite(r, "/v1/people/{id}", auth.Administer, s.putPerson, http.MethodPut)
	s.handle(r, "/v1/people/{id}/tasks", s.personTasks, http.MethodGet)
	s.handle(r, "/v1/me/tasks", s.myTasks, http.MethodGet)
	s.handle(r, "/v1/grids/{code}/workers", s.getGridWorkers, http.MethodGet)
	s.handleWrite(r, "/v1/grids/{code}/workers", auth.Administer, s.putGridWorkers, http.MethodPut)
	s.handleWrite(r, "/v1/events/{code}/work", auth.Report, s.workEvent, http.MethodPost)
	s.handle(r, "/v1/events/{code}/extensions", s.listExtensions, http.MethodGet)
	s.handleWrite(r, "/v1/events/{code}/extensions", auth.Report, s.requestExtension, http.MethodPost)
	s.handleWrite(r, "/v1/events/{code}/extensions/{n}", auth.Report, s.decideExtension, http.MethodPost)
	s.handle(r, "/v1/figures", s.getFigures, http.MethodGet)
}

// callerPerson is the active person the request's credential speaks for,
// or nil: a credential of an inactive person acts for nobody.
func (s *Server) callerPerson(r *http.Request) (*data.PersonRow, error) {
	id := identityOf(r)
	if id == nil || id.Person == 0 {
		return nil, nil
	}
	p, err := s.store.Person(r.Context(), id.Person)
	if errors.Is(err, data.ErrNotFound) || (err == nil && p.Status != grid.PersonActive) {
		return nil, nil
	}
	return p, err
}

// shownPerson masks the phone for everyone but admins (138****1234) and
// hides the OIDC subject: knowing whose account it is helps no one else.
func shownPerson(r *http.Request, p *data.PersonRow) *data.PersonRow {
	if id := identityOf(r); id != nil && id.May(auth.Administer) {
		return p
	}
	c := *p
	c.Phone = grid.MaskPhone(c.Phone)
	c.OIDCSubject = ""
	return &c
}

// personBody is POST /v1/people and PUT /v1/people/{id}.
type personBody struct {
	Name       string  `json:"name"`
	Phone      *string `json:"phone"`
	Role       string  `json:"role"`
	Department *string `json:"department"`
	UnitCode   *string `json:"unit_code"`
	Status     string  `json:"status"`
	// OIDCSubject: absent or null clears it, as PUT replaces the person.
	OIDCSubject *string `json:"oidc_subject"`
}

func (b personBody) person() grid.Person {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return grid.Person{Name: b.Name, Phone: str(b.Phone), Role: grid.PersonRole(b.Role), Department: str(b.Department),
		UnitCode: str(b.UnitCode), Status: grid.PersonStatus(b.Status), OIDCSubject: str(b.OIDCSubject)}
}

const personBodyWant = `a JSON object {"name", "role", "phone", "department", "unit_code", "status", "oidc_subject"}`

func personIDParam(r *http.Request) (int64, error) {
	raw := mux.Vars(r)["id"]
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, &paramError{"id", fmt.Sprintf("person id %q is not a positive integer", geo.Excerpt(raw, geo.MaxExcerpt))}
	}
	return id, nil
}

func (s *Server) writePerson(w http.ResponseWriter, r *http.Request, status int, p *data.PersonRow) {
	w.Header().Set("ETag", versionETag(p.Version))
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, status, ctJSON, shownPerson(r, p))
}

func (s *Server) createPerson(w http.ResponseWriter, r *http.Request) error {
	var b personBody
	if err := readStrict(w, r, &b, personBodyWant); err != nil {
		return err
	}
	p, err := s.store.CreatePerson(r.Context(), b.person())
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/v1/people/%d", p.ID))
	s.writePerson(w, r, http.StatusCreated, p)
	return nil
}

func (s *Server) putPerson(w http.ResponseWriter, r *http.Request) error {
	id, err := personIDParam(r)
	if err != nil {
		return err
	}
	ifVersion, err := versionPrecondition(r, fmt.Sprintf("person %d", id))
	if err != nil {
		return err
	}
	var b personBody
	if err := readStrict(w, r, &b, personBodyWant); err != nil {
		return err
	}
	p, err := s.store.PutPerson(r.Context(), id, b.person(), ifVersion)
	if err != nil {
		return notFoundAs(err, "no person %d", id)
	}
	s.writePerson(w, r, http.StatusOK, p)
	return nil
}

func (s *Server) getPerson(w http.ResponseWriter, r *http.Request) error {
	id, err := personIDParam(r)
	if err != nil {
		return err
	}
	p, err := s.store.Person(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "no person %d", id)
	}
	if notModified(w, r, versionETag(p.Version)) {
		return nil
	}
	s.writePerson(w, r, http.StatusOK, p)
	return nil
}

// listPeople: GET /v1/people?role=&department=&status=&unit=&limit=&cursor=
func (s *Server) listPeople(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := data.PeopleFilter{Role: grid.PersonRole(q.Get("role")), Department: q.Get("department"), Status: grid.PersonStatus(q.Get("status")),
		Unit: q.Get("unit"), Cursor: q.Get("cursor")}
	if f.Unit != "" && !isDigits(f.Unit) {
		return &paramError{"unit", fmt.Sprintf("unit=%q is not a unit code", geo.Excerpt(f.Unit, geo.MaxExcerpt))}
	}
	var err error
	if f.Limit, err = parseIntParam(q, "limit", 100, 1, maxListLimit); err != nil {
		return err
	}
	page, err := s.store.People(r.Context(), f)
	if err != nil {
		return err
	}
	for i := range page.People {
		page.People[i] = *shownPerson(r, &page.People[i])
	}
	out := map[string]any{"people": page.People}
	if l := nextLink(r, page.Next); l != nil {
		l[0].Type = ctJSON
		out["links"] = l
	}
	writeJSON(w, http.StatusOK, ctJSON, out)
	return nil
}

// importPeople: POST /v1/people/import, a CSV body (text/csv). Every row
// or none.
func (s *Server) importPeople(w http.ResponseWriter, r *http.Request) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "text/csv" {
		return &Problem{Type: probBadRequest, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
			Detail: fmt.Sprintf("Content-Type %q: a people file is text/csv (header: name,phone,role,department,unit_code,status)", geo.Excerpt(mt, geo.MaxExcerpt))}
	}
	raw, err := readBodyMax(w, r, maxPeopleCSVBytes)
	if err != nil {
		return err
	}
	if !utf8.Valid(raw) {
		return invalidMember("body", "the people file is not UTF-8 (save it from the spreadsheet as CSV UTF-8)")
	}
	res, err := s.store.ImportPeople(r.Context(), strings.NewReader(string(raw)))
	if err != nil {
		var fe *data.FatalImportError
		if errors.As(err, &fe) {
			return badRequest("Unreadable people file", fe.Error())
		}
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, res)
	return nil
}

// gridCodeParam is the {code} of a grid path: 15 digits.
func gridCodeParam(r *http.Request) (string, error) {
	code := mux.Vars(r)["code"]
	if len(code) != grid.Grid.CodeLen() || !isDigits(code) {
		return "", &paramError{"code", fmt.Sprintf("grid code %q: a grid has a 15-digit code", geo.Excerpt(code, geo.MaxExcerpt))}
	}
	return code, nil
}

func (s *Server) getGridWorkers(w http.ResponseWriter, r *http.Request) error {
	code, err := gridCodeParam(r)
	if err != nil {
		return err
	}
	if err := needRead(r, code); err != nil {
		return err
	}
	a, err := s.store.GridWorkers(r.Context(), code)
	if err != nil {
		return notFoundAs(err, "no current base grid %s", code)
	}
	w.Header().Set("ETag", versionETag(a.Version))
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, ctJSON, a)
	return nil
}

// gridWorkersBody is PUT /v1/grids/{code}/workers.
type gridWorkersBody struct {
	Worker  *int64  `json:"worker"`
	Backups []int64 `json:"backups"`
	Reason  string  `json:"reason"`
}

func (s *Server) putGridWorkers(w http.ResponseWriter, r *http.Request) error {
	code, err := gridCodeParam(r)
	if err != nil {
		return err
	}
	var b gridWorkersBody
	if err := readStrict(w, r, &b, `a JSON object {"worker", "backups", "reason"}`); err != nil {
		return err
	}
	c := data.GridAssignmentChange{Backups: b.Backups, Actor: identityOf(r).Actor, Reason: b.Reason}
	if b.Worker != nil {
		if *b.Worker <= 0 {
			return invalidMember("worker", "worker is a person's id, or null for none")
		}
		c.Worker = *b.Worker
	}
	if utf8.RuneCountInString(b.Reason) > maxShortText {
		return invalidMember("reason", fmt.Sprintf("reason has more than %d characters", maxShortText))
	}
	if tags := entityTags(r, "If-Match"); len(tags) == 1 && tags[0] == `"0"` {
		c.IfNone = true // the grid was read never assigned
	} else if c.IfVersion, err = versionPrecondition(r, "the workers of grid "+code); err != nil {
		return err
	}
	a, err := s.store.PutGridWorkers(r.Context(), code, c)
	if err != nil {
		return notFoundAs(err, "no current base grid %s", code)
	}
	w.Header().Set("ETag", versionETag(a.Version))
	writeJSON(w, http.StatusOK, ctJSON, a)
	return nil
}

// getCoverage: GET /v1/people/coverage?unit=&max_load=
func (s *Server) getCoverage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	unit := q.Get("unit")
	if unit != "" && !isDigits(unit) {
		return &paramError{"unit", fmt.Sprintf("unit=%q is not a unit code", geo.Excerpt(unit, geo.MaxExcerpt))}
	}
	if err := needRead(r, unit); err != nil {
		return err
	}
	maxLoad, err := parseIntParam(q, "max_load", defaultMaxLoad, 1, 1000)
	if err != nil {
		return err
	}
	c, err := s.store.GridCoverage(r.Context(), unit, maxLoad)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, c)
	return nil
}

// listAssignments: GET /v1/people/assignments?unit=&person=&from=&to=&limit=
// — the reassignment log, newest first.
func (s *Server) listAssignments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	cfg, err := s.store.EventConfig(r.Context())
	if err != nil {
		return err
	}
	f := data.GridWorkerHistoryFilter{Unit: q.Get("unit")}
	if f.Unit != "" && !isDigits(f.Unit) {
		return &paramError{"unit", fmt.Sprintf("unit=%q is not a unit code", geo.Excerpt(f.Unit, geo.MaxExcerpt))}
	}
	if err := needRead(r, f.Unit); err != nil {
		return err
	}
	if v := q.Get("person"); v != "" {
		if f.Person, err = strconv.ParseInt(v, 10, 64); err != nil || f.Person <= 0 {
			return &paramError{"person", fmt.Sprintf("person=%q is not a person's id", geo.Excerpt(v, geo.MaxExcerpt))}
		}
	}
	if f.From, f.To, err = periodParams(q, cfg); err != nil {
		return err
	}
	if f.Limit, err = parseIntParam(q, "limit", 100, 1, maxListLimit); err != nil {
		return err
	}
	log, err := s.store.GridWorkerHistory(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"changes": log})
	return nil
}

func (s *Server) writeTasks(w http.ResponseWriter, r *http.Request, p *data.PersonRow) error {
	limit, err := parseIntParam(r.URL.Query(), "limit", 200, 1, maxListLimit)
	if err != nil {
		return err
	}
	tasks, err := s.store.PersonTasks(r.Context(), p, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"person": data.PersonRef{ID: p.ID, Name: p.Name, Role: p.Role}, "tasks": tasks})
	return nil
}

// personTasks: GET /v1/people/{id}/tasks — open work, overdue first.
func (s *Server) personTasks(w http.ResponseWriter, r *http.Request) error {
	id, err := personIDParam(r)
	if err != nil {
		return err
	}
	p, err := s.store.Person(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "no person %d", id)
	}
	return s.writeTasks(w, r, p)
}

// myTasks: GET /v1/me/tasks — the caller's person's open work.
func (s *Server) myTasks(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	if id == nil {
		return unauthorized(auth.Missing, "no credential was sent: send Authorization: Bearer <token>")
	}
	p, err := s.callerPerson(r)
	if err != nil {
		return err
	}
	if p == nil {
		return &Problem{Type: probForbidden, Title: "Forbidden", Status: http.StatusForbidden,
			Detail: fmt.Sprintf("%s speaks for no active person: an admin creates a token for a person (POST /v1/tokens with person_id)", id.Actor)}
	}
	return s.writeTasks(w, r, p)
}

// workBody is POST /v1/events/{code}/work.
type workBody struct {
	To   string `json:"to"`
	Note string `json:"note"`
}

// workEvent: POST /v1/events/{code}/work — a person moves their own task:
// the handler to handling or handled, the verifier (or a supervisor) to
// verified or returned. The moves are the workflow's (409 otherwise).
func (s *Server) workEvent(w http.ResponseWriter, r *http.Request) error {
	code, err := eventCodeParam(r)
	if err != nil {
		return err
	}
	var b workBody
	if err := readStrict(w, r, &b, `a JSON object {"to", "note"}`); err != nil {
		return err
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
	p, err := s.callerPerson(r)
	if err != nil {
		return err
	}
	e, err := s.store.TransitionEvent(r.Context(), code, data.Transition{To: to, Actor: identityOf(r).Actor, Note: b.Note,
		IfVersion: ifVersion, Person: p, OwnWork: true})
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	s.syncTiles(r.Context())
	s.writeEvent(w, http.StatusOK, e, geo.WGS84)
	return nil
}

func (s *Server) listExtensions(w http.ResponseWriter, r *http.Request) error {
	code, err := eventCodeParam(r)
	if err != nil {
		return err
	}
	e, err := s.store.GetEvent(r.Context(), code, false)
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	if err := needRead(r, e.GridCode); err != nil {
		return err
	}
	xs, err := s.store.Extensions(r.Context(), code)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"extensions": xs})
	return nil
}

// extensionBody is POST /v1/events/{code}/extensions.
type extensionBody struct {
	Amount int    `json:"amount"`
	Unit   string `json:"unit"`
	Reason string `json:"reason"`
}

// requestExtension: the event's handler (or a credential that may
// dispatch it) asks for more time.
func (s *Server) requestExtension(w http.ResponseWriter, r *http.Request) error {
	code, err := eventCodeParam(r)
	if err != nil {
		return err
	}
	var b extensionBody
	if err := readStrict(w, r, &b, `a JSON object {"amount", "unit", "reason"}`); err != nil {
		return err
	}
	if err := checkTextLength("reason", b.Reason); err != nil {
		return err
	}
	if u := grid.LimitUnit(b.Unit); u != grid.WorkingHours && u != grid.WorkingDays {
		return invalidMember("unit", fmt.Sprintf("unit %q: working_hours or working_days", geo.Excerpt(b.Unit, geo.MaxExcerpt)))
	}
	if b.Amount < 1 || b.Amount > 10000 {
		return invalidMember("amount", fmt.Sprintf("amount %d: 1 to 10000", b.Amount))
	}
	ifVersion, err := versionPrecondition(r, "event "+code)
	if err != nil {
		return err
	}
	p, err := s.callerPerson(r)
	if err != nil {
		return err
	}
	id := identityOf(r)
	req := data.ExtensionRequest{Limit: grid.Limit{Amount: b.Amount, Unit: grid.LimitUnit(b.Unit)}, Reason: b.Reason,
		Actor: id.Actor, Person: p, IfVersion: ifVersion}
	// The command centre may file a request for a handler: a credential
	// that may dispatch the event's grid (the guard checks the grid).
	if id.May(auth.Dispatch) {
		e, err := s.store.GetEvent(r.Context(), code, false)
		if err != nil {
			return notFoundAs(err, "no event with code %q", code)
		}
		req.MayDispatch = id.Allows(auth.Dispatch, e.GridCode)
	}
	x, e, err := s.store.RequestExtension(r.Context(), code, req)
	if err != nil {
		return notFoundAs(err, "no event with code %q", code)
	}
	w.Header().Set("ETag", e.ETag())
	w.Header().Set("Location", fmt.Sprintf("/v1/events/%s/extensions", code))
	writeJSON(w, http.StatusCreated, ctJSON, map[string]any{"extension": x, "event": toEventFeature(e)})
	return nil
}

// decisionBody is POST /v1/events/{code}/extensions/{n}.
type decisionBody struct {
	Decision string `json:"decision"` // approve or refuse
	Note     string `json:"note"`
}

// decideExtension: a supervisor of the event's grid approves or refuses.
func (s *Server) decideExtension(w http.ResponseWriter, r *http.Request) error {
	code, err := eventCodeParam(r)
	if err != nil {
		return err
	}
	raw := mux.Vars(r)["n"]
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 {
		return &paramError{"n", fmt.Sprintf("extension number %q is not a positive integer", geo.Excerpt(raw, geo.MaxExcerpt))}
	}
	var b decisionBody
	if err := readStrict(w, r, &b, `a JSON object {"decision", "note"}`); err != nil {
		return err
	}
	if b.Decision != "approve" && b.Decision != "refuse" {
		return invalidMember("decision", fmt.Sprintf("decision %q: approve or refuse", geo.Excerpt(b.Decision, geo.MaxExcerpt)))
	}
	if err := checkTextLength("note", b.Note); err != nil {
		return err
	}
	ifVersion, err := versionPrecondition(r, "event "+code)
	if err != nil {
		return err
	}
	p, err := s.callerPerson(r)
	if err != nil {
		return err
	}
	x, e, err := s.store.DecideExtension(r.Context(), code, data.ExtensionDecision{N: n, Approve: b.Decision == "approve", Note: b.Note,
		Actor: identityOf(r).Actor, Person: p, IfVersion: ifVersion})
	if err != nil {
		return notFoundAs(err, "no event with code %q, or it has no extension request %d", code, n)
	}
	s.syncTiles(r.Context())
	w.Header().Set("ETag", e.ETag())
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"extension": x, "event": toEventFeature(e)})
	return nil
}

// getFigures: GET /v1/figures?level=worker|community|street&unit=&from=&to=&f=&bom=
func (s *Server) getFigures(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	level := q.Get("level")
	if level == "" {
		level = "worker"
	}
	unit := q.Get("unit")
	if unit != "" && !isDigits(unit) {
		return &paramError{"unit", fmt.Sprintf("unit=%q is not a unit code", geo.Excerpt(unit, geo.MaxExcerpt))}
	}
	if err := needRead(r, unit); err != nil {
		return err
	}
	cfg, err := s.store.EventConfig(r.Context())
	if err != nil {
		return err
	}
	from, to, err := periodParams(q, cfg)
	if err != nil {
		return err
	}
	format, err := statsFormat(r)
	if err != nil {
		return err
	}
	f, err := s.store.FiguresOf(r.Context(), level, unit, from, to)
	if err != nil {
		return err
	}
	if format != "json" {
		code := unit
		if code == "" {
			code = "city"
		}
		return s.writeStatsTable(w, r, format, "figures-"+level, code, figuresTable(f, code))
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, ctJSON, f)
	return nil
}

// figuresTable: one row per ranked line, then the total.
func figuresTable(f *data.Figures, code string) statsTable {
	num := func(v *float64) any {
		if v == nil {
			return nil
		}
		return *v
	}
	t := statsTable{schema: geo.Schema{Name: code + " figures-" + f.Level, Fields: []geo.Field{
		{Name: "rank", Type: geo.Integer}, {Name: "name", Type: geo.String},
		{Name: "grids", Type: geo.Integer}, {Name: "covered", Type: geo.Integer},
		{Name: "reported", Type: geo.Integer}, {Name: "reported_by_workers", Type: geo.Integer},
		{Name: "verified", Type: geo.Integer}, {Name: "verified_on_time", Type: geo.Integer}, {Name: "verified_on_time_rate", Type: geo.Real},
		{Name: "handled", Type: geo.Integer}, {Name: "handled_on_time", Type: geo.Integer}, {Name: "handled_on_time_rate", Type: geo.Real},
		{Name: "extended", Type: geo.Integer}, {Name: "suspended", Type: geo.Integer},
		{Name: "patrol_coverage", Type: geo.Real}, {Name: "patrol_hours", Type: geo.Real},
	}}}
	for _, x := range append(f.Rows, f.Total) {
		t.rows = append(t.rows, geo.Row{ID: x.Code, Values: []any{x.Rank, x.Name, x.Grids, x.Covered, x.Reported, x.ReportedByWorkers,
			x.Verified, x.VerifiedOnTime, num(x.VerifyRate), x.Handled, x.OnTime, num(x.OnTimeRate), x.Extended, x.Suspended,
			num(x.PatrolCoverage), num(x.PatrolHours)}})
	}
	return t
}
