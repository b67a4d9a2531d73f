// Package export encodes feature tables (geo.Schema and a stream of
// geo.Row) as files: GeoJSON and GeoJSON text sequences, CSV, GeoPackage,
// FlatGeobuf, and XLSX for tables without geometry. Every writer streams: rows go in
// one at a time and bytes come out, so an export of any size holds one row
// (and a buffer) in memory, never the table. GeoPackage is the exception
// only in where the bytes wait: SQLite cannot write to a pipe, so the file
// is built in a temporary file on disk and streamed out by Close.
//
// The package knows nothing of SQL or HTTP: the data layer hands rows in,
// the API chooses the writer and the headers.
package export

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"gridmap/geo"
)

// Writer is one export being written.
type Writer interface {
	// Write adds a row. It converts row.Geometry to the output CRS in
	// place; the row is the writer's only until Write returns.
	Write(row *geo.Row) error
	// Close finishes the output (closing brackets, the GeoPackage file
	// itself, the spreadsheet's parts) and flushes it.
	Close() error
	// Abort ends an export that will not be finished (its source failed):
	// it releases what the writer holds (a GeoPackage's temporary file)
	// and writes nothing more, so the output stays visibly incomplete.
	Abort()
}

// DefaultPrecision is the number of decimals positions keep: 1e-7° is
// about 1 cm, finer than any survey of a grid boundary, and every further
// digit costs a byte per coordinate.
const DefaultPrecision = 7

// Options tune the writers; the zero value is WGS-84 with
// DefaultPrecision, WKT geometry in CSV, no BOM and an "id" column.
type Options struct {
	// CRS is the output coordinate system of positions ("" is WGS-84).
	// GeoJSON in anything but WGS-84 is no longer RFC 7946 GeoJSON.
	CRS geo.CRS
	// Precision is the number of decimals of positions (0:
	// DefaultPrecision).
	Precision int
	// CSVGeometry is how CSV carries geometry: CSVWKT (default) or
	// CSVLonLat.
	CSVGeometry string
	// BOM starts CSV with a UTF-8 byte order mark, which is how Excel
	// tells UTF-8 (Chinese names) from the local code page.
	BOM bool
	// IDField names the column of Row.ID in the tabular formats (CSV,
	// GeoPackage, XLSX); default "id".
	IDField string
	// TempDir is where a GeoPackage is built (default os.TempDir()).
	TempDir string
}

// How CSV carries geometry.
const (
	CSVWKT    = "wkt"    // one column "wkt" in OGC well-known text
	CSVLonLat = "lonlat" // columns "lon" and "lat": the point, or the centroid of anything else
)

func (o Options) withDefaults() Options {
	if o.CRS == "" {
		o.CRS = geo.WGS84
	}
	if o.Precision <= 0 {
		o.Precision = DefaultPrecision
	}
	if o.CSVGeometry == "" {
		o.CSVGeometry = CSVWKT
	}
	if o.IDField == "" {
		o.IDField = "id"
	}
	return o
}

// Format is one encoding an export can take.
type Format struct {
	Name      string // the f= value: geojson, geojsonseq, ndjson, csv, gpkg, fgb, xlsx
	MediaType string
	Ext       string // file name extension, with the dot
	// Geometry is false for formats that only hold tables without
	// geometry (xlsx).
	Geometry bool
	New      func(w io.Writer, s geo.Schema, o Options) (Writer, error)
}

// MediaTypeGPKG and MediaTypeXLSX are the registered media types of
// GeoPackage (OGC, registered with IANA in 2023) and of Office Open XML
// workbooks.
const (
	MediaTypeGPKG = "application/geopackage+sqlite3"
	MediaTypeXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// Formats lists every encoding, in the order the documentation names
// them.
var Formats = []Format{
	{Name: "geojson", MediaType: "application/geo+json", Ext: ".geojson", Geometry: true, New: NewGeoJSON},
	{Name: "geojsonseq", MediaType: "application/geo+json-seq", Ext: ".geojsons", Geometry: true, New: NewGeoJSONSeq},
	{Name: "ndjson", MediaType: "application/x-ndjson", Ext: ".ndjson", Geometry: true, New: NewNDJSON},
	{Name: "csv", MediaType: "text/csv; charset=utf-8", Ext: ".csv", Geometry: true, New: NewCSV},
	{Name: "gpkg", MediaType: MediaTypeGPKG, Ext: ".gpkg", Geometry: true, New: NewGPKG},
	{Name: "fgb", MediaType: "application/flatgeobuf", Ext: ".fgb", Geometry: true, New: NewFlatGeobuf},
	{Name: "xlsx", MediaType: MediaTypeXLSX, Ext: ".xlsx", New: NewXLSX},
}

// Lookup finds a format by its name.
func Lookup(name string) (Format, bool) {
	for _, f := range Formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// columnNames are the tabular formats' column names in order: the id
// column, then the schema's fields, then extra (the geometry columns). A
// name given twice (case-insensitively, as SQLite and spreadsheets compare
// them) is refused: it would make a file whose columns cannot be told
// apart.
func columnNames(s geo.Schema, o Options, extra ...string) ([]string, error) {
	names := make([]string, 0, len(s.Fields)+1+len(extra))
	names = append(names, o.IDField)
	for _, f := range s.Fields {
		names = append(names, f.Name)
	}
	names = append(names, extra...)
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" {
			return nil, errors.New("export: a column has no name")
		}
		k := strings.ToLower(n)
		if seen[k] {
			return nil, fmt.Errorf("export: column %q of %s is named twice", n, s.Name)
		}
		seen[k] = true
	}
	return names, nil
}

// checkRow refuses a row whose values do not match the schema.
func checkRow(s geo.Schema, r *geo.Row) error {
	if len(r.Values) != len(s.Fields) {
		return fmt.Errorf("export: row %q has %d values for %d fields", r.ID, len(r.Values), len(s.Fields))
	}
	return nil
}
