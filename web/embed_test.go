package web

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// imports finds the static imports of an ES module: `import … from './x.js'`.
var imports = regexp.MustCompile(`(?m)^import\s[^;]*?from\s+'([^']+)'`)

// The server serves only the files Page names, so every module of the page
// must be there: every .js file the binary embeds, and every module one of
// them imports (a module imported from elsewhere than beside it would not
// be served either). The editor imports terra-draw, which `make web`
// copies beside them.
func TestPageHoldsEveryModule(t *testing.T) {
	js, err := fs.Glob(files, "*.js")
	if err != nil {
		t.Fatal(err)
	}
	if len(js) == 0 {
		t.Fatal("no modules embedded")
	}
	for _, name := range js {
		if !slices.Contains(Page, name) {
			t.Errorf("%s is embedded but not in Page: the server would not serve it", name)
		}
		src, err := File(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			dep, ok := strings.CutPrefix(m[1], "./")
			if !ok || strings.Contains(dep, "/") {
				t.Errorf("%s imports %q: want a module beside it (./name.js), served under /static/", name, m[1])
				continue
			}
			if !slices.Contains(Page, dep) && !slices.Contains(MapLibre, dep) {
				t.Errorf("%s imports %s, which is neither in Page nor one of the files `make web` copies", name, dep)
			}
		}
	}
	for _, name := range Page {
		if _, err := File(name); err != nil {
			t.Errorf("Page names %s: %v", name, err)
		}
	}
}

// The imports pattern sees the forms the modules use.
func TestImportsPattern(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{"import { a } from './a.js';", []string{"./a.js"}},
		{"import { a,\n  b } from './b.js';\nimport { c } from './c.js';", []string{"./b.js", "./c.js"}},
		{"const m = await import('/static/maplibre-gl.mjs');", nil},
		{"// import { x } from './x.js';", nil},
	} {
		var got []string
		for _, m := range imports.FindAllStringSubmatch(tc.src, -1) {
			got = append(got, m[1])
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.src, got, tc.want)
		}
	}
}
