package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"gridmap/data"
	"gridmap/geo"
)

// The HTML side of /ogc: server-rendered pages an analyst clicks through
// (landing, collections, one collection, its queryables, items as a
// table with a next link, one item), from one embedded template file.

//go:embed ogc_html/*.html
var ogcHTMLFiles embed.FS

var ogcTemplates = template.Must(template.New("ogc").Funcs(template.FuncMap{}).ParseFS(ogcHTMLFiles, "ogc_html/*.html"))

// renderOGC answers a page: rendered whole first, so that a template
// error is a 500 rather than half a page.
func renderOGC(w http.ResponseWriter, name string, v any) error {
	var b bytes.Buffer
	if err := ogcTemplates.ExecuteTemplate(&b, name, v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", ctHTML)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return nil
}

// appendJSON appends v marshalled, HTML characters as they are.
func appendJSON(b []byte, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
}

type htmlRow struct {
	ID     string
	Values []string
}

// ogcItemsHTML answers a page of items as a table.
func (s *Server) ogcItemsHTML(w http.ResponseWriter, r *http.Request, c *data.Collection, fq data.FeatureQuery, crs geo.CRS) error {
	var rows []htmlRow
	info, err := s.store.FeaturePage(r.Context(), fq, func(row *geo.Row) error {
		h := htmlRow{ID: row.ID, Values: make([]string, len(row.Values))}
		for i, v := range row.Values {
			h.Values[i] = htmlValue(v)
		}
		rows = append(rows, h)
		return nil
	})
	if err != nil {
		return err
	}
	first, js := *r.URL, *r.URL
	q := first.Query()
	q.Del("cursor")
	first.RawQuery = q.Encode()
	q = js.Query()
	q.Set("f", "json")
	js.RawQuery = q.Encode()
	return renderOGC(w, "items", map[string]any{
		"Collection": c, "Fields": c.Schema.Fields, "Rows": rows, "Matched": info.Matched, "Returned": len(rows),
		"Time": describeTime(fq.Time), "Links": pageLinks(r, formatHTML, info), "First": first.RequestURI(), "JSON": js.RequestURI(), "CRS": crs.URI(),
	})
}

// htmlValue shows a property value in a table cell.
func htmlValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case json.RawMessage:
		return string(v)
	}
	return fmt.Sprint(v)
}
