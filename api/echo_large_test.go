package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// maxEcho is the most of a problem's detail a bad input may fill: the
// parsers quote at most geo.MaxExcerpt bytes of it.
const maxEcho = 400

// A 400 quotes an excerpt of the input, never the input: a 50 MB CSV
// header used to come back whole.
func TestBadInputNotEchoed(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := tableState(t, e)
	huge := strings.Repeat("x", 50<<20)
	for _, c := range []struct {
		name, path, ctype, body string
		status                  int
		typ, param, inDetail    string
	}{
		{"50 MB CSV header", "/v1/objects:import", "text/csv", "code,class," + huge + "\n1,2,3\n", http.StatusBadRequest, typeBadRequest, "", "CSV header"},
		{"long geometry type", "/v1/units:validate", "application/json",
			`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"440308","level":"district","name":"x"},"geometry":{"type":"` + huge[:1<<20] + `","coordinates":[]}}]}`,
			http.StatusUnprocessableEntity, typeViolations, "", "violation"},
		{"long layer", "/v1/units:validate?layer=" + huge[:4000], "application/json", `{"type":"FeatureCollection","features":[]}`,
			http.StatusBadRequest, typeBadParam, "layer", "layer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.url+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", c.ctype)
			e.authorize(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r := reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
			if len(r.Body) > 64<<10 {
				t.Fatalf("answer of %d bytes to a bad input", len(r.Body))
			}
			p := expectProblem(t, r, c.status, c.typ, c.param, c.inDetail)
			if len(p.Detail) > maxEcho {
				t.Errorf("detail of %d bytes echoes the input: %.200s", len(p.Detail), p.Detail)
			}
			for _, v := range p.Violations {
				if len(v.Message) > maxEcho {
					t.Errorf("violation message of %d bytes echoes the input: %.200s", len(v.Message), v.Message)
				}
			}
			if !strings.Contains(string(r.Body), "…(") {
				t.Errorf("no truncation marker in %s", r)
			}
		})
	}
	expectUnchanged(t, e, before, "bad inputs")
}
