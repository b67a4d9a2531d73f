package api

import (
	"net/http"

	"gridmap/data"
	"gridmap/geo"
)

// /ogc/api is the OGC API's own definition: an OpenAPI 3.0 document whose
// server is /ogc and whose paths are the OGC ones (/collections/…), with
// one items path per collection that lists the collection's queryables as
// parameters. /openapi.json describes the whole server with the same
// operations under /ogc/…; this view exists because OGC clients read the
// service-desc of the landing page as the definition of the API rooted at
// the landing page: GDAL's OAPIF driver looks up
// paths["/collections/{id}/items"] there to learn which properties it may
// filter on the server (property parameters, and filter-lang's encodings),
// and without them filters every feature itself.

// ogcStandardParams are the items parameters every collection has, as
// OpenAPI parameter objects.
func ogcStandardParams() []any {
	str := map[string]any{"type": "string"}
	return []any{
		map[string]any{"name": "f", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"json", "html"}}},
		map[string]any{"name": "limit", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": ogcMaxLimit, "default": ogcDefaultLimit}},
		map[string]any{"name": "bbox", "in": "query", "style": "form", "explode": false,
			"schema": map[string]any{"type": "array", "minItems": 4, "maxItems": 6, "items": map[string]any{"type": "number"}}},
		map[string]any{"name": "bbox-crs", "in": "query", "schema": str},
		map[string]any{"name": "datetime", "in": "query", "schema": str},
		map[string]any{"name": "crs", "in": "query", "schema": map[string]any{"type": "string", "enum": ogcCRSList()}},
		map[string]any{"name": "cursor", "in": "query", "schema": str},
		map[string]any{"name": "filter", "in": "query", "schema": str},
		map[string]any{"name": "filter-lang", "in": "query", "schema": map[string]any{"type": "string", "enum": ogcFilterLangs}},
		map[string]any{"name": "filter-crs", "in": "query", "schema": map[string]any{"type": "string", "enum": ogcCRSList()}},
	}
}

// queryableParam is a collection's queryable as an items parameter.
func queryableParam(c *data.Collection, q data.Queryable) map[string]any {
	s := queryableSchema(c, q)
	delete(s, "title")
	return map[string]any{"name": q.Name, "in": "query", "description": "Features whose " + q.Name + " equals the value.", "schema": s}
}

func ogcOperation(summary string, params []any, types ...string) map[string]any {
	content := map[string]any{}
	for _, t := range types {
		content[t] = map[string]any{"schema": map[string]any{}}
	}
	return map[string]any{"get": map[string]any{
		"summary": summary, "parameters": params,
		"responses": map[string]any{
			"200":     map[string]any{"description": summary, "content": content},
			"default": map[string]any{"description": "A problem (RFC 9457)", "content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{}}}},
		},
	}}
}

// ogcAPI: GET /ogc/api
func (s *Server) ogcAPI(w http.ResponseWriter, r *http.Request) error {
	cols, err := s.store.FeatureCollections(r.Context())
	if err != nil {
		return err
	}
	f := map[string]any{"name": "f", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"json", "html"}}}
	cid := map[string]any{"name": "collectionId", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
	fid := map[string]any{"name": "featureId", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
	crs := ogcStandardParams()[5]
	paths := map[string]any{
		"/":                                      ogcOperation("Landing page", []any{f}, ctJSON, "text/html"),
		"/conformance":                           ogcOperation("Conformance classes", []any{f}, ctJSON, "text/html"),
		"/api":                                   ogcOperation("This document", nil, ctOpenAPI),
		"/collections":                           ogcOperation("The collections", []any{f}, ctJSON, "text/html"),
		"/collections/{collectionId}":            ogcOperation("One collection", []any{cid, f}, ctJSON, "text/html"),
		"/collections/{collectionId}/queryables": ogcOperation("Queryables", []any{cid, f}, ctSchemaJSON, "text/html"),
		"/collections/{collectionId}/items":      ogcOperation("Features", append([]any{cid}, ogcStandardParams()...), ctGeoJSON, "text/html"),
		"/collections/{collectionId}/items/{featureId}": ogcOperation("One feature", []any{cid, fid, f, crs}, ctGeoJSON, "text/html"),
	}
	for i := range cols {
		c := &cols[i]
		params := ogcStandardParams()
		for _, q := range c.Queryables {
			if !q.Geometry {
				params = append(params, queryableParam(c, q))
			}
		}
		paths["/collections/"+c.ID+"/items"] = ogcOperation(c.Title, params, ctGeoJSON, "text/html")
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "gridmap OGC API – Features", "version": "1.0",
			"description": "The OGC API – Features view of gridmap, rooted at /ogc; " + ogcBaseURL(r) + "/openapi.json describes the whole server. Storage CRS " + geo.CRS84URI + "."},
		"servers": []any{map[string]any{"url": ogcBaseURL(r) + "/ogc"}},
		"paths":   paths,
	}
	writeJSON(w, http.StatusOK, ctOpenAPI, doc)
	return nil
}
