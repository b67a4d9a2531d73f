package api_test

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// scrape reads /metrics and checks the exposition format's media type.
func scrape(t *testing.T, e *apiEnv) string {
	t.Helper()
	r := e.get("/metrics")
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %s", r)
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "text/plain" || params["version"] != "0.0.4" {
		t.Fatalf("GET /metrics Content-Type %q, want text/plain; version=0.0.4", r.Header.Get("Content-Type"))
	}
	return string(r.Body)
}

// expectSamples checks that every line appears in the exposition as is.
func expectSamples(t *testing.T, exposition string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(exposition, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			name, _, _ := strings.Cut(l, "{")
			name, _, _ = strings.Cut(name, " ")
			var related []string
			for _, h := range strings.Split(exposition, "\n") {
				if strings.HasPrefix(h, name) {
					related = append(related, h)
				}
			}
			t.Errorf("no sample %q; %s samples:\n%s", l, name, strings.Join(related, "\n"))
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, _ := demoPoint(t, e, "")

	expect(t, e.get(fmt.Sprintf("/v1/locate?lon=%g&lat=%g", x, y)), http.StatusOK, ctJSON, nil)
	expect(t, e.post("/v1/locate", fmt.Sprintf(`{"points":[[%g,%g],[%g,%g],[113.0,21.0]]}`, x, y, x, y)), http.StatusOK, ctJSON, nil)
	expectProblem(t, e.get("/v1/locate?lon=abc&lat=1"), http.StatusBadRequest, typeBadParam, "lon")
	expectProblem(t, e.get("/no/such/path"), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.get("/v1/units/999999"), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.do(http.MethodDelete, "/v1/locate", nil), http.StatusMethodNotAllowed, typeNotAllowed, "")
	expect(t, e.post("/v1/units:import", testCity), http.StatusCreated, ctJSON, nil)
	expectProblem(t, e.post("/v1/units:import", featureCollection(unitFeat("440399003", "street", bowtie))), http.StatusUnprocessableEntity, typeViolations, "")
	expect(t, e.post("/v1/units:validate", testCity), http.StatusOK, ctJSON, nil) // a dry run is no import
	csv := fmt.Sprintf("code,class,lon,lat\n%[1]s0101000001,0101,%[2]g,%[3]g\n%[1]s0101000002,0101,113.0,21.0\n", demoDistrict, x, y)
	r, err := http.NewRequest(http.MethodPost, e.url+"/v1/objects:import", strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(e.authorize(r))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("object import: status %d, want 201", resp.StatusCode)
	}

	units, err := e.store.CurrentUnits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != demoUnits+3 || e.srv.Locator().Len() != len(units) {
		t.Fatalf("%d units stored, %d in the locator; want %d in both", len(units), e.srv.Locator().Len(), demoUnits+3)
	}

	m := scrape(t, e)
	expectSamples(t, m,
		`gridmap_http_requests_total{code="200",method="GET",route="/v1/locate"} 1`,
		`gridmap_http_requests_total{code="400",method="GET",route="/v1/locate"} 1`,
		`gridmap_http_requests_total{code="200",method="POST",route="/v1/locate"} 1`,
		`gridmap_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`gridmap_http_requests_total{code="404",method="GET",route="/v1/units/{code}"} 1`,
		`gridmap_http_requests_total{code="405",method="DELETE",route="unmatched"} 1`,
		`gridmap_http_requests_total{code="201",method="POST",route="/v1/units:import"} 1`,
		`gridmap_http_requests_total{code="422",method="POST",route="/v1/units:import"} 1`,
		`gridmap_http_requests_total{code="201",method="POST",route="/v1/objects:import"} 1`,
		`gridmap_http_request_duration_seconds_count{method="GET",route="/v1/locate"} 2`,
		`gridmap_http_request_duration_seconds_count{method="GET",route="unmatched"} 1`,
		`gridmap_locate_points_total{mode="single"} 1`,
		`gridmap_locate_points_total{mode="batch"} 3`,
		fmt.Sprintf(`gridmap_locator_units %d`, len(units)),
		`gridmap_locator_builds_total{kind="full"} 1`,
		`gridmap_locator_builds_total{kind="incremental"} 1`,
		`gridmap_imports_total{kind="units",outcome="ok"} 1`,
		`gridmap_imports_total{kind="units",outcome="rejected"} 1`,
		`gridmap_imports_total{kind="units",outcome="failed"} 0`,
		`gridmap_imports_total{kind="objects",outcome="ok"} 1`,
		`gridmap_import_rows_total{kind="objects",result="inserted"} 2`,
		`gridmap_import_rows_total{kind="objects",result="unassigned"} 1`,
		`gridmap_import_rows_total{kind="objects",result="rejected"} 0`,
	)
	// The raw path never becomes a label; the pool, Go and process
	// collectors report.
	for _, bad := range []string{`route="/no/such/path"`, `route="/v1/units/999999"`} {
		if strings.Contains(m, bad) {
			t.Errorf("exposition holds %s", bad)
		}
	}
	for _, name := range []string{`gridmap_db_connections{state="acquired"} `, `gridmap_db_connections{state="idle"} `,
		`gridmap_db_connections{state="total"} `, `gridmap_db_acquire_wait_seconds_total `, `gridmap_locator_build_seconds{kind="full"} `, `gridmap_locator_build_seconds{kind="incremental"} `,
		`go_goroutines `, `process_cpu_seconds_total `, `gridmap_http_request_duration_seconds_bucket{method="GET",route="/v1/locate",le="0.0001"} `} {
		if !strings.Contains(m, "\n"+name) {
			t.Errorf("exposition lacks %s", name)
		}
	}

	// The scrape itself is counted by the next one.
	expectSamples(t, scrape(t, e), `gridmap_http_requests_total{code="200",method="GET",route="/metrics"} 1`)
}

// Two servers in one process each have their own registry: no duplicate
// registration panic, and one's requests do not show in the other's metrics.
func TestMetricsTwoServers(t *testing.T) {
	t.Parallel()
	store := pgtest.New(t)
	a := newEnv(t, store, api.Options{})
	b := newEnv(t, store, api.Options{})
	expectProblem(t, a.get("/no/such/path"), http.StatusNotFound, typeNotFound, "")
	expectSamples(t, scrape(t, a), `gridmap_http_requests_total{code="404",method="GET",route="unmatched"} 1`, `gridmap_locator_units 0`)
	if m := scrape(t, b); strings.Contains(m, `code="404"`) {
		t.Errorf("server b counts server a's 404:\n%s", m)
	}
	// A second handler of the same server shares its metrics.
	if h := a.srv.Handler(); h == nil {
		t.Fatal("no handler")
	}
}
