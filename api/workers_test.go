package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gridmap/auth"
	"gridmap/grid"
)

// The people and their work of issue 16, through the API.

const typeConflict = "https://gridmap.dev/problems/conflict"

type wkPerson struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Phone      string `json:"phone"`
	Role       string `json:"role"`
	Department string `json:"department"`
	UnitCode   string `json:"unit_code"`
	Status     string `json:"status"`
	Version    int    `json:"version"`
}

type wkRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// wkEvent is the part of an event these tests read.
type wkEvent struct {
	ID         string `json:"id"`
	Properties struct {
		Status     string     `json:"status"`
		GridCode   string     `json:"grid_code"`
		Department string     `json:"department"`
		Deadline   time.Time  `json:"deadline"`
		Version    int        `json:"version"`
		Overdue    bool       `json:"overdue"`
		ReporterID *int64     `json:"reporter_id"`
		Verifier   *wkRef     `json:"verifier"`
		Handler    *wkRef     `json:"handler"`
		VerifyDue  *time.Time `json:"verify_due"`
		VerifiedBy *wkRef     `json:"verified_by"`
		Extensions int        `json:"extensions"`
		Suspended  *time.Time `json:"suspended_at"`
		Log        []struct {
			To       string `json:"to"`
			Kind     string `json:"kind"`
			Actor    string `json:"actor"`
			PersonID *int64 `json:"person_id"`
			Note     string `json:"note"`
		} `json:"log"`
	} `json:"properties"`
}

type wkTasks struct {
	Tasks []struct {
		Kind      string    `json:"kind"`
		EventCode string    `json:"event_code"`
		Due       time.Time `json:"due"`
		Overdue   bool      `json:"overdue"`
		Extension *int      `json:"extension"`
	} `json:"tasks"`
}

type wkFigures struct {
	Rows []struct {
		Rank           int      `json:"rank"`
		Code           string   `json:"code"`
		Reported       int64    `json:"reported"`
		Verified       int64    `json:"verified"`
		VerifiedOnTime int64    `json:"verified_on_time"`
		Handled        int64    `json:"handled"`
		OnTime         int64    `json:"handled_on_time"`
		OnTimeRate     *float64 `json:"handled_on_time_rate"`
		Extended       int64    `json:"extended"`
		Grids          int      `json:"grids"`
		Covered        int      `json:"covered"`
	} `json:"rows"`
}

func (e *apiEnv) mkPerson(t *testing.T, body string) wkPerson {
	t.Helper()
	var p wkPerson
	expect(t, e.post("/v1/people", body), http.StatusCreated, ctJSON, &p)
	return p
}

// personToken makes a token that speaks for person id through the API.
func (e *apiEnv) personToken(t *testing.T, name string, role auth.Role, scope string, id int64) string {
	t.Helper()
	var tok struct {
		Token    string `json:"token"`
		PersonID *int64 `json:"person_id"`
	}
	body := fmt.Sprintf(`{"name": %q, "role": %q, "scopes": [%q], "person_id": %d}`, name, role, scope, id)
	expect(t, e.post("/v1/tokens", body), http.StatusCreated, ctJSON, &tok)
	if tok.PersonID == nil || *tok.PersonID != id {
		t.Fatalf("token %s speaks for %v, want %d", name, tok.PersonID, id)
	}
	return tok.Token
}

func wkEventOf(t *testing.T, r reply) wkEvent {
	t.Helper()
	var ev wkEvent
	expect(t, r, http.StatusOK, ctGeoJSON, &ev)
	return ev
}

// TestWorkerLoop is the whole loop of one case (issue 16, Tested): reported
// by the grid's worker in their grid, the verifier is that worker,
// dispatched to a handler of the department, more time asked and approved
// by the community's supervisor (the deadline moves on the working
// calendar), handled, verified by the worker (nobody else may), closed;
// tasks and figures follow.
func TestWorkerLoop(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	ctx := context.Background()
	g := evGridPoints(t, e.store)[0]
	community := g.code[:12]
	cls := sqlStrings(t, e.store, `SELECT code || ' ' || department_code FROM event_classes ORDER BY code LIMIT 1`)[0]
	class, dept := strings.Fields(cls)[0], strings.Fields(cls)[1]

	worker := e.mkPerson(t, `{"name": "李网格", "phone": "13800001111", "role": "worker"}`)
	handler := e.mkPerson(t, fmt.Sprintf(`{"name": "王处置", "phone": "13800002222", "role": "handler", "department": %q}`, dept))
	super := e.mkPerson(t, fmt.Sprintf(`{"name": "赵督导", "role": "supervisor", "unit_code": %q}`, community))
	other := e.mkPerson(t, `{"name": "钱网格", "role": "worker"}`)

	var a struct {
		Worker  *wkRef  `json:"worker"`
		Backups []wkRef `json:"backups"`
		Version int     `json:"version"`
	}
	r := e.with(http.MethodPut, "/v1/grids/"+g.code+"/workers", fmt.Sprintf(`{"worker": %d, "backups": [%d], "reason": "开网"}`, worker.ID, other.ID), "If-Match", `"0"`)
	expect(t, r, http.StatusOK, ctJSON, &a)
	if a.Worker == nil || a.Worker.ID != worker.ID || len(a.Backups) != 1 || a.Version != 1 || r.Header.Get("ETag") != `"1"` {
		t.Fatalf("assignment %+v %s", a, r)
	}

	wTok := e.personToken(t, "w-li", auth.Reporter, community, worker.ID)
	hTok := e.personToken(t, "h-wang", auth.Reporter, community, handler.ID)
	sTok := e.personToken(t, "s-zhao", auth.Reporter, community, super.ID)
	oTok := e.personToken(t, "w-qian", auth.Reporter, community, other.ID)
	centre := mintToken(t, e.store, "centre", auth.Dispatcher, "440308")
	W, H, S, O, C := e.as(t, wTok), e.as(t, hTok), e.as(t, sTok), e.as(t, oTok), e.as(t, centre)

	var me struct {
		Actor  string   `json:"actor"`
		Person wkPerson `json:"person"`
	}
	expect(t, W.get("/v1/me"), http.StatusOK, ctJSON, &me)
	if me.Person.ID != worker.ID || me.Person.Phone != "138****1111" {
		t.Errorf("/v1/me of the worker: %+v, want the person with the phone masked", me)
	}

	// Reported by the worker in their grid: they are its verifier.
	f := W.reportEvent(evReport(class, g.lon, g.lat, "description", "井盖缺失"))
	code := f.ID
	ev := wkEventOf(t, e.get("/v1/events/"+code))
	if ev.Properties.Verifier == nil || ev.Properties.Verifier.ID != worker.ID || ev.Properties.ReporterID == nil || *ev.Properties.ReporterID != worker.ID {
		t.Fatalf("verifier %+v reporter %v, want the grid's worker %d", ev.Properties.Verifier, ev.Properties.ReporterID, worker.ID)
	}

	C.moved(code, "registered")
	// A handler must be of the department the event goes to.
	expectProblem(t, C.move(code, "dispatched", "handler", fmt.Sprint(worker.ID)), http.StatusUnprocessableEntity, typeInvalid, "handler")
	r = C.with(http.MethodPost, "/v1/events/"+code+"/transitions", fmt.Sprintf(`{"to": "dispatched", "handler": %d}`, handler.ID))
	ev = wkEventOf(t, r)
	if ev.Properties.Handler == nil || ev.Properties.Handler.ID != handler.ID {
		t.Fatalf("handler %+v, want %d", ev.Properties.Handler, handler.ID)
	}

	// The handler's own moves; nobody else's.
	expectProblem(t, O.post("/v1/events/"+code+"/work", `{"to": "handling"}`), http.StatusForbidden, typeForbidden, "", "its handler")
	ev = wkEventOf(t, H.post("/v1/events/"+code+"/work", `{"to": "handling", "note": "到场"}`))
	var tasks wkTasks
	expect(t, H.get("/v1/me/tasks"), http.StatusOK, ctJSON, &tasks)
	if len(tasks.Tasks) != 1 || tasks.Tasks[0].Kind != "handle" || tasks.Tasks[0].EventCode != code || !tasks.Tasks[0].Due.Equal(ev.Properties.Deadline) {
		t.Errorf("handler's tasks %+v", tasks)
	}

	// More time: asked by the handler, refused to a second request while
	// the first waits, decided by the supervisor only.
	before := ev.Properties.Deadline
	expectProblem(t, H.post("/v1/events/"+code+"/extensions", `{"amount": 2, "unit": "working_days", "reason": ""}`), http.StatusUnprocessableEntity, typeInvalid, "reason")
	expectProblem(t, H.post("/v1/events/"+code+"/extensions", `{"amount": 2, "unit": "weeks", "reason": "x"}`), http.StatusUnprocessableEntity, typeInvalid, "unit")
	expectProblem(t, H.post("/v1/events/"+code+"/extensions", `{"amount": 0, "unit": "working_days", "reason": "x"}`), http.StatusUnprocessableEntity, typeInvalid, "amount")
	expectProblem(t, W.post("/v1/events/"+code+"/extensions", `{"amount": 2, "unit": "working_days", "reason": "等配件"}`), http.StatusForbidden, typeForbidden, "")
	r = H.post("/v1/events/"+code+"/extensions", `{"amount": 2, "unit": "working_days", "reason": "等配件"}`)
	var xa struct {
		Extension struct {
			N      int    `json:"n"`
			Status string `json:"status"`
		} `json:"extension"`
		Event wkEvent `json:"event"`
	}
	expect(t, r, http.StatusCreated, ctJSON, &xa)
	if xa.Extension.N != 1 || xa.Extension.Status != "pending" {
		t.Fatalf("extension %+v", xa)
	}
	expectProblem(t, H.post("/v1/events/"+code+"/extensions", `{"amount": 1, "unit": "working_hours", "reason": "again"}`), http.StatusConflict, typeConflict, "")
	expect(t, S.get("/v1/me/tasks"), http.StatusOK, ctJSON, &tasks)
	if len(tasks.Tasks) != 1 || tasks.Tasks[0].Kind != "decide_extension" || tasks.Tasks[0].Extension == nil || *tasks.Tasks[0].Extension != 1 {
		t.Errorf("supervisor's tasks %+v", tasks)
	}
	expectProblem(t, H.post("/v1/events/"+code+"/extensions/1", `{"decision": "approve"}`), http.StatusForbidden, typeForbidden, "", "supervisor")
	expectProblem(t, S.post("/v1/events/"+code+"/extensions/1", `{"decision": "maybe"}`), http.StatusUnprocessableEntity, typeInvalid, "decision")
	expect(t, S.post("/v1/events/"+code+"/extensions/1", `{"decision": "approve", "note": "同意"}`), http.StatusOK, ctJSON, &xa)
	cfg, err := e.store.EventConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := cfg.Calendar.Deadline(before, grid.Limit{Amount: 2, Unit: grid.WorkingDays})
	if xa.Extension.Status != "approved" || !xa.Event.Properties.Deadline.Equal(want) || xa.Event.Properties.Extensions != 1 {
		t.Errorf("approved: %+v, deadline %v want %v", xa.Extension, xa.Event.Properties.Deadline, want)
	}
	expectProblem(t, S.post("/v1/events/"+code+"/extensions/1", `{"decision": "refuse"}`), http.StatusConflict, typeConflict, "", "approved already")

	// Handled; verification is the worker's (or a supervisor's).
	ev = wkEventOf(t, H.post("/v1/events/"+code+"/work", `{"to": "handled"}`))
	if ev.Properties.VerifyDue == nil {
		t.Error("handled without a verification due time")
	}
	expectProblem(t, C.move(code, "verified"), http.StatusForbidden, typeForbidden, "", "verifier")
	expectProblem(t, H.post("/v1/events/"+code+"/work", `{"to": "verified"}`), http.StatusForbidden, typeForbidden, "")
	expect(t, W.get("/v1/me/tasks"), http.StatusOK, ctJSON, &tasks)
	if len(tasks.Tasks) != 1 || tasks.Tasks[0].Kind != "verify" || tasks.Tasks[0].EventCode != code {
		t.Errorf("worker's tasks %+v", tasks)
	}
	ev = wkEventOf(t, W.post("/v1/events/"+code+"/work", `{"to": "verified", "note": "已修复"}`))
	last := ev.Properties.Log[len(ev.Properties.Log)-1]
	if ev.Properties.VerifiedBy == nil || ev.Properties.VerifiedBy.ID != worker.ID || last.PersonID == nil || *last.PersonID != worker.ID || last.Actor != "token:w-li" {
		t.Errorf("verified by %+v, log %+v", ev.Properties.VerifiedBy, last)
	}
	ev = wkEventOf(t, C.move(code, "closed"))
	kinds := []string{}
	for _, l := range ev.Properties.Log {
		kinds = append(kinds, l.Kind+":"+l.To)
	}
	if got := strings.Join(kinds, " "); got != "transition:reported transition:registered transition:dispatched transition:handling "+
		"extension_requested:handling extension_approved:handling transition:handled transition:verified transition:closed" {
		t.Errorf("log %s", got)
	}

	// Figures: the worker reported and verified on time; the community
	// handled on time, with the extension agreed.
	var fw wkFigures
	expect(t, e.get("/v1/figures?level=worker&unit="+community), http.StatusOK, ctJSON, &fw)
	found := false
	for _, row := range fw.Rows {
		if row.Code == fmt.Sprint(worker.ID) {
			found = true
			if row.Rank != 1 || row.Reported != 1 || row.Verified != 1 || row.VerifiedOnTime != 1 || row.Grids != 1 || row.Handled != 1 || row.OnTime != 1 {
				t.Errorf("worker figures %+v", row)
			}
		}
	}
	if !found {
		t.Errorf("no figures of worker %d: %+v", worker.ID, fw)
	}
	var fc wkFigures
	expect(t, e.get("/v1/figures?level=community&unit="+community[:9]), http.StatusOK, ctJSON, &fc)
	for _, row := range fc.Rows {
		if row.Code == community && (row.Reported != 1 || row.Handled != 1 || row.OnTime != 1 || row.Extended != 1 || row.Covered != 1 || row.Rank != 1) {
			t.Errorf("community figures %+v", row)
		}
	}
	var st struct {
		Unit struct {
			All struct {
				OnTime   int `json:"handled_on_time"`
				Extended int `json:"extended"`
			} `json:"all"`
		} `json:"unit"`
	}
	expect(t, e.get("/v1/stats/"+community+"?of=events&by=status"), http.StatusOK, ctJSON, &st)
	if st.Unit.All.OnTime != 1 || st.Unit.All.Extended != 1 {
		t.Errorf("statistics of the community: %+v, want the extended event handled on time", st.Unit.All)
	}
	r = e.get("/v1/figures?level=street&f=csv")
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || !strings.Contains(string(r.Body), "handled_on_time_rate") {
		t.Errorf("figures as CSV: %s", r)
	}
	expectProblem(t, e.get("/v1/figures?level=planet"), http.StatusBadRequest, typeBadParam, "level")
}

// TestSuspension: a suspension needs a reason, stops the clock (the event
// is not overdue meanwhile) and, lifted, returns the event to the status
// it stopped with the deadline moved by the working time it stood still.
func TestSuspension(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	g := evGridPoints(t, e.store)[1]
	class := sqlStrings(t, e.store, `SELECT code FROM event_classes ORDER BY code LIMIT 1`)[0]
	code := e.reportEvent(evReport(class, g.lon, g.lat)).ID
	e.moved(code, "registered")
	e.moved(code, "dispatched")
	before := wkEventOf(t, e.get("/v1/events/"+code))
	expectProblem(t, e.move(code, "suspended"), http.StatusUnprocessableEntity, typeInvalid, "note", "reason")
	ev := wkEventOf(t, e.move(code, "suspended", "note", "等待产权单位确认"))
	if ev.Properties.Suspended == nil || ev.Properties.Overdue {
		t.Fatalf("suspended: %+v", ev.Properties)
	}
	// Lifting returns to the status it stopped, nowhere else.
	p := expectEvProblem(t, e.move(code, "handling"), http.StatusConflict, typeIllegalMove, "")
	if len(p.Allowed) != 1 || p.Allowed[0] != "dispatched" {
		t.Errorf("allowed %v", p.Allowed)
	}
	ev = wkEventOf(t, e.move(code, "dispatched", "department", "", "If-Match", fmt.Sprintf(`"%d"`, ev.Properties.Version)))
	if ev.Properties.Suspended != nil || ev.Properties.Deadline.Before(before.Properties.Deadline) {
		t.Errorf("lifted: suspended %v, deadline %v (was %v)", ev.Properties.Suspended, ev.Properties.Deadline, before.Properties.Deadline)
	}
	var st struct {
		Unit struct {
			By map[string]struct {
				Total int `json:"total"`
			} `json:"by"`
		} `json:"unit"`
	}
	e.moved(code, "suspended", "note", "again")
	expect(t, e.get("/v1/stats/"+g.code[:12]+"?of=events&by=status"), http.StatusOK, ctJSON, &st)
	if st.Unit.By["suspended"].Total != 1 {
		t.Errorf("statistics by status: %+v, want the suspended event counted", st.Unit.By)
	}
}

// TestPeopleInput: every bad input is a problem naming what and where,
// and nothing is written.
func TestPeopleInput(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	count := func() int { return sqlInt(t, e.store, `SELECT count(*) FROM people`) }
	w := e.mkPerson(t, `{"name": "孙网格", "phone": "13900001234", "role": "worker"}`)

	for _, c := range []struct {
		name, body, param string
	}{
		{"no name", `{"role": "worker"}`, "name"},
		{"unknown role", `{"name": "a", "role": "boss"}`, "role"},
		{"handler without department", `{"name": "a", "role": "handler"}`, "department"},
		{"unknown department", `{"name": "a", "role": "handler", "department": "nope"}`, "department"},
		{"bad phone", `{"name": "a", "role": "worker", "phone": "call me"}`, "phone"},
		{"taken phone", `{"name": "a", "role": "worker", "phone": "13900001234"}`, "phone"},
		{"unknown member", `{"name": "a", "role": "worker", "age": 3}`, "age"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.post("/v1/people", c.body)
			if r.Status != http.StatusUnprocessableEntity && r.Status != http.StatusBadRequest {
				t.Fatalf("%s: %s", c.name, r)
			}
			var p problem
			expect(t, r, r.Status, ctProblem, &p)
			if p.Param != c.param {
				t.Errorf("param %q, want %q: %s", p.Param, c.param, r)
			}
		})
	}
	if n := count(); n != 1 {
		t.Errorf("%d people after refused writes, want 1", n)
	}

	// Phones: whole to admins only.
	var p wkPerson
	expect(t, e.get(fmt.Sprintf("/v1/people/%d", w.ID)), http.StatusOK, ctJSON, &p)
	viewer := e.as(t, mintToken(t, e.store, "viewer", auth.Viewer, "*"))
	var masked wkPerson
	expect(t, viewer.get(fmt.Sprintf("/v1/people/%d", w.ID)), http.StatusOK, ctJSON, &masked)
	if p.Phone != "13900001234" || masked.Phone != "139****1234" {
		t.Errorf("phone %q to an admin, %q to a viewer", p.Phone, masked.Phone)
	}
	expectProblem(t, viewer.post("/v1/people", `{"name": "a", "role": "worker"}`), http.StatusForbidden, typeForbidden, "")
	r := e.with(http.MethodPut, fmt.Sprintf("/v1/people/%d", w.ID), `{"name": "孙网格", "role": "worker", "status": "inactive"}`, "If-Match", `"7"`)
	expectProblem(t, r, http.StatusPreconditionFailed, typeStale, "")
	expectProblem(t, e.get("/v1/people/abc"), http.StatusBadRequest, typeBadParam, "id")
	expectProblem(t, e.get("/v1/people/999999"), http.StatusNotFound, typeNotFound, "")

	// CSV import: every bad row named, nothing written.
	imp := func(body string) reply {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/people/import", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/csv")
		e.authorize(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
	r = imp("name,phone,role,department\n甲,13700000001,worker,\n乙,13700000001,worker,\n丙,,handler,\n丁,,handler,nope\n")
	var bad struct {
		problem
		Rows []struct {
			Row   int    `json:"row"`
			Field string `json:"field"`
		} `json:"rows"`
	}
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &bad)
	if len(bad.Rows) != 3 || bad.Rows[0].Row != 3 || bad.Rows[0].Field != "phone" || bad.Rows[1].Row != 4 || bad.Rows[1].Field != "department" {
		t.Errorf("bad rows %+v", bad.Rows)
	}
	if n := count(); n != 1 {
		t.Errorf("%d people after a refused import, want 1", n)
	}
	var res struct {
		Created int     `json:"created"`
		Updated int     `json:"updated"`
		IDs     []int64 `json:"ids"`
	}
	expect(t, imp("\ufeffname,phone,role\n甲,13700000001,worker\n孙网格,13900001234,supervisor\n"), http.StatusOK, ctJSON, &res)
	if res.Created != 1 || res.Updated != 1 || len(res.IDs) != 2 || res.IDs[1] != w.ID {
		t.Errorf("import %+v", res)
	}

	// Grid assignment: base grids only, active workers only.
	x := e.mkPerson(t, `{"name": "周网格", "role": "worker"}`)
	g := grids[0].code
	put := func(path, body string) reply { return e.with(http.MethodPut, path, body) }
	expectProblem(t, put("/v1/grids/"+g[:12]+"/workers", fmt.Sprintf(`{"worker": %d}`, x.ID)), http.StatusBadRequest, typeBadParam, "code")
	expectProblem(t, put("/v1/grids/"+g[:12]+"999/workers", fmt.Sprintf(`{"worker": %d}`, x.ID)), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, put("/v1/grids/"+g+"/workers", fmt.Sprintf(`{"worker": %d}`, w.ID)), http.StatusUnprocessableEntity, typeInvalid, "worker", "supervisor")
	expectProblem(t, put("/v1/grids/"+g+"/workers", fmt.Sprintf(`{"worker": %d, "backups": [%d]}`, x.ID, x.ID)), http.StatusUnprocessableEntity, typeInvalid, "backups")
	expectProblem(t, put("/v1/grids/"+g+"/workers", `{"backups": [1]}`), http.StatusUnprocessableEntity, typeInvalid, "backups")
	if n := sqlInt(t, e.store, `SELECT count(*) FROM grid_worker_log`); n != 0 {
		t.Errorf("%d assignment changes logged after refusals", n)
	}
	expect(t, put("/v1/grids/"+g+"/workers", fmt.Sprintf(`{"worker": %d}`, x.ID)), http.StatusOK, ctJSON, nil)
	expectProblem(t, e.with(http.MethodPut, "/v1/grids/"+g+"/workers", `{"worker": null}`, "If-Match", `"0"`), http.StatusPreconditionFailed, typeStale, "")
	expect(t, e.with(http.MethodPut, "/v1/grids/"+g+"/workers", `{"worker": null, "reason": "调岗"}`, "If-Match", `"1"`), http.StatusOK, ctJSON, nil)
	var log struct {
		Changes []struct {
			Kind       string `json:"kind"`
			PrevWorker *int64 `json:"previous_worker"`
		} `json:"changes"`
	}
	expect(t, e.get(fmt.Sprintf("/v1/people/assignments?person=%d", x.ID)), http.StatusOK, ctJSON, &log)
	if len(log.Changes) != 2 || log.Changes[0].Kind != "unassign" || log.Changes[0].PrevWorker == nil || *log.Changes[0].PrevWorker != x.ID {
		t.Errorf("assignment log %+v", log)
	}

	// Coverage: every grid unassigned now; a worker over the load.
	for _, gg := range grids[:3] {
		expect(t, put("/v1/grids/"+gg.code+"/workers", fmt.Sprintf(`{"worker": %d}`, x.ID)), http.StatusOK, ctJSON, nil)
	}
	var cov struct {
		Grids      int `json:"grids"`
		Assigned   int `json:"assigned"`
		Unassigned []struct {
			Code string `json:"code"`
		} `json:"unassigned"`
		Overloaded []struct {
			ID    int64    `json:"id"`
			Grids []string `json:"grids"`
		} `json:"overloaded"`
	}
	expect(t, e.get("/v1/people/coverage?max_load=2"), http.StatusOK, ctJSON, &cov)
	if cov.Grids != len(grids) || cov.Assigned != 3 || len(cov.Unassigned) != len(grids)-3 || len(cov.Overloaded) != 1 || cov.Overloaded[0].ID != x.ID {
		t.Errorf("coverage %d grids, %d assigned, %d unassigned, overloaded %+v", cov.Grids, cov.Assigned, len(cov.Unassigned), cov.Overloaded)
	}
	expectProblem(t, e.get("/v1/people/coverage?max_load=0"), http.StatusBadRequest, typeBadParam, "max_load")
	expectProblem(t, e.get("/v1/me/tasks"), http.StatusForbidden, typeForbidden, "")

	// A token for nobody.
	expectProblem(t, e.post("/v1/tokens", `{"name": "ghost", "role": "reporter", "scopes": ["*"], "person_id": 999999}`), http.StatusUnprocessableEntity, typeInvalid, "person_id")
	expectProblem(t, e.with(http.MethodPost, "/v1/people/import", "name,role\n"), http.StatusUnsupportedMediaType, typeBadRequest, "")
}

// TestWorkersFollowUnitEdits: a split grid's worker stays with the piece
// that keeps the code and the new piece is unassigned; a grid merged into
// another loses its people (logged); a grid re-coded by a community merge
// takes its worker to the new code.
func TestWorkersFollowUnitEdits(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	a, b := neighbourGrids(t, e)
	x := e.mkPerson(t, `{"name": "吴网格", "role": "worker"}`)
	y := e.mkPerson(t, `{"name": "郑网格", "role": "worker"}`)
	z := e.mkPerson(t, `{"name": "冯网格", "role": "worker"}`)
	assign := func(code string, id int64) {
		t.Helper()
		expect(t, e.with(http.MethodPut, "/v1/grids/"+code+"/workers", fmt.Sprintf(`{"worker": %d}`, id)), http.StatusOK, ctJSON, nil)
	}
	workerOf := func(code string) int64 {
		t.Helper()
		var ga struct {
			Worker *wkRef `json:"worker"`
		}
		expect(t, e.get("/v1/grids/"+code+"/workers"), http.StatusOK, ctJSON, &ga)
		if ga.Worker == nil {
			return 0
		}
		return ga.Worker.ID
	}
	assign(a, x.ID)
	assign(b, y.ID)

	line, _, _ := cutAcross(t, e, a, 0.3)
	var split struct {
		NewCodes []string `json:"new_codes"`
	}
	expect(t, e.with(http.MethodPost, "/v1/units/"+a+":split", `{"line":`+line+`,"reason":"new road"}`, "If-Match", unitETag(t, e, a)), http.StatusOK, ctJSON, &split)
	if len(split.NewCodes) != 1 || workerOf(a) != x.ID || workerOf(split.NewCodes[0]) != 0 {
		t.Fatalf("after the split: %s keeps %d, new %v has %d", a, workerOf(a), split.NewCodes, workerOf(split.NewCodes[0]))
	}
	var cov struct {
		Unassigned []struct {
			Code string `json:"code"`
		} `json:"unassigned"`
	}
	expect(t, e.get("/v1/people/coverage?unit="+a[:12]), http.StatusOK, ctJSON, &cov)
	if !strings.Contains(fmt.Sprint(cov.Unassigned), split.NewCodes[0]) {
		t.Errorf("the new piece %s is not listed unassigned: %+v", split.NewCodes[0], cov.Unassigned)
	}

	body := fmt.Sprintf(`{"codes":[%q,%q],"keep":%q,"reason":"joined"}`, a, b, a)
	expect(t, e.with(http.MethodPost, "/v1/units:merge", body, "If-Match", unitETag(t, e, a)+", "+unitETag(t, e, b)), http.StatusOK, ctJSON, nil)
	if workerOf(a) != x.ID {
		t.Errorf("the kept grid %s has worker %d, want %d", a, workerOf(a), x.ID)
	}
	var log struct {
		Changes []struct {
			GridCode   string `json:"grid_code"`
			Kind       string `json:"kind"`
			PrevWorker *int64 `json:"previous_worker"`
		} `json:"changes"`
	}
	expect(t, e.get(fmt.Sprintf("/v1/people/assignments?person=%d", y.ID)), http.StatusOK, ctJSON, &log)
	if len(log.Changes) != 2 || log.Changes[0].Kind != "merge" || log.Changes[0].GridCode != b {
		t.Errorf("log of the merged grid's worker: %+v", log.Changes)
	}

	// Two communities merged: the other's grids are re-coded, their
	// workers follow.
	pair := sqlStrings(t, e.store, `
		SELECT x.code || ' ' || y.code FROM units x JOIN units y
		  ON y.valid_to IS NULL AND y.parent_code = x.parent_code AND y.code > x.code AND ST_Length(ST_Intersection(ST_Boundary(x.geom), ST_Buffer(y.geom, 1e-7))) > 1e-6
		WHERE x.valid_to IS NULL AND x.level = 'community' AND x.code <> $1 ORDER BY x.code DESC, y.code LIMIT 1`, a[:12])[0]
	c1, c2, _ := strings.Cut(pair, " ")
	g2 := sqlStrings(t, e.store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND parent_code = $1`, c2)[0]
	assign(g2, z.ID)
	var merged struct {
		CodeMap map[string]string `json:"code_map"`
	}
	body = fmt.Sprintf(`{"codes":[%q,%q],"keep":%q,"reason":"merged by decree"}`, c1, c2, c1)
	expect(t, e.with(http.MethodPost, "/v1/units:merge", body, "If-Match", unitETag(t, e, c1)+", "+unitETag(t, e, c2)), http.StatusOK, ctJSON, &merged)
	if nc := merged.CodeMap[g2]; nc == "" || workerOf(nc) != z.ID {
		t.Errorf("grid %s is now %q with worker %d, want %d", g2, nc, workerOf(nc), z.ID)
	}
	if n := sqlInt(t, e.store, `SELECT count(*) FROM grid_workers WHERE grid_code = $1`, g2); n != 0 {
		t.Errorf("the old code %s keeps %d people", g2, n)
	}
}

// TestPersonHoldsGrids: a person shows their grids; one who holds grids
// stays a worker (PUT and import refuse another role) until the grids go
// to someone else; a supervisor's unit must exist.
func TestPersonHoldsGrids(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	g := evGridPoints(t, e.store)[0].code
	w := e.mkPerson(t, `{"name": "陈网格", "phone": "13500000001", "role": "worker"}`)
	expect(t, e.with(http.MethodPut, "/v1/grids/"+g+"/workers", fmt.Sprintf(`{"worker": %d}`, w.ID)), http.StatusOK, ctJSON, nil)
	var p struct {
		Grids []string `json:"grids"`
	}
	expect(t, e.get(fmt.Sprintf("/v1/people/%d", w.ID)), http.StatusOK, ctJSON, &p)
	if len(p.Grids) != 1 || p.Grids[0] != g {
		t.Errorf("grids %v, want [%s]", p.Grids, g)
	}
	r := e.with(http.MethodPut, fmt.Sprintf("/v1/people/%d", w.ID), `{"name": "陈网格", "phone": "13500000001", "role": "supervisor"}`)
	expectProblem(t, r, http.StatusUnprocessableEntity, typeInvalid, "role", g)
	expectProblem(t, e.post("/v1/people", `{"name": "x", "role": "supervisor", "unit_code": "440308999"}`), http.StatusUnprocessableEntity, typeInvalid, "unit_code")
	if n := sqlInt(t, e.store, `SELECT version FROM people WHERE id = $1`, w.ID); n != 1 {
		t.Errorf("version %d after refusals, want 1", n)
	}
}
