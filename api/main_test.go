package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"gridmap/api"
)

// minValidated is how many exchanges a run of the whole package must have
// checked against the contract: fewer means the check stopped seeing the
// tests' requests.
const minValidated = 1000

// TestMain checks every request the tests make to their servers, and every
// answer, against the OpenAPI contract (api/openapi/*.yaml): it replaces
// http.DefaultTransport, which http.DefaultClient and every client built
// without a Transport use.
func TestMain(m *testing.M) {
	flag.Parse()
	ct, err := newContractTransport(http.DefaultTransport)
	if err != nil {
		fmt.Fprintln(os.Stderr, "contract:", err)
		os.Exit(1)
	}
	http.DefaultTransport = ct
	code := m.Run()
	n := ct.validated.Load()
	fmt.Printf("contract: %d exchanges validated against the OpenAPI document (%d requests it calls invalid)\n", n, ct.invalid.Load())
	if code == 0 && wholeRun() && n < minValidated {
		fmt.Fprintf(os.Stderr, "contract: only %d exchanges validated, want more than %d: the validating transport is not seeing the tests' requests\n", n, minValidated)
		code = 1
	}
	os.Exit(code)
}

// wholeRun says whether every test of the package ran (no -run, no -short).
func wholeRun() bool {
	run := flag.Lookup("test.run")
	short := flag.Lookup("test.short")
	return run != nil && run.Value.String() == "" && (short == nil || short.Value.String() != "true")
}

// contractTransport validates the exchanges with the api test servers
// (those envTokens knows) against the contract; other servers (an OIDC
// provider of a test) pass through.
type contractTransport struct {
	next   http.RoundTripper
	doc    *openapi3.T
	router routers.Router

	validated atomic.Int64
	invalid   atomic.Int64 // requests the contract calls invalid (answered with a documented 4xx)
}

func newContractTransport(next http.RoundTripper) (*contractTransport, error) {
	raw, err := api.Contract()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	// The tests' servers listen on ports of their own: match paths only.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &contractTransport{next: next, doc: doc, router: router}, nil
}

func (c *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ours := envTokens.Load(req.URL.Scheme + "://" + req.URL.Host); !ours {
		return c.next.RoundTrip(req)
	}
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		// A CORS preflight is the browser's question about a route, not an
		// operation of it: OpenAPI does not describe it (api/cors.go does).
		return c.next.RoundTrip(req)
	}
	route, pathParams, findErr := c.router.FindRoute(req)
	var in *openapi3filter.RequestValidationInput
	var reqErr error
	if findErr == nil {
		in, reqErr = c.checkRequest(req, route, pathParams)
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if err := c.checkResponse(req, route, findErr, in, reqErr, resp); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("OpenAPI contract: %s %s → %d: %w", req.Method, req.URL.RequestURI(), resp.StatusCode, err)
	}
	c.validated.Add(1)
	if findErr != nil || reqErr != nil {
		c.invalid.Add(1)
	}
	return resp, nil
}

// checkRequest validates the request: path, query (undeclared and
// repeated parameters included, as the server's middleware refuses them),
// headers, and a JSON body when it can be read again without taking it
// from the server (a body of a reader that streams is left to the server).
func (c *contractTransport) checkRequest(req *http.Request, route *routers.Route, pathParams map[string]string) (*openapi3filter.RequestValidationInput, error) {
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	vreq := req.Clone(req.Context())
	vreq.Body = http.NoBody
	if req.Body != nil && req.Body != http.NoBody {
		mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
		if req.GetBody != nil && jsonMedia(mt) {
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			data, err := io.ReadAll(b)
			b.Close()
			if err != nil {
				return nil, err
			}
			vreq.Body = io.NopCloser(bytes.NewReader(data))
		} else {
			opts.ExcludeRequestBody = true
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: pathParams, Route: route, Options: opts}
	if err := strictQuery(req.URL.RawQuery, route); err != nil {
		return in, err
	}
	return in, openapi3filter.ValidateRequest(req.Context(), in)
}

// strictQuery is the contract's rule on query parameters: declared, and
// given once unless their schema is an array.
func strictQuery(raw string, route *routers.Route) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return err
	}
	declared := map[string]*openapi3.Parameter{}
	for _, list := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range list {
			if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
				declared[p.Value.Name] = p.Value
			}
		}
	}
	if v, ok := route.Operation.Extensions["x-gridmap-dynamic-params"].(bool); ok && v {
		return nil
	}
	for name, vs := range q {
		p := declared[name]
		if p == nil {
			return fmt.Errorf("query parameter %q is not declared", name)
		}
		if len(vs) > 1 && (p.Schema == nil || p.Schema.Value == nil || !p.Schema.Value.Type.Is(openapi3.TypeArray)) {
			return fmt.Errorf("query parameter %q is given %d times", name, len(vs))
		}
	}
	return nil
}

// checkResponse holds the answer to the contract. A request the contract
// calls valid must get a documented status, media type and body; one it
// calls invalid (or a path or method it does not have) a documented 4xx
// problem. Streams, tiles, archives, glyphs, pages and static files are
// checked by status, media type and headers only.
func (c *contractTransport) checkResponse(req *http.Request, route *routers.Route, findErr error, in *openapi3filter.RequestValidationInput, reqErr error, resp *http.Response) error {
	status := resp.StatusCode
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if status == http.StatusMovedPermanently && path.Clean(req.URL.Path) != req.URL.Path {
		// gorilla/mux redirects a path with dot segments (..%2F decoded)
		// to its clean form before any route runs; the client follows it.
		return nil
	}
	if findErr != nil {
		// 400: a path that is not UTF-8 is refused before routing.
		if status != http.StatusBadRequest && status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("the contract has no such operation (%v), yet the answer is not a 400, 404 or 405", findErr)
		}
		if req.Method == http.MethodHead {
			return nil
		}
		return c.checkProblem(resp, mt)
	}
	if reqErr != nil && (status < 400 || status >= 500) {
		return fmt.Errorf("the contract calls the request invalid (%v), yet the answer is not a 4xx", reqErr)
	}
	documented := route.Operation.Responses.Status(status)
	if documented == nil || documented.Value == nil {
		return fmt.Errorf("status %d is not documented for %s %s (request: %v)", status, route.Method, route.Path, errOrValid(reqErr))
	}
	if reqErr != nil && req.Method != http.MethodHead && mt != "application/problem+json" {
		return fmt.Errorf("the contract calls the request invalid (%v), yet the answer is %q, not a problem", reqErr, mt)
	}
	in.Request = req
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	noBody := req.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified
	content := documented.Value.Content
	if noBody || len(content) == 0 {
		out.Options.ExcludeResponseBody = true
		out.Body = http.NoBody
		if req.Method == http.MethodHead {
			return nil // kin-openapi checks no HEAD answer; the status is
		}
		return wrapKin(openapi3filter.ValidateResponse(req.Context(), out), reqErr)
	}
	if content.Get(resp.Header.Get("Content-Type")) == nil {
		return fmt.Errorf("media type %q is not documented for status %d of %s %s", resp.Header.Get("Content-Type"), status, route.Method, route.Path)
	}
	if !jsonMedia(mt) {
		out.Options.ExcludeResponseBody = true
		out.Body = http.NoBody
		return wrapKin(openapi3filter.ValidateResponse(req.Context(), out), reqErr)
	}
	body, err := readBack(resp)
	if err != nil {
		return err
	}
	out.SetBodyBytes(body)
	return wrapKin(openapi3filter.ValidateResponse(req.Context(), out), reqErr)
}

// checkProblem checks an answer that must be a problem+json Problem.
func (c *contractTransport) checkProblem(resp *http.Response, mt string) error {
	if mt != "application/problem+json" {
		return fmt.Errorf("the answer is %q, not a problem", mt)
	}
	body, err := readBack(resp)
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return c.doc.Components.Schemas["Problem"].Value.VisitJSON(v)
}

// readBack reads the whole body and puts it back for the test to read.
func readBack(resp *http.Response) ([]byte, error) {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return body, err
}

func jsonMedia(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func errOrValid(err error) string {
	if err == nil {
		return "valid"
	}
	return "invalid: " + err.Error()
}

func wrapKin(err, reqErr error) error {
	if err == nil {
		return nil
	}
	var re *openapi3filter.ResponseError
	if errors.As(err, &re) {
		msg := re.Reason
		if re.Err != nil {
			msg += ": " + re.Err.Error()
		}
		return fmt.Errorf("answer does not match the contract (request %s): %s", errOrValid(reqErr), msg)
	}
	return fmt.Errorf("answer does not match the contract (request %s): %w", errOrValid(reqErr), err)
}
