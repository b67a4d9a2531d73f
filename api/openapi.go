package api

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

// The OpenAPI contract is written in YAML fragments (api/openapi/*.yaml):
// core.yaml holds the document's head, the shared components and the core
// routes; each other fragment adds paths and components of its own. They
// are merged once, checked with kin-openapi, and then serve three ends: the
// document at /openapi.json, the query parameters each route takes
// (middleware_params.go), and the API tests, which validate every request
// and answer against it.
//
//go:embed openapi/*.yaml
var contractFiles embed.FS

// contract is the merged, validated document and what is derived from it.
type contract struct {
	doc  *openapi3.T
	json []byte // the document as served
	yaml []byte
	// params maps "METHOD /path/template" to the query parameters of the
	// operation.
	params map[string]*paramRule
}

// coreFragment holds the document's head; the other fragments may only add
// paths and components.
const coreFragment = "core.yaml"

// dynamicParamsExt on an operation says its query parameters vary at run
// time (property filters): the operation checks them itself.
const dynamicParamsExt = "x-gridmap-dynamic-params"

// theContract is built once: the fragments are embedded, so every server
// of the process has the same one.
var theContract = sync.OnceValues(func() (*contract, error) { return buildContract(contractFiles) })

// Contract is the merged OpenAPI document as served at /openapi.json.
func Contract() ([]byte, error) {
	c, err := theContract()
	if err != nil {
		return nil, err
	}
	return c.json, nil
}

// buildContract merges the fragments under openapi/ in fsys, adds the
// responses every operation has, and validates the result.
func buildContract(fsys fs.FS) (*contract, error) {
	merged, err := mergeFragments(fsys)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("openapi: load the merged document: %w", err)
	}
	if err := addCommonResponses(doc); err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: the merged document is not valid: %w", err)
	}
	c := &contract{doc: doc, params: map[string]*paramRule{}}
	if c.json, err = json.Marshal(doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	var generic any
	if err := json.Unmarshal(c.json, &generic); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if c.yaml, err = yaml.Marshal(generic); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	for p, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			c.params[method+" "+p] = newParamRule(item.Parameters, op)
		}
	}
	return c, nil
}

// mergeFragments reads every fragment (core.yaml first) and merges their
// paths and components; a path or component named twice is an error, as is
// anything else in a fragment other than core.yaml.
func mergeFragments(fsys fs.FS) (map[string]any, error) {
	names, err := fs.Glob(fsys, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Slice(names, func(i, j int) bool {
		ci, cj := path.Base(names[i]) == coreFragment, path.Base(names[j]) == coreFragment
		if ci != cj {
			return ci
		}
		return names[i] < names[j]
	})
	if len(names) == 0 || path.Base(names[0]) != coreFragment {
		return nil, fmt.Errorf("openapi: no %s", coreFragment)
	}
	var merged map[string]any
	// owner says which fragment defined each path and component, for the
	// error naming both.
	owner := map[string]string{}
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var frag map[string]any
		if err := yaml.Unmarshal(b, &frag); err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", name, err)
		}
		frag, _ = stringKeys(frag).(map[string]any)
		if merged == nil {
			merged = frag
			for p := range asMap(frag["paths"]) {
				owner["path "+p] = name
			}
			for kind, set := range asMap(frag["components"]) {
				for c := range asMap(set) {
					owner["components/"+kind+"/"+c] = name
				}
			}
			continue
		}
		for k := range frag {
			if k != "paths" && k != "components" {
				return nil, fmt.Errorf("openapi: %s: a fragment holds only paths and components, not %q", name, k)
			}
		}
		if err := mergeInto(merged, "paths", asMap(frag["paths"]), name, "path ", owner); err != nil {
			return nil, err
		}
		for kind, set := range asMap(frag["components"]) {
			comps := asMap(merged["components"])
			if comps == nil {
				comps = map[string]any{}
				merged["components"] = comps
			}
			if err := mergeInto(comps, kind, asMap(set), name, "components/"+kind+"/", owner); err != nil {
				return nil, err
			}
		}
	}
	return merged, nil
}

func mergeInto(dst map[string]any, key string, add map[string]any, name, what string, owner map[string]string) error {
	m := asMap(dst[key])
	if m == nil {
		m = map[string]any{}
		dst[key] = m
	}
	keys := make([]string, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if prev, ok := owner[what+k]; ok {
			return fmt.Errorf("openapi: %s%s is defined in %s and in %s", what, k, prev, name)
		}
		owner[what+k] = name
		m[k] = add[k]
	}
	return nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// stringKeys turns the maps YAML decodes with non-string keys (an
// unquoted status such as 200) into maps with string keys, as JSON has.
func stringKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = stringKeys(x)
		}
		return t
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = stringKeys(x)
		}
		return out
	case []any:
		for i, x := range t {
			t[i] = stringKeys(x)
		}
		return t
	}
	return v
}

// addCommonResponses gives every operation the answers any request may get,
// so that no fragment has to repeat them: 400 (an unknown or repeated query
// parameter, text that is not UTF-8), 500 and 503; where a credential is
// read, 401, 403 and 429; where a body is read, 408, 413 and 422.
func addCommonResponses(doc *openapi3.T) error {
	comps := doc.Components
	if comps == nil {
		return fmt.Errorf("openapi: no components")
	}
	ref := func(name string) (*openapi3.ResponseRef, error) {
		r := comps.Responses[name]
		if r == nil || r.Value == nil {
			return nil, fmt.Errorf("openapi: components/responses/%s is missing", name)
		}
		return &openapi3.ResponseRef{Ref: "#/components/responses/" + name, Value: r.Value}, nil
	}
	for p, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Responses == nil {
				return fmt.Errorf("openapi: %s %s has no responses", method, p)
			}
			add := []struct{ status, name string }{{"400", "BadRequest"}, {"500", "Internal"}, {"503", "Unavailable"}}
			if secured(doc, op) {
				add = append(add, struct{ status, name string }{"401", "Unauthorized"},
					struct{ status, name string }{"403", "Forbidden"}, struct{ status, name string }{"429", "TooManyRequests"})
			}
			if op.RequestBody != nil {
				// 422: a JSON string escape no text has (\u0000, a lone
				// surrogate), in any member.
				add = append(add, struct{ status, name string }{"408", "RequestTimeout"}, struct{ status, name string }{"413", "PayloadTooLarge"},
					struct{ status, name string }{"422", "Unprocessable"})
			}
			for _, a := range add {
				if op.Responses.Value(a.status) != nil {
					continue
				}
				r, err := ref(a.name)
				if err != nil {
					return err
				}
				op.Responses.Set(a.status, r)
			}
		}
	}
	return nil
}

// secured says whether the operation reads a credential: its own security,
// or the document's when it has none; `security: []` reads none.
func secured(doc *openapi3.T, op *openapi3.Operation) bool {
	if op.Security != nil {
		return len(*op.Security) > 0
	}
	return len(doc.Security) > 0
}

// Media types of the document (RFC: application/vnd.oai.openapi+json for
// JSON, application/vnd.oai.openapi for YAML).
const (
	ctOpenAPIJSON = "application/vnd.oai.openapi+json;version=3.0"
	ctOpenAPIYAML = "application/vnd.oai.openapi;version=3.0"
)

// openapiJSON: GET /openapi.json — the contract, as its own media type or
// as plain JSON when Accept prefers that.
func (s *Server) openapiJSON(w http.ResponseWriter, r *http.Request) error {
	ctype, ok := negotiate(r.Header.Get("Accept"), ctOpenAPIJSON, "application/vnd.oai.openapi+json", ctJSON)
	if !ok {
		return &Problem{Type: probNotAcceptable, Title: "Not acceptable", Status: http.StatusNotAcceptable,
			Detail: "/openapi.json is application/vnd.oai.openapi+json or application/json; Accept names neither"}
	}
	s.writeContract(w, ctype, s.contract.json)
	return nil
}

// openapiYAML: GET /openapi.yaml — the contract as YAML.
func (s *Server) openapiYAML(w http.ResponseWriter, r *http.Request) error {
	s.writeContract(w, ctOpenAPIYAML, s.contract.yaml)
	return nil
}

func (s *Server) writeContract(w http.ResponseWriter, ctype string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(body) // a HEAD's body is dropped by net/http
}

// negotiate picks what to answer for Accept: the first offer (full is its
// media type with parameters) unless Accept names only plain alt. An absent
// Accept, */* and application/* take the first.
func negotiate(accept, full, first, alt string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return full, true
	}
	var types []string
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
			continue // q=0: not acceptable
		}
		types = append(types, mt)
	}
	switch {
	case slices.Contains(types, first), slices.Contains(types, "*/*"), slices.Contains(types, "application/*"):
		return full, true
	case slices.Contains(types, alt):
		return alt, true
	}
	return "", false
}
