package api

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"gridmap/geo"
)

// paramRule is what one operation of the contract takes in its query: an
// unknown parameter, or one given twice whose schema is not an array, is a
// 400 naming it, on every route alike, without each handler listing them.
type paramRule struct {
	// repeatable maps each declared name to whether it may be repeated
	// (an array schema).
	repeatable map[string]bool
	// takes lists the names for the detail of a refusal.
	takes string
	// dynamic operations check their parameters themselves (the set
	// depends on data, such as property filters).
	dynamic bool
}

func newParamRule(pathParams openapi3.Parameters, op *openapi3.Operation) *paramRule {
	p := &paramRule{repeatable: map[string]bool{}}
	for _, list := range []openapi3.Parameters{pathParams, op.Parameters} {
		for _, ref := range list {
			if ref == nil || ref.Value == nil || ref.Value.In != openapi3.ParameterInQuery {
				continue
			}
			array := ref.Value.Schema != nil && ref.Value.Schema.Value != nil && ref.Value.Schema.Value.Type.Is(openapi3.TypeArray)
			p.repeatable[ref.Value.Name] = array
		}
	}
	names := make([]string, 0, len(p.repeatable))
	for n := range p.repeatable {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		p.takes = "no query parameters"
	} else {
		p.takes = joinOr(names)
	}
	if v, ok := op.Extensions[dynamicParamsExt].(bool); ok && v {
		p.dynamic = true
	}
	return p
}

// strictParams refuses what the contract's operation for the route's path
// and the request's method does not take. The rules are looked up once,
// when the route is registered; per request it is a scan of the raw query
// (nothing allocated unless a name is percent-encoded).
func (s *Server) strictParams(path string, h handlerFunc) handlerFunc {
	rules := map[string]*paramRule{}
	for key, rule := range s.contract.params {
		if m, p, _ := strings.Cut(key, " "); p == path {
			rules[m] = rule
		}
	}
	none := &paramRule{repeatable: map[string]bool{}, takes: "no query parameters"}
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.RawQuery == "" {
			return h(w, r)
		}
		rule := rules[r.Method]
		if rule == nil {
			rule = none // a route the contract does not know takes nothing; a test finds it
		}
		if !rule.dynamic {
			if err := rule.check(r.URL.RawQuery); err != nil {
				return err
			}
		}
		return h(w, r)
	}
}

// check scans a raw query. Names are compared as sent unless they hold an
// escape; checkText has refused malformed escapes before routing.
func (p *paramRule) check(raw string) error {
	var seen [8]string
	n := 0
	var more map[string]bool
	for rest := raw; rest != ""; {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		if kv == "" {
			continue
		}
		name, _, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(name, "%+") {
			var err error
			if name, err = url.QueryUnescape(name); err != nil {
				return badParam("query", fmt.Sprintf("query parameter name %q is not valid percent-encoding", geo.Excerpt(name, geo.MaxExcerpt)))
			}
		}
		repeatable, ok := p.repeatable[name]
		if !ok {
			return &paramError{name, fmt.Sprintf("unknown query parameter %q: this route takes %s", geo.Excerpt(name, geo.MaxExcerpt), p.takes)}
		}
		if repeatable {
			continue
		}
		twice := false
		for _, s := range seen[:n] {
			twice = twice || s == name
		}
		if more != nil && more[name] {
			twice = true
		}
		if twice {
			q, _ := url.ParseQuery(raw)
			return &paramError{name, fmt.Sprintf("%s is given %d times; give it once", name, len(q[name]))}
		}
		if n < len(seen) {
			seen[n] = name
			n++
		} else {
			if more == nil {
				more = map[string]bool{}
			}
			more[name] = true
		}
	}
	return nil
}
