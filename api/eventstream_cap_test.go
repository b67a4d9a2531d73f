package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// Beyond MaxSubscribers a stream is a 503 with Retry-After; a stream that
// ends frees its place.
func TestEventStreamMaxSubscribers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{MaxSubscribers: 2})
	a := openSSE(t, e.url, "/v1/events/stream")
	openSSE(t, e.url, "/v1/events/stream?unit="+demoDistrict)
	r := e.get("/v1/events/stream")
	expectProblem(t, r, http.StatusServiceUnavailable, typeUnavail, "", "event streams")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %s", r)
	}
	a.close()
	// The server frees the place when it sees the client gone.
	status := func() int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/events/stream", nil)
		resp, err := http.DefaultClient.Do(e.authorize(req))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s := status()
		if s == http.StatusOK {
			break
		}
		if s != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after a stream ended: status %d, want 200", s)
		}
	}
}
