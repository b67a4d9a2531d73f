package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// TestStreamPositions: a stream with positions=true gets the workers that
// moved, throttled to one message per interval, filtered by unit; one
// without it gets none.
func TestStreamPositions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{PositionInterval: 200 * time.Millisecond})
	grids := evGridPoints(t, e.store)
	w1, w2 := e.newWorker("甲"), e.newWorker("乙")
	here := openSSE(t, e.url, "/v1/events/stream?positions=true&unit="+grids[0].code[:12])
	plain := openSSE(t, e.url, "/v1/events/stream")
	// w1 walks in the first grid, w2 in a grid of another community.
	other := grids[len(grids)-1]
	p1 := walk(w1, grids[0].lon, grids[0].lat, 5)
	p2 := walk(w2, other.lon, other.lat, 5)
	for i := range p1 {
		p1[i].T = time.Now().Add(-time.Duration(len(p1)-i) * 10 * time.Second).Format(time.RFC3339)
		p2[i].T = p1[i].T
	}
	expect(t, e.post("/v1/patrols/points", patrolBody(append(p1, p2...))), http.StatusOK, ctJSON, nil)
	m := here.nextData(5 * time.Second)
	if m.Event != "positions" || m.ID != "" {
		t.Fatalf("message %+v", m)
	}
	var body struct {
		Positions []struct {
			Worker int64
			Lon    float64
			Grid   string
		}
	}
	if err := json.Unmarshal([]byte(m.Data), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Positions) != 1 || body.Positions[0].Worker != w1 || body.Positions[0].Lon != p1[4].Lon.(float64) || body.Positions[0].Grid != grids[0].code {
		t.Fatalf("positions %+v", body)
	}
	// Nothing moved: nothing more (heartbeats aside) for a few intervals.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if m, ok := here.next(time.Until(deadline)); ok && m.Comment == "" {
			t.Fatalf("a message without a move: %+v", m)
		}
	}
	if m, ok := plain.next(300 * time.Millisecond); ok && m.Comment == "" {
		t.Fatalf("a stream without positions=true got %+v", m)
	}
}
