package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gridmap/data"
	"gridmap/grid"
)

func TestProblemFor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		err    error
		status int
		typ    string
		param  string
		ext    string // an extension member the problem has
	}{
		{"problem", &Problem{Type: probOutside, Title: "Outside every grid", Status: 422}, 422, probOutside, "", ""},
		{"wrapped problem", fmt.Errorf("check: %w", notFound("no such thing")), 404, probNotFound, "", ""},
		{"parameter", &paramError{"bbox", "bbox=x"}, 400, probBadParameter, "bbox", ""},
		{"filter", &data.FilterError{Param: "cursor", Msg: "bad cursor"}, 400, probBadParameter, "cursor", ""},
		{"invalid", &data.InvalidError{Field: "class", Msg: "unknown class"}, 422, probInvalid, "class", ""},
		{"stale", &data.StaleError{Resource: "event", Code: "e1", Current: `"2"`}, 412, probStale, "", "etag"},
		{"illegal transition", &grid.TransitionError{From: "closed", To: "registered"}, 409, probIllegalTransition, "", "allowed"},
		{"idempotency", &data.IdempotencyError{Event: "e1"}, 422, probIdempotency, "", "event"},
		{"too large", &http.MaxBytesError{Limit: 10}, 413, probTooLarge, "", "limit_bytes"},
		{"exists", fmt.Errorf("class x: %w", data.ErrExists), 409, probConflict, "", ""},
		{"not found", data.ErrNotFound, 404, probNotFound, "", ""},
		{"not found with a detail", notFoundAs(data.ErrNotFound, "no unit %q", "44"), 404, probNotFound, "", ""},
	} {
		p := problemFor(c.err)
		if p == nil {
			t.Errorf("%s: no problem, a 500", c.name)
			continue
		}
		if p.Status != c.status || p.Type != c.typ || p.Param != c.param || p.Title == "" || p.Detail == "" && c.typ != probOutside {
			t.Errorf("%s: %+v, want %d %s param %q", c.name, p, c.status, c.typ, c.param)
		}
		if _, ok := p.Extensions[c.ext]; c.ext != "" && !ok {
			t.Errorf("%s: no member %s in %+v", c.name, c.ext, p.Extensions)
		}
	}
	for _, err := range []error{errors.New("connection refused"), notFoundAs(errors.New("timeout"), "no unit")} {
		if p := problemFor(err); p != nil {
			t.Errorf("%v: %+v, want a 500", err, p)
		}
	}
}

// A failure of ours answers 500 with a request id, and not its cause; a
// client that has gone gets nothing.
func TestWriteErrorInternal(t *testing.T) {
	t.Parallel()
	var log strings.Builder
	s := &Server{log: slog.New(slog.NewTextHandler(&log, nil))}
	w := httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest(http.MethodGet, "/v1/units", nil), errors.New("password authentication failed"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "password") || !strings.Contains(w.Body.String(), `"request_id"`) {
		t.Errorf("500: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(log.String(), "password authentication failed") || !strings.Contains(log.String(), "request_id=") {
		t.Errorf("log: %s", log.String())
	}

	s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest(http.MethodGet, "/v1/units", nil).WithContext(ctx), fmt.Errorf("query: %w", context.Canceled))
	if w.Body.Len() != 0 {
		t.Errorf("client gone: %d %s", w.Code, w.Body)
	}
}

func TestAcceptsEncoding(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		header, coding string
		want           bool
	}{
		{"", "gzip", false},
		{"gzip", "gzip", true},
		{"gzip, deflate, br", "gzip", true},
		{"GZIP;q=0.5", "gzip", true},
		{"x-gzip", "gzip", true},
		{"gzip;q=0", "gzip", false},
		{"gzip; q=0.0", "gzip", false},
		{"*", "gzip", true},
		{"*;q=0", "gzip", false},
		{"gzip;q=0, *", "gzip", false},
		{"identity", "gzip", false},
		{"deflate, br", "br", true},
		{"gzip", "br", false},
	} {
		if got := acceptsEncoding(c.header, c.coding); got != c.want {
			t.Errorf("acceptsEncoding(%q, %q) = %v, want %v", c.header, c.coding, got, c.want)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	t.Parallel()
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	for _, c := range []struct {
		name   string
		raw    string
		strict bool
		status int
		param  string
	}{
		{"ok", `{"name": "a", "count": 1}`, false, 0, ""},
		{"ok strict", `{"name": "a"}`, true, 0, ""},
		{"unknown member", `{"nme": "a"}`, false, 0, ""},
		{"unknown member strict", `{"nme": "a"}`, true, 422, "nme"},
		{"wrong type", `{"count": "1"}`, false, 422, "count"},
		{"wrong type strict", `{"count": "1"}`, true, 422, "count"},
		{"malformed", `{"name": `, false, 400, ""},
		{"malformed strict", `{"name": `, true, 400, ""},
		{"trailing data", `{"name": "a"} {}`, false, 400, ""},
		{"trailing data strict", `{"name": "a"} {}`, true, 400, ""},
		{"empty strict", ``, true, 400, ""},
	} {
		var v body
		decode := decodeJSON
		if c.strict {
			decode = decodeStrict
		}
		err := decode([]byte(c.raw), &v, "a body")
		if c.status == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		p := problemFor(err)
		if p == nil || p.Status != c.status || p.Param != c.param {
			t.Errorf("%s: %v → %+v, want %d param %q", c.name, err, p, c.status, c.param)
		}
	}
}
