package api

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A binary built without `make web` has the page but no MapLibre: its
// files answer 503 problem+json naming the fix, the page's own files 200.
func TestStaticWithoutMapLibre(t *testing.T) {
	t.Parallel()
	files := loadAssets(func(name string) ([]byte, error) {
		if isMapLibre(name) {
			return nil, fs.ErrNotExist
		}
		return []byte(fmt.Sprintf("/* %s */", name)), nil
	})
	for _, name := range []string{"maplibre-gl.mjs", "maplibre-gl-worker.mjs", "maplibre-gl.css"} {
		w := httptest.NewRecorder()
		serveStatic(w, httptest.NewRequest(http.MethodGet, "/static/"+name, nil), files, name)
		var p Problem
		if w.Code != http.StatusServiceUnavailable || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
			t.Fatalf("%s: %d %s", name, w.Code, w.Header().Get("Content-Type"))
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || !strings.Contains(p.Detail, "make web") || p.Type != probUnavailable {
			t.Errorf("%s: %s (%v)", name, w.Body, err)
		}
	}
	w := httptest.NewRecorder()
	serveStatic(w, httptest.NewRequest(http.MethodGet, "/static/app.js", nil), files, "app.js")
	if w.Code != http.StatusOK || w.Body.String() != "/* app.js */" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("app.js: %d %q %s", w.Code, w.Body, w.Header().Get("Content-Type"))
	}
}
