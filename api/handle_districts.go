package api

import (
	"html/template"
	"net/http"

	"gridmap/data"
	"gridmap/grid"
)

var districtsPage = template.Must(template.New("districts").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gridmap — 网格化管理</title>
<style>
 body{font:16px/1.5 system-ui,"Noto Sans CJK SC",sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2733}
 table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #dde3ea}
 th{background:#f2f5f8} code{font-size:.95em} .n{text-align:right;font-variant-numeric:tabular-nums}
</style></head><body>
<h1>gridmap</h1>
<p><a href="/">← 指挥中心地图 wall map</a></p>
<p>{{.Counts.district}} districts · {{.Counts.street}} streets · {{.Counts.community}} communities · {{.Counts.grid}} grids in layer <code>base</code>.</p>
<table><thead><tr><th>code</th><th>district 区</th><th class="n">area km²</th><th>API</th></tr></thead><tbody>
{{range .Districts}}<tr><td><code>{{.Code}}</code></td><td>{{.Name}}</td><td class="n">{{printf "%.1f" .Km2}}</td>
<td><a href="/v1/units/{{.Code}}?geometry=none">unit</a> · <a href="/v1/units/{{.Code}}/children?geometry=none">streets</a> · <a href="/v1/units/{{.Code}}">GeoJSON</a> · <a href="/v1/topology/issues?parent={{.Code}}">topology</a></td></tr>
{{else}}<tr><td colspan="4">No units yet: run <code>gridmap demo</code> or import a FeatureCollection.</td></tr>{{end}}
</tbody></table>
<h2>API</h2>
<ul>
<li><a href="/v1/locate?lon=114.0579&lat=22.5431">/v1/locate?lon=114.0579&amp;lat=22.5431</a> — which units contain a point</li>
<li><a href="/v1/units?level=district&geometry=none">/v1/units?level=district</a> — units by level, parent, layer, bbox</li>
<li><a href="/readyz">/readyz</a> · <a href="/healthz">/healthz</a></li>
</ul>
</body></html>`))

type districtRow struct {
	Code, Name string
	Km2        float64
}

// districts: GET /districts — the districts of layer base as an HTML table
// with links into the API (the wall map at / links here).
func (s *Server) districts(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.store.ListUnits(r.Context(), data.UnitFilter{Level: grid.District, Geometry: data.GeometryNone})
	if err != nil {
		return err
	}
	counts, err := s.store.CountUnits(r.Context(), grid.BaseLayer)
	if err != nil {
		return err
	}
	v := struct {
		Districts []districtRow
		Counts    map[string]int
	}{Counts: map[string]int{}}
	for l, n := range counts {
		v.Counts[string(l)] = n
	}
	for _, u := range rows {
		v.Districts = append(v.Districts, districtRow{u.Code, u.Name, u.AreaM2 / 1e6})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = districtsPage.Execute(w, v) // a write error: the client has gone
	return nil
}
