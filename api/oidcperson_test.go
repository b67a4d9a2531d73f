package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data/pgtest"
)

// TestOIDCPerson: a JWT whose sub is an active person's oidc_subject speaks
// for them as the person's token does (/v1/me, /v1/me/tasks, verifying as
// the grid's worker); an unmapped, re-mapped or inactive person's subject
// speaks for nobody; a subject is one person's (409, nothing written).
func TestOIDCPerson(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	idp := newTestIDP(t)
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: idp.srv.URL, Audience: accessAudience})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, store, api.Options{OIDC: o})
	g := evGridPoints(t, store)[0]
	community := g.code[:12]
	cls := sqlStrings(t, store, `SELECT code || ' ' || department_code FROM event_classes ORDER BY code LIMIT 1`)[0]
	class, dept := strings.Fields(cls)[0], strings.Fields(cls)[1]

	type oidcPerson struct {
		wkPerson
		OIDCSubject *string `json:"oidc_subject"`
	}
	var worker oidcPerson
	expect(t, e.post("/v1/people", `{"name": "李网格", "phone": "13800001111", "role": "worker", "oidc_subject": " 7c1e-li "}`), http.StatusCreated, ctJSON, &worker)
	if worker.OIDCSubject == nil || *worker.OIDCSubject != "7c1e-li" {
		t.Fatalf("the admin reads oidc_subject %v, want 7c1e-li (trimmed)", worker.OIDCSubject)
	}
	handler := e.mkPerson(t, fmt.Sprintf(`{"name": "王处置", "role": "handler", "department": %q}`, dept))
	other := e.mkPerson(t, `{"name": "钱网格", "phone": "13800003333", "role": "worker"}`)
	expect(t, e.with(http.MethodPut, "/v1/grids/"+g.code+"/workers", fmt.Sprintf(`{"worker": %d, "reason": "开网"}`, worker.ID), "If-Match", `"0"`), http.StatusOK, ctJSON, nil)

	jwt := func(sub string) *apiEnv {
		return e.as(t, idp.sign(t, idp.key, idp.claims(map[string]any{"sub": sub, "preferred_username": "u-" + sub, "units": []string{community}})))
	}
	type me struct {
		Actor  string      `json:"actor"`
		Kind   string      `json:"kind"`
		Person *oidcPerson `json:"person"`
	}
	meOf := func(c *apiEnv) me {
		t.Helper()
		var m me
		expect(t, c.get("/v1/me"), http.StatusOK, ctJSON, &m)
		return m
	}

	// The mapped subject: the person, phone masked and subject hidden (a
	// reporter is no admin).
	W := jwt("7c1e-li")
	if m := meOf(W); m.Kind != "oidc" || m.Person == nil || m.Person.ID != worker.ID || m.Person.Phone != "138****1111" || m.Person.OIDCSubject != nil {
		t.Fatalf("/v1/me of the mapped subject: %+v", m)
	}
	// Unmapped: nobody, and no tasks of anyone.
	if m := meOf(jwt("nobody-here")); m.Person != nil || m.Actor != "oidc:u-nobody-here" {
		t.Errorf("/v1/me of an unmapped subject: %+v", m)
	}
	expectProblem(t, jwt("nobody-here").get("/v1/me/tasks"), http.StatusForbidden, typeForbidden, "")

	// The loop with the worker signed in by OIDC: reported in their grid
	// they verify it, and the verification is theirs.
	hTok := e.personToken(t, "h-wang", auth.Reporter, community, handler.ID)
	centre := mintToken(t, store, "centre", auth.Dispatcher, "440308")
	H, C := e.as(t, hTok), e.as(t, centre)
	code := W.reportEvent(evReport(class, g.lon, g.lat, "description", "井盖缺失")).ID
	ev := wkEventOf(t, e.get("/v1/events/"+code))
	if ev.Properties.Verifier == nil || ev.Properties.Verifier.ID != worker.ID || ev.Properties.ReporterID == nil || *ev.Properties.ReporterID != worker.ID {
		t.Fatalf("verifier %+v reporter %v, want the worker %d", ev.Properties.Verifier, ev.Properties.ReporterID, worker.ID)
	}
	C.moved(code, "registered")
	wkEventOf(t, C.with(http.MethodPost, "/v1/events/"+code+"/transitions", fmt.Sprintf(`{"to": "dispatched", "handler": %d}`, handler.ID)))
	wkEventOf(t, H.post("/v1/events/"+code+"/work", `{"to": "handling"}`))
	wkEventOf(t, H.post("/v1/events/"+code+"/work", `{"to": "handled"}`))
	var tasks wkTasks
	expect(t, W.get("/v1/me/tasks"), http.StatusOK, ctJSON, &tasks)
	if len(tasks.Tasks) != 1 || tasks.Tasks[0].Kind != "verify" || tasks.Tasks[0].EventCode != code {
		t.Fatalf("the OIDC worker's tasks %+v", tasks)
	}
	expectProblem(t, jwt("nobody-here").post("/v1/events/"+code+"/work", `{"to": "verified"}`), http.StatusForbidden, typeForbidden, "")
	ev = wkEventOf(t, W.post("/v1/events/"+code+"/work", `{"to": "verified", "note": "已修复"}`))
	last := ev.Properties.Log[len(ev.Properties.Log)-1]
	if ev.Properties.VerifiedBy == nil || ev.Properties.VerifiedBy.ID != worker.ID || last.PersonID == nil || *last.PersonID != worker.ID || last.Actor != "oidc:u-7c1e-li" {
		t.Errorf("verified by %+v, log %+v", ev.Properties.VerifiedBy, last)
	}

	// A subject is one person's: POST, PUT and the import refuse a second
	// holder and write nothing.
	state := func() string {
		return strings.Join(sqlStrings(t, store, `SELECT id || ' ' || version || ' ' || coalesce(oidc_subject, '-') FROM people ORDER BY id`), ";")
	}
	before := state()
	expectProblem(t, e.post("/v1/people", `{"name": "冒名", "role": "worker", "oidc_subject": "7c1e-li"}`), http.StatusConflict, typeConflict, "", "7c1e-li")
	expectProblem(t, e.with(http.MethodPut, fmt.Sprintf("/v1/people/%d", other.ID), `{"name": "钱网格", "phone": "13800003333", "role": "worker", "oidc_subject": "7c1e-li"}`),
		http.StatusConflict, typeConflict, "", "7c1e-li")
	csv := func(body string) reply {
		t.Helper()
		return e.with(http.MethodPost, "/v1/people/import", body, "Content-Type", "text/csv")
	}
	for _, c := range []struct{ name, body, want string }{
		{"held by a stored person", "name,phone,role,oidc_subject\n钱网格,13800003333,worker,7c1e-li\n", "another person's"},
		{"twice in the file", "name,role,oidc_subject\n甲,worker,s-1\n乙,worker,s-1\n", "row 2 too"},
		{"control characters", "name,role,oidc_subject\n甲,worker,\"a\x01b\"\n", "control characters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := csv(c.body)
			expectProblem(t, r, http.StatusUnprocessableEntity, typeInvalid, "")
			if !strings.Contains(string(r.Body), c.want) {
				t.Errorf("import problem %s, want %q", r, c.want)
			}
		})
	}
	if got := state(); got != before {
		t.Errorf("refused writes changed people:\n%s\nwant\n%s", got, before)
	}
	if m := meOf(W); m.Person == nil || m.Person.ID != worker.ID {
		t.Errorf("after the refused writes the subject speaks for %+v", m.Person)
	}

	// An import without the column keeps the subject; with it, maps.
	expect(t, csv("name,phone,role\n李网格,13800001111,worker\n钱网格,13800003333,worker\n"), http.StatusOK, ctJSON, nil)
	if m := meOf(W); m.Person == nil || m.Person.ID != worker.ID {
		t.Errorf("an import without oidc_subject unmapped the worker: %+v", m.Person)
	}
	expect(t, csv("name,phone,role,oidc_subject\n钱网格,13800003333,worker,9d-qian\n"), http.StatusOK, ctJSON, nil)
	if m := meOf(jwt("9d-qian")); m.Person == nil || m.Person.ID != other.ID {
		t.Errorf("the imported subject speaks for %+v, want %d", m.Person, other.ID)
	}

	// Edits hold at once: re-mapped, the old subject is nobody's; inactive,
	// the new one is nobody's either.
	put := func(body string) {
		t.Helper()
		expect(t, e.with(http.MethodPut, fmt.Sprintf("/v1/people/%d", worker.ID), body), http.StatusOK, ctJSON, nil)
	}
	put(`{"name": "李网格", "phone": "13800001111", "role": "worker", "oidc_subject": "7c1e-li-2"}`)
	if m := meOf(W); m.Person != nil {
		t.Errorf("a re-mapped person's old subject still speaks for %+v", m.Person)
	}
	if m := meOf(jwt("7c1e-li-2")); m.Person == nil || m.Person.ID != worker.ID {
		t.Errorf("the new subject speaks for %+v", m.Person)
	}
	put(`{"name": "李网格", "phone": "13800001111", "role": "worker", "oidc_subject": "7c1e-li-2", "status": "inactive"}`)
	if m := meOf(jwt("7c1e-li-2")); m.Person != nil {
		t.Errorf("an inactive person's subject speaks for %+v", m.Person)
	}
	// PUT without the member clears it: the subject is free again.
	put(`{"name": "李网格", "phone": "13800001111", "role": "worker"}`)
	expect(t, e.post("/v1/people", `{"name": "新人", "role": "worker", "oidc_subject": "7c1e-li-2"}`), http.StatusCreated, ctJSON, nil)
}
