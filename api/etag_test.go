package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

const typeStale = "https://gridmap.dev/problems/stale"

// An object's ETag is a quoted MD5.
var objectETagRE = regexp.MustCompile(`^"[0-9a-f]{32}"$`)

// send makes one request with extra headers (name, value pairs); it does
// not touch t, so goroutines may call it.
func (e *apiEnv) send(method, path, body string, header ...string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if http.CanonicalHeaderKey(header[i]) == "Content-Type" {
			req.Header.Set(header[i], header[i+1]) // instead of the JSON default
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	e.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func (e *apiEnv) with(method, path, body string, header ...string) reply {
	e.t.Helper()
	r, err := e.send(method, path, body, header...)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// etagOf checks that an answer carries a strong ETag and returns it.
func etagOf(t *testing.T, r reply) string {
	t.Helper()
	tag := r.Header.Get("ETag")
	if tag == "" || strings.HasPrefix(tag, "W/") || !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 3 {
		t.Fatalf("want a strong ETag, got %q: %s", tag, r)
	}
	return tag
}

func expectNotModified(t *testing.T, r reply, etag string) {
	t.Helper()
	if r.Status != http.StatusNotModified || len(r.Body) != 0 {
		t.Fatalf("want 304 without a body: %s", r)
	}
	if got := r.Header.Get("ETag"); got != etag {
		t.Errorf("304 carries ETag %q, want %q", got, etag)
	}
}

// expectStale checks a 412 stale problem naming the current ETag.
func expectStale(t *testing.T, r reply, current string) {
	t.Helper()
	p := expectProblem(t, r, http.StatusPreconditionFailed, typeStale, "", current)
	if p.Title != "Stale version" {
		t.Errorf("title %q, want Stale version", p.Title)
	}
}

// objectState is what GET says of an object: the body and the ETag.
func objectState(t *testing.T, e *apiEnv, code string) (string, string) {
	t.Helper()
	r := e.get("/v1/objects/" + code)
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	return string(r.Body), etagOf(t, r)
}

func TestObjectETag(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, _ := demoPoint(t, e, "")
	code := demoDistrict + "0101000001"
	path := "/v1/objects/" + code
	body := func(attrs string) string { return objFeatureJSON(code, "0101", pointJSON(x, y), attrs) }

	// POST, GET and PUT answers carry the same strong ETag for the same row.
	r := e.post("/v1/objects", body(`{"v":1}`))
	expect(t, r, http.StatusCreated, ctGeoJSON, nil)
	created := etagOf(t, r)
	if !objectETagRE.MatchString(created) {
		t.Errorf("ETag %q is not a quoted MD5", created)
	}
	got, tag1 := objectState(t, e, code)
	if tag1 != created {
		t.Errorf("GET ETag %s, POST gave %s", tag1, created)
	}
	if _, again := objectState(t, e, code); again != tag1 {
		t.Errorf("ETag of an unchanged object changed: %s, then %s", tag1, again)
	}

	// If-None-Match: weak comparison, lists, *; anything else is a 200.
	for _, inm := range []string{tag1, "W/" + tag1, `"nope", ` + tag1, "*"} {
		expectNotModified(t, e.with(http.MethodGet, path, "", "If-None-Match", inm), tag1)
	}
	expectNotModified(t, e.with(http.MethodGet, path, "", "If-None-Match", `"nope"`, "If-None-Match", tag1), tag1)
	for _, inm := range []string{`"nope"`, strings.Trim(tag1, `"`), `W/"nope"`} {
		r := e.with(http.MethodGet, path, "", "If-None-Match", inm)
		expect(t, r, http.StatusOK, ctGeoJSON, nil)
		if string(r.Body) != got || etagOf(t, r) != tag1 {
			t.Errorf("If-None-Match %s: a different answer: %s", inm, r)
		}
	}
	expectProblem(t, e.with(http.MethodGet, "/v1/objects/"+demoDistrict+"0101999999", "", "If-None-Match", "*"),
		http.StatusNotFound, typeNotFound, "", "0101999999")

	// PUT with the current ETag: 200 and a new ETag, the one GET then gives.
	r = e.with(http.MethodPut, path, body(`{"v":2}`), "If-Match", tag1)
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	tag2 := etagOf(t, r)
	if tag2 == tag1 {
		t.Fatalf("ETag did not change after a PUT: %s", tag2)
	}
	if !strings.Contains(string(r.Body), `"v":2`) {
		t.Errorf("PUT answer: %s", r)
	}
	got, now := objectState(t, e, code)
	if now != tag2 || got != string(r.Body) {
		t.Errorf("after PUT GET gives ETag %s and %s; the PUT answered %s and %s", now, got, tag2, r.Body)
	}
	// The old ETag no longer gives a 304.
	expect(t, e.with(http.MethodGet, path, "", "If-None-Match", tag1), http.StatusOK, ctGeoJSON, nil)

	// PUT with a stale ETag: 412 naming the current one, nothing written.
	attrsNow := func() string {
		return sqlStrings(t, e.store, `SELECT attrs::text FROM objects WHERE code = $1`, code)[0]
	}
	expectStale(t, e.with(http.MethodPut, path, body(`{"v":3}`), "If-Match", tag1), tag2)
	// Strong comparison: the weak form of the current ETag does not match;
	// neither does the bare hash (not an entity-tag).
	expectStale(t, e.with(http.MethodPut, path, body(`{"v":3}`), "If-Match", "W/"+tag2), tag2)
	expectStale(t, e.with(http.MethodPut, path, body(`{"v":3}`), "If-Match", strings.Trim(tag2, `"`)), tag2)
	// A stale ETag is answered before the body's rules.
	expectStale(t, e.with(http.MethodPut, path, objFeatureJSON(code, "0101", `{"type":"Point","coordinates":[114,95]}`, ""), "If-Match", tag1), tag2)
	if a := attrsNow(); a != `{"v": 2}` {
		t.Errorf("a refused PUT wrote attrs %s", a)
	}
	if after, tag := objectState(t, e, code); tag != tag2 || after != got {
		t.Errorf("a refused PUT changed the object: ETag %s, want %s", tag, tag2)
	}
	// With the current ETag, the rules still apply.
	expectProblem(t, e.with(http.MethodPut, path, objFeatureJSON(code, "0101", `{"type":"Point","coordinates":[114,95]}`, ""), "If-Match", tag2),
		http.StatusUnprocessableEntity, typeObjInvalid, "geometry", "latitude")

	// A list matches when any entry does; * when the object exists.
	r = e.with(http.MethodPut, path, body(`{"v":3}`), "If-Match", `"nope", `+tag2)
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	tag3 := etagOf(t, r)
	r = e.with(http.MethodPut, path, body(`{"v":4}`), "If-Match", "*")
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	tag4 := etagOf(t, r)
	// Writing the same content back is a change too: no A-B-A.
	r = e.with(http.MethodPut, path, body(`{"v":4}`), "If-Match", tag4)
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	tag5 := etagOf(t, r)
	seen := map[string]bool{}
	for _, tag := range []string{tag1, tag2, tag3, tag4, tag5} {
		if seen[tag] {
			t.Errorf("ETag %s given to two versions: %s %s %s %s %s", tag, tag1, tag2, tag3, tag4, tag5)
		}
		seen[tag] = true
	}
	expectStale(t, e.with(http.MethodPut, path, body(`{"v":5}`), "If-Match", tag4), tag5)

	// Without If-Match a PUT still replaces.
	r = e.put(path, body(`{"v":6}`))
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	tag6 := etagOf(t, r)

	// The ETag follows the row, not the second-resolution updated_at of the
	// body: a change of a microsecond, or of content alone, changes it.
	for _, q := range []string{
		`UPDATE objects SET updated_at = updated_at + interval '1 microsecond' WHERE code = $1`,
		`UPDATE objects SET attrs = '{"v":7}' WHERE code = $1`,
		`UPDATE objects SET geom = ST_Translate(geom, 1e-9, 0) WHERE code = $1`,
	} {
		before := tag6
		if _, err := e.store.Pool.Exec(context.Background(), q, code); err != nil {
			t.Fatal(err)
		}
		_, tag6 = objectState(t, e, code)
		if tag6 == before {
			t.Errorf("%s: ETag unchanged", q)
		}
	}

	// An unknown code: 404 whatever If-Match says (RFC 9110 §13.2.1), and
	// nothing is created.
	unknown := demoDistrict + "0101000077"
	for _, im := range []string{"*", tag6} {
		expectProblem(t, e.with(http.MethodPut, "/v1/objects/"+unknown, objFeatureJSON(unknown, "0101", pointJSON(x, y), ""), "If-Match", im),
			http.StatusNotFound, typeNotFound, "", unknown)
		expectProblem(t, e.with(http.MethodDelete, "/v1/objects/"+unknown, "", "If-Match", im), http.StatusNotFound, typeNotFound, "", unknown)
	}
	if n := sqlInt(t, e.store, `SELECT count(*) FROM objects WHERE code = $1`, unknown); n != 0 {
		t.Errorf("a conditional PUT of an unknown code created it")
	}

	// DELETE with a stale ETag: 412, the object is still there.
	expectStale(t, e.with(http.MethodDelete, path, "", "If-Match", tag5), tag6)
	expectStale(t, e.with(http.MethodDelete, path, "", "If-Match", "W/"+tag6), tag6)
	if _, tag := objectState(t, e, code); tag != tag6 {
		t.Errorf("a refused DELETE changed the object: ETag %s, want %s", tag, tag6)
	}
	// With the current one: 204, gone.
	r = e.with(http.MethodDelete, path, "", "If-Match", tag6)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("DELETE with the current ETag: %s", r)
	}
	expectProblem(t, e.get(path), http.StatusNotFound, typeNotFound, "", code)
	expectProblem(t, e.with(http.MethodDelete, path, "", "If-Match", "*"), http.StatusNotFound, typeNotFound, "", code)

	// DELETE without If-Match still works.
	expect(t, e.post("/v1/objects", body("")), http.StatusCreated, ctGeoJSON, nil)
	if r := e.del(path); r.Status != http.StatusNoContent {
		t.Errorf("DELETE without If-Match: %s", r)
	}
}

// Two writers holding the same ETag: exactly one wins, the other gets a
// 412, and the store holds the winner's write. Every fifth round a DELETE
// races the PUT; when the DELETE wins, the PUT finds no object (404).
func TestObjectETagRace(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, _ := demoPoint(t, e, "")
	code := demoDistrict + "0101000001"
	path := "/v1/objects/" + code
	body := func(attrs string) string { return objFeatureJSON(code, "0101", pointJSON(x, y), attrs) }
	expect(t, e.post("/v1/objects", body("")), http.StatusCreated, ctGeoJSON, nil)

	const rounds = 60
	for round := range rounds {
		_, tag := objectState(t, e, code)
		var wg sync.WaitGroup
		start := make(chan struct{})
		replies := make([]reply, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				<-start
				if round%5 == 4 && i == 1 {
					// Now and then a DELETE races the PUT.
					replies[i], errs[i] = e.send(http.MethodDelete, path, "", "If-Match", tag)
					return
				}
				replies[i], errs[i] = e.send(http.MethodPut, path, body(fmt.Sprintf(`{"round":%d,"writer":%d}`, round, i)), "If-Match", tag)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		winner := -1
		for i, r := range replies {
			switch r.Status {
			case http.StatusOK, http.StatusNoContent:
				if winner >= 0 {
					t.Fatalf("round %d: both writers won with ETag %s: %s; %s", round, tag, replies[0], replies[1])
				}
				winner = i
			case http.StatusPreconditionFailed:
				expectProblem(t, r, http.StatusPreconditionFailed, typeStale, "")
			case http.StatusNotFound:
				// A PUT that waited for a winning DELETE finds no object.
				if replies[1-i].Status != http.StatusNoContent {
					t.Fatalf("round %d: writer %d: %s", round, i, r)
				}
				expectProblem(t, r, http.StatusNotFound, typeNotFound, "", code)
			default:
				t.Fatalf("round %d: writer %d: %s", round, i, r)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won: %s; %s", round, replies[0], replies[1])
		}
		if replies[winner].Status == http.StatusNoContent {
			if n := sqlInt(t, e.store, `SELECT count(*) FROM objects WHERE code = $1`, code); n != 0 {
				t.Fatalf("round %d: the DELETE won but the object is there", round)
			}
			expect(t, e.post("/v1/objects", body("")), http.StatusCreated, ctGeoJSON, nil)
			continue
		}
		// The loser was told the winner's ETag, and the store holds the
		// winner's write.
		won := etagOf(t, replies[winner])
		expectProblem(t, replies[1-winner], http.StatusPreconditionFailed, typeStale, "", won)
		if _, now := objectState(t, e, code); now != won {
			t.Fatalf("round %d: stored ETag %s, the winner got %s", round, now, won)
		}
		want := fmt.Sprintf(`{"round": %d, "writer": %d}`, round, winner)
		if a := sqlStrings(t, e.store, `SELECT attrs::text FROM objects WHERE code = $1`, code)[0]; a != want {
			t.Fatalf("round %d: stored attrs %s, want the winner's %s", round, a, want)
		}
	}
}

func TestUnitETag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	path := "/v1/units/" + demoDistrict
	r := e.get(path)
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	full := etagOf(t, r)
	if again := etagOf(t, e.get(path)); again != full {
		t.Errorf("unit ETag changed between two GETs: %s, %s", full, again)
	}
	expectNotModified(t, e.with(http.MethodGet, path, "", "If-None-Match", full), full)
	expectNotModified(t, e.with(http.MethodGet, path, "", "If-None-Match", "W/"+full), full)
	expect(t, e.with(http.MethodGet, path, "", "If-None-Match", `"nope"`), http.StatusOK, ctGeoJSON, nil)
	// Another geometry mode is another representation.
	r = e.get(path + "?geometry=none")
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	if none := etagOf(t, r); none == full {
		t.Errorf("geometry=none and full share the ETag %s", full)
	}
	expect(t, e.with(http.MethodGet, path+"?geometry=none", "", "If-None-Match", full), http.StatusOK, ctGeoJSON, nil)
	// Other units, other ETags.
	if other := etagOf(t, e.get("/v1/units/"+demoDistrict+"001")); other == full {
		t.Errorf("a street shares the district's ETag %s", full)
	}
	expectProblem(t, e.with(http.MethodGet, "/v1/units/440399", "", "If-None-Match", "*"), http.StatusNotFound, typeNotFound, "", "440399")

	// Import a district; an unchanged re-import keeps the ETags, a changed
	// boundary makes a new version and a new ETag.
	expect(t, e.post("/v1/units:import", testCity), http.StatusCreated, ctJSON, nil)
	tagOf := func(code string) string { t.Helper(); return etagOf(t, e.get("/v1/units/"+code)) }
	district, west := tagOf("440399"), tagOf("440399001")
	expect(t, e.post("/v1/units:import", testCity), http.StatusOK, ctJSON, nil)
	if tagOf("440399") != district || tagOf("440399001") != west {
		t.Errorf("an unchanged re-import changed ETags")
	}
	expectNotModified(t, e.with(http.MethodGet, "/v1/units/440399001", "", "If-None-Match", west), west)
	var rep importReport
	moved := featureCollection(unitFeat("440399001", "street", square(113.0, 22.0, 113.04, 22.1)),
		unitFeat("440399002", "street", square(113.04, 22.0, 113.1, 22.1)))
	expect(t, e.post("/v1/units:import", moved), http.StatusOK, ctJSON, &rep)
	if rep.Updated != 2 {
		t.Fatalf("boundary edit: %+v, want 2 updated", rep)
	}
	r = e.with(http.MethodGet, "/v1/units/440399001", "", "If-None-Match", west)
	var f unitFeature
	expect(t, r, http.StatusOK, ctGeoJSON, &f)
	if now := etagOf(t, r); now == west || f.Properties.Version != 2 {
		t.Errorf("after a boundary edit: ETag %s (was %s), version %d", now, west, f.Properties.Version)
	}
	if tagOf("440399") != district {
		t.Errorf("the district's ETag changed, but the district did not")
	}
	// The demo district's ETag is untouched too.
	if tagOf(demoDistrict) != full {
		t.Errorf("the demo district's ETag changed")
	}
}
