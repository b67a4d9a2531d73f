package geo

import "github.com/paulmach/orb"

// FieldType is the type of one attribute column of a feature table, as
// the tabular encodings (CSV, GeoPackage, FlatGeobuf, spreadsheets) need
// it before the first row.
type FieldType int

const (
	String  FieldType = iota // Go string
	Integer                  // int64
	Real                     // float64
	Boolean                  // bool
	Time                     // time.Time (UTC on output)
	JSON                     // json.RawMessage: an object or array kept whole
)

// Field is one attribute column.
type Field struct {
	Name string
	Type FieldType
}

// Schema describes the rows of one feature table: its attribute columns in
// order and the geometry type every row's geometry has ("Point",
// "MultiPolygon", … or "Geometry" when mixed).
type Schema struct {
	Name         string // the table or collection id, e.g. "grids"
	Fields       []Field
	GeometryType string
}

// Row is one feature of a table: its id, one value per Schema field (nil
// is null; otherwise the Go type FieldType names) and its geometry in
// WGS-84 (nil when it has none). Whoever hands out a Row may reuse it after
// the call it was given to returns.
type Row struct {
	ID       string
	Values   []any
	Geometry orb.Geometry
}
