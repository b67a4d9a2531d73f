package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// The embedded fragments merge into a valid document.
func TestContractBuilds(t *testing.T) {
	c, err := buildContract(contractFiles)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.params); n < 60 {
		t.Fatalf("%d operations, want the whole server's", n)
	}
}

// A path or component defined in two fragments, or a fragment with more
// than paths and components, stops the build naming both fragments.
func TestContractDuplicates(t *testing.T) {
	core, err := contractFiles.ReadFile("openapi/core.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, frag := range map[string]struct{ text, want string }{
		"path":      {"paths:\n  /healthz:\n    get:\n      responses: {\"200\": {description: x}}\n", "path /healthz is defined in openapi/core.yaml and in openapi/zz.yaml"},
		"component": {"components:\n  schemas:\n    Problem: {type: object}\n", "components/schemas/Problem is defined in openapi/core.yaml and in openapi/zz.yaml"},
		"head":      {"info: {title: x, version: \"2\"}\n", `not "info"`},
	} {
		fsys := fstest.MapFS{"openapi/core.yaml": {Data: core}, "openapi/zz.yaml": {Data: []byte(frag.text)}}
		_, err := buildContract(fsys)
		if err == nil || !strings.Contains(err.Error(), frag.want) {
			t.Errorf("%s: err %v, want %q", name, err, frag.want)
		}
	}
}

// BenchmarkStrictParams is what the contract's parameter check adds to a
// request: a locate with three parameters through strictParams, against
// the same handler without it.
func BenchmarkStrictParams(b *testing.B) {
	c, err := buildContract(contractFiles)
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{contract: c}
	noop := func(http.ResponseWriter, *http.Request) error { return nil }
	r := httptest.NewRequest(http.MethodGet, "/v1/locate?lon=114.0579&lat=22.5431&as_of=2026-11-23", nil)
	w := httptest.NewRecorder()
	for _, bc := range []struct {
		name string
		h    handlerFunc
	}{{"without", noop}, {"with", s.strictParams("/v1/locate", noop)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.h(w, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
