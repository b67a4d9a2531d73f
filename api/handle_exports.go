package api

import (
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"gridmap/data"
	"gridmap/export"
	"gridmap/geo"
	"gridmap/grid"
)

// exportRoutes registers the file exports of the feature collections.
// The statistics' spreadsheets are variants of GET /v1/stats/{code}
// (handle_objects.go calls writeStatsTable).
func (s *Server) exportRoutes(r *mux.Router) {
	s.handle(r, "/v1/exports/{collection}", s.exportFeatures, http.MethodGet)
}

// exportParams are the parameters every export takes; the collection's
// queryables come on top, as equality filters.
var exportParams = []string{"f", "crs", "geometry", "bom", "bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs"}

// exportFormats are the f= values of a feature export (xlsx holds tables
// without geometry: statistics).
func exportFormats() []string {
	var out []string
	for _, f := range export.Formats {
		if f.Geometry {
			out = append(out, f.Name)
		}
	}
	return out
}

// exportFeatures: GET /v1/exports/{collection}?f=geojson|geojsonseq|ndjson|csv|gpkg|fgb
// [&crs=][&geometry=wkt|lonlat&bom=][&bbox=&bbox-crs=][&datetime=][&filter=&filter-lang=&filter-crs=][&<queryable>=…]
//
// The selection is the OGC items' (ogc_params.go, ogc_filter.go) without
// the paging.
//
// The whole selection, streamed: rows go from PostgreSQL through the
// writer to the connection one at a time. An error before the first byte
// is answered as a problem; after it the connection is aborted (no final
// chunk), so a client never takes a cut file for a whole one.
func (s *Server) exportFeatures(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.store.FeatureCollection(ctx, mux.Vars(r)["collection"])
	if err != nil {
		return err
	}
	q := r.URL.Query()
	names := slices.Clone(exportParams)
	for _, qa := range c.Queryables {
		if !qa.Geometry {
			names = append(names, qa.Name)
		}
	}
	if err := exportCheckParams(q, names); err != nil {
		return err
	}
	fname := q.Get("f")
	if fname == "" {
		fname = "geojson"
	}
	format, ok := export.Lookup(fname)
	if !ok || !format.Geometry {
		return &paramError{"f", fmt.Sprintf("f=%q: exports are %s", geo.Excerpt(fname, geo.MaxExcerpt), joinOr(exportFormats()))}
	}
	o := export.Options{}
	if o.CRS, err = ogcCRSParam(r, "crs"); err != nil {
		return err
	}
	for _, name := range []string{"geometry", "bom"} {
		if q.Has(name) && fname != "csv" {
			return &paramError{name, fmt.Sprintf("%s goes with f=csv", name)}
		}
	}
	switch o.CSVGeometry = q.Get("geometry"); o.CSVGeometry {
	case "", export.CSVWKT, export.CSVLonLat:
	default:
		return &paramError{"geometry", fmt.Sprintf("geometry=%q: use wkt or lonlat", geo.Excerpt(o.CSVGeometry, geo.MaxExcerpt))}
	}
	if o.BOM, err = parseBoolParam(q, "bom"); err != nil {
		return err
	}
	fq := data.FeatureQuery{Collection: c.ID, Scopes: readScopes(r)}
	if fq.BBox, err = ogcBBox(r); err != nil {
		return err
	}
	if fq.Time, err = ogcDatetime(r); err != nil {
		return err
	}
	if err := s.ogcFilter(r, c, &fq); err != nil {
		return err
	}
	for _, qa := range c.Queryables {
		if v := q.Get(qa.Name); !qa.Geometry && q.Has(qa.Name) {
			if fq.Props == nil {
				fq.Props = map[string]string{}
			}
			fq.Props[qa.Name] = v
		}
	}

	filename := fmt.Sprintf("%s-%s%s", c.ID, s.localDate(r), format.Ext)
	out := &exportResponse{w: w, header: func(h http.Header) {
		h.Set("Content-Type", format.MediaType)
		h.Set("Content-Disposition", attachment(filename, filename))
		h.Set("Content-Crs", "<"+o.CRS.URI()+">")
		h.Set("Cache-Control", "no-store")
	}}
	start := time.Now()
	wr, err := format.New(out, c.Schema, o)
	if err != nil {
		return err
	}
	rows := 0
	err = s.store.Features(ctx, fq, func(row *geo.Row) error {
		rows++
		return wr.Write(row)
	})
	if err != nil {
		wr.Abort()
	} else {
		err = wr.Close()
	}
	if err != nil && !out.started {
		return err
	}
	if err != nil {
		// Headers and part of the file are out: only a cut connection
		// can still say that the file is not whole.
		if !isClientGone(ctx) {
			s.log.Error("export aborted", "request_id", requestIDOf(r), "collection", c.ID, "format", fname, "rows", rows, "bytes", out.n, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	out.begin()
	s.log.Info("export", "collection", c.ID, "format", fname, "rows", rows, "bytes", out.n, "seconds", time.Since(start).Seconds())
	return nil
}

// exportCheckParams refuses a query parameter the export does not take
// (the set depends on the collection, so the contract cannot list it and
// the operation is marked x-gridmap-dynamic-params), or one given twice.
func exportCheckParams(q url.Values, names []string) error {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(names, k) {
			return &paramError{k, fmt.Sprintf("unknown query parameter %q: this export takes %s", geo.Excerpt(k, geo.MaxExcerpt), joinOr(names))}
		}
		if n := len(q[k]); n > 1 {
			return &paramError{k, fmt.Sprintf("%s is given %d times; give it once", k, n)}
		}
	}
	return nil
}

// exportResponse sends the headers of a 200 with the first byte, so that
// until then an error can still be answered as a problem.
type exportResponse struct {
	w       http.ResponseWriter
	header  func(http.Header)
	started bool
	n       int64
}

func (e *exportResponse) Write(p []byte) (int, error) {
	e.begin()
	n, err := e.w.Write(p)
	e.n += int64(n)
	return n, err
}

// begin sends the headers, once; an empty sequence sends them alone.
func (e *exportResponse) begin() {
	if !e.started {
		e.started = true
		e.header(e.w.Header())
		e.w.WriteHeader(http.StatusOK)
	}
}

// attachment is a Content-Disposition naming the file: an ASCII filename
// for old clients and filename* (RFC 6266, RFC 8187) with the UTF-8 name
// for the rest (Chinese unit names).
func attachment(ascii, name string) string {
	fallback := strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '/' {
			return -1
		}
		return r
	}, ascii)
	var b strings.Builder
	for _, c := range []byte(name) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, fallback, b.String())
}

// localDate is today in the city's time zone (the event calendar's), for
// file names: an office downloading at 07:00 in Shenzhen wants today's
// date, not UTC's yesterday.
func (s *Server) localDate(r *http.Request) string {
	now := time.Now()
	if cfg, err := s.store.EventConfig(r.Context()); err == nil {
		now = now.In(cfg.Calendar.Location())
	}
	return now.Format(time.DateOnly)
}

// statsFormat is the encoding a GET /v1/stats/{code} asks for: f=json,
// csv or xlsx, else the Accept header's preference among their media
// types, else JSON.
func statsFormat(r *http.Request) (string, error) {
	q := r.URL.Query()
	if f := q.Get("f"); f != "" {
		if f != "json" && f != "csv" && f != "xlsx" {
			return "", &paramError{"f", fmt.Sprintf("f=%q: statistics are json, csv or xlsx", geo.Excerpt(f, geo.MaxExcerpt))}
		}
		if q.Has("bom") && f != "csv" {
			return "", &paramError{"bom", "bom goes with f=csv"}
		}
		return f, nil
	}
	best, bestQ := "json", 0.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		weight := 1.0
		if v, ok := params["q"]; ok {
			if _, err := fmt.Sscanf(v, "%g", &weight); err != nil {
				continue
			}
		}
		f := map[string]string{"text/csv": "csv", export.MediaTypeXLSX: "xlsx", ctJSON: "json"}[mt]
		if f != "" && weight > bestQ {
			best, bestQ = f, weight
		}
	}
	if q.Has("bom") && best != "csv" {
		return "", &paramError{"bom", "bom goes with f=csv"}
	}
	return best, nil
}

// statsTable is a statistics answer as a table: one row per child, then
// the unit itself (the total row), in the order of the JSON.
type statsTable struct {
	schema geo.Schema
	rows   []geo.Row
}

// objectStatsTable: code, name, level, total and a column per class
// ("0118 路灯": code and name), sorted by class code.
func objectStatsTable(st *data.ObjectStats) statsTable {
	classes := map[string]string{}
	for _, u := range append(slices.Clone(st.Children), st.Unit) {
		for code, c := range u.ByClass {
			classes[code] = c.Name
		}
	}
	codes := slices.Sorted(maps.Keys(classes))
	t := statsTable{schema: geo.Schema{Name: st.Unit.Name + " objects", Fields: []geo.Field{
		{Name: "name", Type: geo.String}, {Name: "level", Type: geo.String}, {Name: "total", Type: geo.Integer}}}}
	for _, code := range codes {
		t.schema.Fields = append(t.schema.Fields, geo.Field{Name: code + " " + classes[code], Type: geo.Integer})
	}
	childLevel := grid.Level("")
	if d := st.Unit.Level.Depth(); d >= 0 && d+1 < len(grid.Levels) {
		childLevel = grid.Levels[d+1]
	}
	add := func(u data.UnitStats, level grid.Level) {
		vals := []any{u.Name, string(level), u.Total}
		for _, code := range codes {
			vals = append(vals, u.ByClass[code].Count)
		}
		t.rows = append(t.rows, geo.Row{ID: u.Code, Values: vals})
	}
	for _, c := range st.Children {
		add(c, childLevel)
	}
	add(st.Unit, st.Unit.Level)
	return t
}

// eventFigures are the members of an EventCount, as columns.
var eventFigures = []geo.Field{
	{Name: "total", Type: geo.Integer}, {Name: "overdue", Type: geo.Integer}, {Name: "handled", Type: geo.Integer},
	{Name: "handled_on_time", Type: geo.Integer}, {Name: "closed", Type: geo.Integer},
	{Name: "avg_handling_hours", Type: geo.Real}, {Name: "avg_closing_hours", Type: geo.Real},
	{Name: "extended", Type: geo.Integer},
}

func eventFigureValues(c *data.EventCount) []any {
	if c == nil {
		c = &data.EventCount{}
	}
	hours := func(h *float64) any {
		if h == nil {
			return nil
		}
		return *h
	}
	return []any{c.Total, c.Overdue, c.Handled, c.OnTime, c.Closed, hours(c.AvgHandlingHours), hours(c.AvgClosingHours), c.Extended}
}

// eventStatsTable: code, name, level, the figures of all its events, then
// the figures of each status or class ("registered.total", …), sorted.
func eventStatsTable(st *data.EventStats) statsTable {
	keys := map[string]bool{}
	for _, u := range append(slices.Clone(st.Children), st.Unit) {
		for k := range u.By {
			keys[k] = true
		}
	}
	groups := slices.Sorted(maps.Keys(keys))
	t := statsTable{schema: geo.Schema{Name: st.Unit.Name + " events", Fields: []geo.Field{{Name: "name", Type: geo.String}, {Name: "level", Type: geo.String}}}}
	t.schema.Fields = append(t.schema.Fields, eventFigures...)
	for _, g := range groups {
		for _, f := range eventFigures {
			t.schema.Fields = append(t.schema.Fields, geo.Field{Name: g + "." + f.Name, Type: f.Type})
		}
	}
	add := func(u data.EventUnitStats) {
		vals := append([]any{u.Name, string(u.Level)}, eventFigureValues(&u.All)...)
		for _, g := range groups {
			vals = append(vals, eventFigureValues(u.By[g])...)
		}
		t.rows = append(t.rows, geo.Row{ID: u.Code, Values: vals})
	}
	for _, c := range st.Children {
		add(c)
	}
	add(st.Unit)
	return t
}

// writeStatsTable answers statistics as CSV (with a BOM unless bom=false:
// the file is for a spreadsheet, and Excel reads UTF-8 only after one) or
// XLSX, named after the unit: stats-440306-宝安区-objects-2026-12-05.xlsx.
func (s *Server) writeStatsTable(w http.ResponseWriter, r *http.Request, format, of string, code string, t statsTable) error {
	f, _ := export.Lookup(format)
	o := export.Options{IDField: "code", BOM: true}
	if r.URL.Query().Has("bom") {
		var err error
		if o.BOM, err = parseBoolParam(r.URL.Query(), "bom"); err != nil {
			return err
		}
	}
	date := s.localDate(r)
	unitName := strings.TrimSuffix(t.schema.Name, " "+of)
	filename := fmt.Sprintf("stats-%s-%s-%s-%s%s", code, unitName, of, date, f.Ext)
	out := &exportResponse{w: w, header: func(h http.Header) {
		h.Set("Content-Type", f.MediaType)
		h.Set("Content-Disposition", attachment(fmt.Sprintf("stats-%s-%s-%s%s", code, of, date, f.Ext), filename))
		h.Set("Cache-Control", "no-cache")
	}}
	wr, err := f.New(out, t.schema, o)
	if err != nil {
		return err
	}
	for i := range t.rows {
		if err := wr.Write(&t.rows[i]); err != nil {
			wr.Abort()
			return err
		}
	}
	if err := wr.Close(); err != nil {
		return err
	}
	out.begin()
	return nil
}
