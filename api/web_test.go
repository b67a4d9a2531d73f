package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
	"gridmap/web"
)

// TestWallPage: / is the wall map, its files are served from the binary
// with ETags, and every file the page names is there (MapLibre when the
// binary was built after `make web`, else a 503 that says so).
func TestWallPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	r := e.get("/")
	expect(t, r, http.StatusOK, "text/html", nil)
	page := string(r.Body)
	for _, want := range []string{`src="/static/app.js"`, `href="/static/app.css"`, `href="/static/maplibre-gl.css"`, `href="/districts"`, `lang="zh-CN"`} {
		if !strings.Contains(page, want) {
			t.Errorf("wall page lacks %s", want)
		}
	}
	if r := e.do(http.MethodHead, "/", nil); r.Status != http.StatusOK {
		t.Errorf("HEAD /: %s", r)
	}
	expectProblem(t, e.do(http.MethodPost, "/", nil), http.StatusMethodNotAllowed, typeNotAllowed, "")

	// The page's own references, and the module app.js imports.
	refs := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(page, -1)
	paths := []string{"/static/maplibre-gl.mjs", "/static/maplibre-gl-worker.mjs"}
	for _, m := range refs {
		paths = append(paths, m[1])
	}
	missing := map[string]bool{}
	for _, n := range web.Missing() {
		missing["/static/"+n] = true
	}
	for _, p := range paths {
		r := e.get(p)
		if missing[p] {
			expectProblem(t, r, http.StatusServiceUnavailable, typeUnavail, "", "make web")
			continue
		}
		want := map[string]string{".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}[p[strings.LastIndex(p, "."):]]
		expect(t, r, http.StatusOK, want, nil)
		body, err := web.File(strings.TrimPrefix(p, "/static/"))
		if err != nil || !bytes.Equal(r.Body, body) {
			t.Errorf("%s: %d bytes served, the binary holds %d (%v)", p, len(r.Body), len(body), err)
		}
		etag := r.Header.Get("ETag")
		if etag == "" || r.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: ETag %q, Cache-Control %q", p, etag, r.Header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest(http.MethodGet, e.url+p, nil)
		req.Header.Set("If-None-Match", etag)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %v %v", p, resp.Status, err)
		} else {
			resp.Body.Close()
		}
	}
	if len(web.Missing()) == 0 {
		// The big module goes gzipped to a client that takes it.
		req, _ := http.NewRequest(http.MethodGet, e.url+"/static/maplibre-gl.mjs", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("maplibre-gl.mjs: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(zr)
		want, _ := web.File("maplibre-gl.mjs")
		if !bytes.Equal(got, want) {
			t.Errorf("gzipped maplibre-gl.mjs: %d bytes after gunzip, want %d", len(got), len(want))
		}
	}
	expectProblem(t, e.get("/static/nope.js"), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.get("/static/index.html"), http.StatusNotFound, typeNotFound, "")
}
