package api

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"gridmap/web"
)

// webRoutes registers the wall map (/), its files (/static/…) and the
// district list (/districts).
func (s *Server) webRoutes(r *mux.Router) {
	s.handle(r, "/", s.wallPage, http.MethodGet, http.MethodHead)
	s.handle(r, "/editor", s.editorPage, http.MethodGet, http.MethodHead)
	s.handle(r, "/static/{file}", s.static, http.MethodGet, http.MethodHead)
	s.handle(r, "/districts", s.districts, http.MethodGet, http.MethodHead)
}

// asset is one embedded file, ready to serve: its bytes, a gzip copy (for
// the large MapLibre modules), and a content ETag.
type asset struct {
	name  string
	ctype string
	body  []byte
	etag  string
	gz    []byte
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// assets are the embedded page and MapLibre files by name, read once.
var assets = sync.OnceValue(func() map[string]*asset { return loadAssets(web.File) })

// loadAssets reads the page and MapLibre files; a file read cannot find
// (MapLibre without `make web`) is left out.
func loadAssets(read func(name string) ([]byte, error)) map[string]*asset {
	out := map[string]*asset{}
	for _, n := range append(append([]string{}, web.Page...), web.MapLibre...) {
		b, err := read(n)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		a := &asset{name: n, ctype: contentTypes[path.Ext(n)], body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		if len(b) > 8<<10 {
			var z bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
			_, _ = zw.Write(b)
			_ = zw.Close()
			a.gz = z.Bytes()
		}
		out[n] = a
	}
	return out
}

// isMapLibre tells the names `make web` provides.
func isMapLibre(name string) bool {
	for _, n := range web.MapLibre {
		if n == name {
			return true
		}
	}
	return false
}

// wallPage: GET / — the command-centre wall map (web/index.html).
func (s *Server) wallPage(w http.ResponseWriter, r *http.Request) error {
	serveAsset(w, r, assets()["index.html"])
	return nil
}

// editorPage: GET /editor — the boundary editor (web/editor.html).
func (s *Server) editorPage(w http.ResponseWriter, r *http.Request) error {
	serveAsset(w, r, assets()["editor.html"])
	return nil
}

// static: GET /static/{file} — the wall map's script and style sheet and
// MapLibre GL JS. A MapLibre file the binary was built without (no
// `make web` before `go build`) is a 503 that says so.
func (s *Server) static(w http.ResponseWriter, r *http.Request) error {
	serveStatic(w, r, assets(), mux.Vars(r)["file"])
	return nil
}

// serveStatic answers the file name of files. Its problems involve no
// store, so it writes them itself and can be tested without a server.
func serveStatic(w http.ResponseWriter, r *http.Request, files map[string]*asset, name string) {
	if a, ok := files[name]; ok && name != "index.html" && name != "editor.html" {
		serveAsset(w, r, a)
		return
	}
	p := notFound("no static file %q", name)
	if isMapLibre(name) {
		p = &Problem{Type: probUnavailable, Title: "Web assets not built", Status: http.StatusServiceUnavailable,
			Detail: fmt.Sprintf("%s is not in this binary: it was built without `make web` (which copies MapLibre GL JS and terra-draw from web/node_modules into web/dist); run `make web` and build again", name)}
	}
	writeProblem(w, r, *p)
}

// serveAsset answers an embedded file with its ETag (304 on If-None-Match),
// revalidation on every load (the files change with the binary), and gzip
// when the client takes it.
func serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	body, etag := a.body, a.etag
	if a.gz != nil {
		h.Set("Vary", "Accept-Encoding")
		if acceptsEncoding(r.Header.Get("Accept-Encoding"), "gzip") {
			body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(body))
}
