package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data/pgtest"
)

// unitChangeMsg is a unit change as GET /v1/units/changes lists it and the
// stream sends it.
type unitChangeMsg struct {
	Type         string            `json:"type"`
	Seq          int64             `json:"seq"`
	At           time.Time         `json:"at"`
	Operation    string            `json:"operation"`
	Layer        string            `json:"layer"`
	Codes        []string          `json:"codes"`
	Retired      []string          `json:"retired"`
	CodeMap      map[string]string `json:"code_map"`
	Versions     map[string]int    `json:"versions"`
	BBox         [4]float64        `json:"bbox"`
	Actor        string            `json:"actor"`
	Reason       string            `json:"reason"`
	Truncated    bool              `json:"truncated"`
	CodesTotal   int               `json:"codes_total"`
	RetiredTotal int               `json:"retired_total"`
	CodeMapTotal int               `json:"code_map_total"`
}

type unitChangesReply struct {
	Changes []unitChangeMsg `json:"changes"`
	Next    int64           `json:"next"`
}

func decodeUnitMsg(t *testing.T, m sseMsg) unitChangeMsg {
	t.Helper()
	if m.Event != "unit" {
		t.Fatalf("message %+v, want a unit change", m)
	}
	var u unitChangeMsg
	if err := json.Unmarshal([]byte(m.Data), &u); err != nil {
		t.Fatalf("message %+v: %v", m, err)
	}
	if id, err := strconv.ParseInt(m.ID, 10, 64); err != nil || id != u.Seq || u.Type != "unit" {
		t.Errorf("message id %q, data seq %d type %q", m.ID, u.Seq, u.Type)
	}
	return u
}

func (e *apiEnv) unitChanges(t *testing.T, query string) unitChangesReply {
	t.Helper()
	var r unitChangesReply
	expect(t, e.get("/v1/units/changes"+query), http.StatusOK, ctJSON, &r)
	return r
}

func inBBox(b [4]float64, lon, lat float64) bool {
	return lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3]
}

// TestUnitChanges: an import that changes a unit is one "unit" entry of the
// feed (operation, codes, versions, bbox, who and why), listed by GET
// /v1/units/changes and sent on the event stream in commit order between
// the events' entries, with the same ids; a resume after an event gets it.
func TestUnitChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)
	// The demo city's own import is the first entry.
	all := e.unitChanges(t, "?since=0")
	if len(all.Changes) != 1 || all.Changes[0].Operation != "import" || all.Changes[0].Layer != "base" ||
		all.Changes[0].CodesTotal != sqlInt(t, e.store, `SELECT count(*) FROM units WHERE layer = 'base'`) || len(all.Changes[0].Codes) != all.Changes[0].CodesTotal {
		t.Fatalf("since=0 on the demo city: %+v", all)
	}
	start := newestFeedSeq(t, e.store)
	c := openSSE(t, e.url, "/v1/events/stream")

	ev1 := f.event(t, f.gA)
	expect(t, e.post("/v1/units:import?reason=rename", featureCollection(f.gridFeature(t, f.gB.code, "改名网格"))), http.StatusOK, ctJSON, nil)
	ev2 := f.event(t, f.gA2)

	m1 := decodeFeedMsg(t, c.nextData(5*time.Second))
	mu := c.nextData(5 * time.Second)
	u := decodeUnitMsg(t, mu)
	m2 := decodeFeedMsg(t, c.nextData(5*time.Second))
	if m1.Code != ev1 || m2.Code != ev2 || !(m1.Seq < u.Seq && u.Seq < m2.Seq) {
		t.Fatalf("stream: %s@%d, unit@%d, %s@%d; want %s, the unit change, %s in that order", m1.Code, m1.Seq, u.Seq, m2.Code, m2.Seq, ev1, ev2)
	}
	if u.Operation != "import" || u.Layer != "base" || !reflect.DeepEqual(u.Codes, []string{f.gB.code}) || len(u.Retired) != 0 ||
		len(u.CodeMap) != 0 || !reflect.DeepEqual(u.Versions, map[string]int{f.gB.code: 2}) || u.Actor != adminActor || u.Reason != "rename" ||
		u.CodesTotal != 1 || u.Truncated || u.At.IsZero() {
		t.Errorf("unit change %+v", u)
	}
	if !inBBox(u.BBox, f.gB.lon, f.gB.lat) || inBBox(u.BBox, f.gA.lon, f.gA.lat) {
		t.Errorf("bbox %v: want the grid %s (%f %f), not %s", u.BBox, f.gB.code, f.gB.lon, f.gB.lat, f.gA.code)
	}
	// The route lists the same entry, byte for byte as the stream sent it.
	got := e.unitChanges(t, fmt.Sprintf("?since=%d", start))
	if len(got.Changes) != 1 || !reflect.DeepEqual(got.Changes[0], u) || got.Next != m2.Seq {
		t.Errorf("since=%d: %+v, want the change and next %d", start, got, m2.Seq)
	}
	// Polling from next: nothing new, next stays.
	if again := e.unitChanges(t, fmt.Sprintf("?since=%d", got.Next)); len(again.Changes) != 0 || again.Next != got.Next {
		t.Errorf("since=next: %+v", again)
	}
	// Without since: none, and where to start.
	if now := e.unitChanges(t, ""); len(now.Changes) != 0 || now.Next != m2.Seq {
		t.Errorf("no since: %+v, want next %d", now, m2.Seq)
	}
	// Paging: limit=1 from 0 gives the demo city's, next its seq.
	if p := e.unitChanges(t, "?since=0&limit=1"); len(p.Changes) != 1 || p.Next != p.Changes[0].Seq || p.Changes[0].Seq >= u.Seq {
		t.Errorf("limit=1: %+v", p)
	}
	// layer: another layer has no change.
	if p := e.unitChanges(t, "?since=0&layer=base"); len(p.Changes) != 2 {
		t.Errorf("layer=base: %d changes", len(p.Changes))
	}

	// Resume after the first event: the unit change, then the second event.
	r := openSSE(t, e.url, "/v1/events/stream", "Last-Event-ID", strconv.FormatInt(m1.Seq, 10))
	if m := r.nextData(5 * time.Second); m != mu {
		t.Errorf("resumed: %+v, want %+v", m, mu)
	}
	if m := decodeFeedMsg(t, r.nextData(5*time.Second)); m.Code != ev2 {
		t.Errorf("resumed: then %s, want %s", m.Code, ev2)
	}

	// Filters: a status or class filter is about events; unit= and bbox=
	// match by codes and area.
	byStatus := openSSE(t, e.url, "/v1/events/stream?status=reported", "Last-Event-ID", strconv.FormatInt(start, 10))
	if m := decodeFeedMsg(t, byStatus.nextData(5*time.Second)); m.Code != ev1 {
		t.Errorf("status=reported: %s first", m.Code)
	}
	if m := decodeFeedMsg(t, byStatus.nextData(5*time.Second)); m.Code != ev2 {
		t.Errorf("status=reported: %s second, want %s (no unit change)", m.Code, ev2)
	}
	for _, q := range []string{"unit=" + streetB, "unit=" + f.gB.code, fmt.Sprintf("bbox=%f,%f,%f,%f", f.gB.lon-1e-4, f.gB.lat-1e-4, f.gB.lon+1e-4, f.gB.lat+1e-4)} {
		s := openSSE(t, e.url, "/v1/events/stream?"+q, "Last-Event-ID", strconv.FormatInt(start, 10))
		if m := s.nextData(5 * time.Second); m != mu {
			t.Errorf("%s: %+v first, want the unit change", q, m)
		}
	}
	s := openSSE(t, e.url, "/v1/events/stream?unit="+streetA, "Last-Event-ID", strconv.FormatInt(start, 10))
	for _, want := range []string{ev1, ev2} {
		if m := s.nextData(5 * time.Second); m.Event == "unit" || decodeFeedMsg(t, m).Code != want {
			t.Errorf("unit=%s: %+v, want %s (the change is in %s)", streetA, m, want, streetB)
		}
	}
}

// TestUnitChangesScoped: a reader scoped to a street sees the changes
// touching it, listing only its codes, on the route and the stream.
func TestUnitChangesScoped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)
	tok := mintToken(t, e.store, "changes-a", auth.Viewer, streetA)
	start := newestFeedSeq(t, e.store)
	c := openSSE(t, e.url, "/v1/events/stream", "Authorization", "Bearer "+tok)
	// One import in both streets, one in B only, one in A only.
	expect(t, e.post("/v1/units:import?reason=both", featureCollection(f.gridFeature(t, f.gA.code, "甲"), f.gridFeature(t, f.gB.code, "乙"))), http.StatusOK, ctJSON, nil)
	expect(t, e.post("/v1/units:import?reason=b", featureCollection(f.gridFeature(t, f.gB2.code, "乙二"))), http.StatusOK, ctJSON, nil)
	expect(t, e.post("/v1/units:import?reason=a", featureCollection(f.gridFeature(t, f.gA2.code, "甲二"))), http.StatusOK, ctJSON, nil)

	admin := e.unitChanges(t, fmt.Sprintf("?since=%d", start))
	if len(admin.Changes) != 3 || !reflect.DeepEqual(admin.Changes[0].Codes, []string{f.gA.code, f.gB.code}) {
		t.Fatalf("admin: %+v", admin)
	}
	var viewer unitChangesReply
	expect(t, e.as(t, tok).get(fmt.Sprintf("/v1/units/changes?since=%d", start)), http.StatusOK, ctJSON, &viewer)
	if len(viewer.Changes) != 2 || viewer.Next != admin.Next {
		t.Fatalf("scoped to %s: %+v, want 2 changes and next %d", streetA, viewer, admin.Next)
	}
	both, onlyA := viewer.Changes[0], viewer.Changes[1]
	if both.Reason != "both" || !reflect.DeepEqual(both.Codes, []string{f.gA.code}) || !reflect.DeepEqual(both.Versions, map[string]int{f.gA.code: 2}) ||
		both.CodesTotal != 1 || onlyA.Reason != "a" || !reflect.DeepEqual(onlyA.Codes, []string{f.gA2.code}) {
		t.Errorf("scoped changes: %+v", viewer.Changes)
	}
	for i, want := range viewer.Changes {
		if got := decodeUnitMsg(t, c.nextData(5*time.Second)); !reflect.DeepEqual(got, want) {
			t.Errorf("scoped stream, message %d: %+v, want %+v", i+1, got, want)
		}
	}
	for {
		m, ok := c.next(300 * time.Millisecond)
		if !ok {
			break
		}
		if m.Comment == "" {
			t.Errorf("a further message to the scoped subscriber: %+v", m)
		}
	}
}

// TestUnitChangesBadRequests: an unknown parameter, a bad since or limit
// are 400s naming them; a since older than the retention is a 410 saying
// through which seq the feed is gone and where to go on from.
func TestUnitChangesBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	expectProblem(t, e.get("/v1/units/changes?since=0&unit=440308"), http.StatusBadRequest, typeBadParam, "unit", "unknown query parameter")
	expectProblem(t, e.get("/v1/units/changes?since=-1"), http.StatusBadRequest, typeBadParam, "since")
	expectProblem(t, e.get("/v1/units/changes?since=x"), http.StatusBadRequest, typeBadParam, "since")
	expectProblem(t, e.get("/v1/units/changes?since="), http.StatusBadRequest, typeBadParam, "since")
	expectProblem(t, e.get("/v1/units/changes?since=0&limit=0"), http.StatusBadRequest, typeBadParam, "limit")
	expectProblem(t, e.get("/v1/units/changes?since=0&layer=nope"), http.StatusBadRequest, typeBadParam, "layer")
	expectProblem(t, e.get("/v1/units/changes?since=0&since=1"), http.StatusBadRequest, typeBadParam, "since")

	f := newScopeFixture(t, e)
	expect(t, e.post("/v1/units:import?reason=rename", featureCollection(f.gridFeature(t, f.gB.code, "改名网格"))), http.StatusOK, ctJSON, nil)
	newest := newestFeedSeq(t, e.store)
	if n, _, err := e.store.PruneEvents(context.Background(), 0, time.Hour); err != nil || n != 2 {
		t.Fatalf("PruneEvents: %d %v", n, err)
	}
	for _, since := range []int64{0, newest - 1} {
		r := e.get(fmt.Sprintf("/v1/units/changes?since=%d", since))
		expectProblem(t, r, http.StatusGone, "https://gridmap.dev/problems/feed-pruned", "since", "GET /v1/units")
		ext := problemExt(t, r)
		if ext["pruned_through"] != float64(newest) || ext["next"] != float64(newest) {
			t.Errorf("since=%d: %v, want pruned_through and next %d", since, ext, newest)
		}
	}
	// From the pruned mark nothing is missed.
	if p := e.unitChanges(t, fmt.Sprintf("?since=%d", newest)); len(p.Changes) != 0 || p.Next != newest {
		t.Errorf("since=%d: %+v", newest, p)
	}
	// The stream tells a subscriber resuming from before the mark.
	c := openSSE(t, e.url, "/v1/events/stream", "Last-Event-ID", "0")
	if m := c.nextData(5 * time.Second); m.Event != "reset" {
		t.Errorf("stream from 0: %+v, want a reset", m)
	}
}
