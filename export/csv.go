package export

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"gridmap/geo"
)

// csvWriter writes RFC 4180 CSV: CRLF line ends, a header row from the
// schema, fields quoted only when they must be.
type csvWriter struct {
	bw     *bufio.Writer
	w      *csv.Writer
	s      geo.Schema
	o      Options
	cw     coordWriter
	rec    []string
	wkt    []byte
	coords []byte
}

// NewCSV writes the id column, the schema's fields and the geometry: as
// WKT in a column "wkt" (o.CSVGeometry CSVWKT, which GDAL and QGIS read as
// geometry), or as columns "lon" and "lat" (CSVLonLat): a point's
// position, the centroid of any other geometry (it may fall outside a
// concave polygon; take WKT for shapes). A schema without a geometry type
// has no geometry columns.
func NewCSV(w io.Writer, s geo.Schema, o Options) (Writer, error) {
	o = o.withDefaults()
	var extra []string
	if s.GeometryType != "" {
		switch o.CSVGeometry {
		case CSVWKT:
			extra = []string{"wkt"}
		case CSVLonLat:
			extra = []string{"lon", "lat"}
		default:
			return nil, fmt.Errorf("export: CSV geometry %q: use %s or %s", o.CSVGeometry, CSVWKT, CSVLonLat)
		}
	}
	names, err := columnNames(s, o, extra...)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, bufferSize)
	if o.BOM {
		_, _ = bw.WriteString("\ufeff")
	}
	c := &csvWriter{bw: bw, w: csv.NewWriter(bw), s: s, o: o, cw: newCoordWriter(o.Precision), rec: make([]string, len(names))}
	c.w.UseCRLF = true
	if err := c.w.Write(names); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *csvWriter) Write(r *geo.Row) error {
	if err := checkRow(c.s, r); err != nil {
		return err
	}
	c.rec[0] = r.ID
	var err error
	for i, f := range c.s.Fields {
		if c.rec[i+1], err = textValue(f.Type, r.Values[i]); err != nil {
			return err
		}
	}
	if c.s.GeometryType != "" {
		g := geo.GeometryFromWGS84(c.o.CRS, r.Geometry)
		n := len(c.s.Fields) + 1
		switch {
		case c.o.CSVGeometry == CSVWKT:
			if c.wkt, err = c.cw.appendWKT(c.wkt[:0], g); err != nil {
				return err
			}
			c.rec[n] = string(c.wkt)
		case g == nil || isEmpty(g):
			c.rec[n], c.rec[n+1] = "", ""
		default:
			p, ok := g.(orb.Point)
			if !ok {
				p, _ = planar.CentroidArea(g)
			}
			c.coords = appendCoord(c.coords[:0], p[0], c.cw.scale)
			c.rec[n] = string(c.coords)
			c.coords = appendCoord(c.coords[:0], p[1], c.cw.scale)
			c.rec[n+1] = string(c.coords)
		}
	}
	return c.w.Write(c.rec)
}

func (c *csvWriter) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

func (c *csvWriter) Abort() {
	c.w.Flush()
	c.bw.Reset(io.Discard)
}

// isEmpty: a geometry with no position at all.
func isEmpty(g orb.Geometry) bool { return countPoints(g) == 0 }

// countPoints counts the positions of g.
func countPoints(g orb.Geometry) int {
	switch x := g.(type) {
	case orb.MultiPoint:
		return len(x)
	case orb.LineString:
		return len(x)
	case orb.Ring:
		return len(x)
	case orb.MultiLineString:
		n := 0
		for _, l := range x {
			n += len(l)
		}
		return n
	case orb.Polygon:
		n := 0
		for _, r := range x {
			n += len(r)
		}
		return n
	case orb.MultiPolygon:
		n := 0
		for _, p := range x {
			n += countPoints(p)
		}
		return n
	case orb.Collection:
		n := 0
		for _, m := range x {
			n += countPoints(m)
		}
		return n
	}
	return 1
}
