// Package web holds gridmap's browser pages: the command-centre wall map
// (index.html, app.css and its script's ES modules: app.js, which starts
// the page, and the modules beside it), the boundary editor (editor.html,
// editor.css, editor.js) and the MapLibre GL JS files that
// `make web` copies from npm (web/node_modules/maplibre-gl/dist) into dist/.
// Everything is embedded in the binary, which needs no network at run time.
//
// dist/ always exists (it holds a committed .keep), so `go build` works in
// a fresh clone; a binary built without `make web` lacks MapLibre, and the
// server answers its files with 503 (see Missing).
package web

import (
	"embed"
	"io/fs"
)

//go:embed index.html editor.html app.css editor.css *.js all:dist
var files embed.FS

// Page files, served under /static/ (index.html is served at /): the page,
// its style sheet and every module embedded, so that a new module needs no
// list kept by hand. The modules import each other by relative URL, so they
// sit side by side.
var Page = pageFiles()

func pageFiles() []string {
	// Glob fails only on a malformed pattern, and this one is constant.
	js, _ := fs.Glob(files, "*.js")
	return append([]string{"index.html", "editor.html", "app.css", "editor.css"}, js...)
}

// MapLibre files, copied from maplibre-gl's dist/ by `make web` and served
// under /static/. MapLibre GL JS 6 is ES modules: the main module loads its
// worker module from the same folder. With them, terra-draw and its
// MapLibre adapter (the boundary editor's drawing), their ESM builds.
var MapLibre = []string{"maplibre-gl.mjs", "maplibre-gl-worker.mjs", "maplibre-gl.css", "terra-draw.js", "terra-draw-maplibre-gl-adapter.js"}

// File returns an embedded file by its name under /static/.
func File(name string) ([]byte, error) {
	for _, n := range MapLibre {
		if n == name {
			return fs.ReadFile(files, "dist/"+name)
		}
	}
	return fs.ReadFile(files, name)
}

// Missing lists the MapLibre files this binary was built without (all of
// them when `make web` did not run before `go build`).
func Missing() []string {
	var out []string
	for _, n := range MapLibre {
		if _, err := fs.Stat(files, "dist/"+n); err != nil {
			out = append(out, n)
		}
	}
	return out
}
