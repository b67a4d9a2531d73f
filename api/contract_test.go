package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// servedContract fetches /openapi.json without a credential and loads it.
func servedContract(t *testing.T, e *apiEnv) *openapi3.T {
	t.Helper()
	resp, err := http.Get(e.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.oai.openapi+json;version=3.0" {
		t.Fatalf("/openapi.json: %d %s: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load /openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("/openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// The contract is served to anyone, as JSON (its own media type or plain
// JSON by Accept) and YAML, and is a valid OpenAPI 3.0 document.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{}) // no public reads: the contract still is
	doc := servedContract(t, e)
	if doc.OpenAPI != "3.0.3" || doc.Info == nil || doc.Info.Title != "gridmap" {
		t.Errorf("openapi %q, info %+v", doc.OpenAPI, doc.Info)
	}
	for _, c := range []struct{ accept, ctype string }{
		{"application/json", "application/json"},
		{"application/vnd.oai.openapi+json", "application/vnd.oai.openapi+json;version=3.0"},
		{"text/html, */*;q=0.1", "application/vnd.oai.openapi+json;version=3.0"},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/openapi.json", nil)
		req.Header.Set("Accept", c.accept)
		r := send(t, req)
		if r.Status != http.StatusOK || r.Header.Get("Content-Type") != c.ctype || !strings.Contains(string(r.Body), `"/v1/units/{code}"`) {
			t.Errorf("Accept %s: %s", c.accept, r)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/openapi.json", nil)
	req.Header.Set("Accept", "text/html")
	expectProblem(t, send(t, req), http.StatusNotAcceptable, "https://gridmap.dev/problems/not-acceptable", "", "application/json")

	req, _ = http.NewRequest(http.MethodGet, e.url+"/openapi.yaml", nil)
	r := send(t, req)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/vnd.oai.openapi;version=3.0" {
		t.Fatalf("/openapi.yaml: %s", r)
	}
	var generic map[string]any
	if err := yaml.Unmarshal(r.Body, &generic); err != nil {
		t.Fatalf("/openapi.yaml: %v", err)
	}
	if paths, _ := generic["paths"].(map[string]any); len(paths) != doc.Paths.Len() {
		t.Errorf("/openapi.yaml has %d paths, /openapi.json %d", len(paths), doc.Paths.Len())
	}
	req, _ = http.NewRequest(http.MethodHead, e.url+"/openapi.json", nil)
	if r := send(t, req); r.Status != http.StatusOK || len(r.Body) != 0 {
		t.Errorf("HEAD /openapi.json: %s", r)
	}
}

// send makes a request without the env's credential.
func send(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Every route of the server is an operation of the contract, and every
// operation a route.
func TestContractCoversRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	doc := servedContract(t, e)
	routes := e.srv.Routes()
	n := 0
	for tpl, methods := range routes {
		for _, m := range methods {
			n++
			item := doc.Paths.Value(tpl)
			if item == nil || item.GetOperation(m) == nil {
				t.Errorf("route %s %s is not in the contract", m, tpl)
			}
		}
	}
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			if !slices.Contains(routes[p], m) {
				t.Errorf("the contract's %s %s is no route of the server", m, p)
			}
		}
	}
	if n < 60 {
		t.Errorf("only %d routes: %v", n, routes)
	}
	// security: [] where no credential is read, and only there (this
	// server does not allow anonymous reads).
	for p, item := range doc.Paths.Map() {
		for m, op := range item.Operations() {
			public := op.Security != nil && len(*op.Security) == 0
			req, _ := http.NewRequest(m, e.url+fillTemplate(p), nil)
			r := send(t, req)
			if public == (r.Status == http.StatusUnauthorized) {
				t.Errorf("%s %s without a credential (public in the contract: %v): %s", m, p, public, r)
			}
		}
	}
}

// pathValues fill the path templates of the contract for requests that
// never reach a handler's work.
var pathValues = map[string]string{"code": demoDistrict, "layer": "units", "z": "0", "x": "0", "y": "0", "name": "demo",
	"file": "app.js", "fontstack": "Noto Sans Regular", "range": "0-255", "day": "2026-12-24",
	"collectionId": "grids", "featureId": demoDistrict, "collection": "grids", "id": "1", "n": "1",
	"sha256": "0000000000000000000000000000000000000000000000000000000000000000"}

func fillTemplate(tpl string) string {
	for k, v := range pathValues {
		tpl = strings.ReplaceAll(tpl, "{"+k+"}", v)
	}
	return tpl
}

// On every operation of the contract, a query parameter it does not
// declare is a 400 naming it and listing what it takes, and so is one of
// its parameters given twice (unless an array); nothing is written.
func TestStrictParamsEveryRoute(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	doc := servedContract(t, e)
	before := tableState(t, e)
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	n := 0
	for _, p := range paths {
		item := doc.Paths.Value(p)
		methods := make([]string, 0, len(item.Operations()))
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			op := item.GetOperation(m)
			if v, _ := op.Extensions["x-gridmap-dynamic-params"].(bool); v {
				continue
			}
			if strings.Contains(fillTemplate(p), "{") {
				t.Fatalf("no value for a parameter of %s", p)
			}
			n++
			var takes []string
			once := ""
			for _, list := range []openapi3.Parameters{item.Parameters, op.Parameters} {
				for _, ref := range list {
					if ref.Value.In != openapi3.ParameterInQuery {
						continue
					}
					takes = append(takes, ref.Value.Name)
					if once == "" && !ref.Value.Schema.Value.Type.Is(openapi3.TypeArray) {
						once = ref.Value.Name
					}
				}
			}
			what := m + " " + p
			r := e.do(m, fillTemplate(p)+"?zz_unknown=1", nil)
			if m == http.MethodHead {
				if r.Status != http.StatusBadRequest {
					t.Errorf("%s?zz_unknown=1: %s", what, r)
				}
				continue
			}
			want := append([]string{`"zz_unknown"`}, takes...)
			if len(takes) == 0 {
				want = append(want, "no query parameters")
			}
			expectProblem(t, r, http.StatusBadRequest, typeBadParam, "zz_unknown", want...)
			if once != "" {
				expectProblem(t, e.do(m, fillTemplate(p)+"?"+once+"=1&"+once+"=1", nil), http.StatusBadRequest, typeBadParam, once,
					once+" is given 2 times")
			}
		}
	}
	if n < 60 {
		t.Errorf("only %d operations checked", n)
	}
	expectUnchanged(t, e, before, "requests with unknown or repeated parameters")
}

// The validating transport fails an exchange that breaks the contract: an
// answer of the wrong shape, status or media type, a 2xx to a request the
// contract calls invalid, a route the contract does not have. The server
// here answers wrongly on purpose.
func TestContractTransportCatches(t *testing.T) {
	t.Parallel()
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status": 5}`)
		case r.URL.Path == "/readyz":
			w.WriteHeader(http.StatusTeapot)
		case r.URL.RawQuery == "lon=1&lat=1":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"lon": 1, "lat": 1, "district": null, "street": null, "community": null, "grid": null}`)
		}
	}))
	defer wrong.Close()
	envTokens.Store(wrong.URL, "none")
	defer envTokens.Delete(wrong.URL)
	for path, want := range map[string]string{
		"/healthz":                     "does not match the contract",
		"/readyz":                      "status 418 is not documented",
		"/v1/locate?lon=1&lat=1":       `media type "text/plain" is not documented`,
		"/v1/locate?lon=abc&lat=1":     "calls the request invalid",
		"/v1/locate?lon=1&lat=1&lat=2": "calls the request invalid",
		"/nowhere":                     "no such operation",
	} {
		resp, err := http.Get(wrong.URL + path)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: no error, want %q", path, want)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "GET "+path) {
			t.Errorf("%s: %v, want %q naming the request", path, err, want)
		}
	}
}
