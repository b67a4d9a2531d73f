package export

import (
	"bufio"
	"io"

	"gridmap/geo"
)

// bufferSize is the output buffer of the text writers: large enough that
// a response goes out in few, full chunks, small enough not to matter
// per export.
const bufferSize = 64 << 10

// geojsonWriter writes a FeatureCollection, or a sequence of features
// (RFC 8142 with a record separator before each, or one per line).
type geojsonWriter struct {
	w      *bufio.Writer
	s      geo.Schema
	o      Options
	cw     coordWriter
	buf    []byte
	n      int64
	seq    bool
	prefix []byte // before each feature of a sequence
	keys   [][]byte
}

// NewGeoJSON writes an RFC 7946 FeatureCollection (not RFC 7946 when
// o.CRS is not WGS-84: the caller says so, e.g. in Content-Crs). Each
// feature has the row's id as a string "id" and the schema's fields as
// properties, in schema order.
func NewGeoJSON(w io.Writer, s geo.Schema, o Options) (Writer, error) {
	g := newGeoJSONWriter(w, s, o)
	g.buf = append(g.buf[:0], `{"type":"FeatureCollection","name":`...)
	g.buf = appendJSONString(g.buf, s.Name)
	g.buf = append(g.buf, `,"features":[`...)
	_, err := g.w.Write(g.buf)
	return g, err
}

// NewGeoJSONSeq writes GeoJSON text sequences (RFC 8142): each feature
// preceded by the record separator U+001E and followed by a line feed.
func NewGeoJSONSeq(w io.Writer, s geo.Schema, o Options) (Writer, error) {
	g := newGeoJSONWriter(w, s, o)
	g.seq, g.prefix = true, []byte{0x1e}
	return g, nil
}

// NewNDJSON writes one feature per line (newline-delimited JSON), which
// jq, line-oriented loaders and GDAL's GeoJSONSeq driver read.
func NewNDJSON(w io.Writer, s geo.Schema, o Options) (Writer, error) {
	g := newGeoJSONWriter(w, s, o)
	g.seq = true
	return g, nil
}

func newGeoJSONWriter(w io.Writer, s geo.Schema, o Options) *geojsonWriter {
	o = o.withDefaults()
	g := &geojsonWriter{w: bufio.NewWriterSize(w, bufferSize), s: s, o: o, cw: newCoordWriter(o.Precision), buf: make([]byte, 0, 4096)}
	// The property keys as JSON once, not once per row.
	for _, f := range s.Fields {
		k := appendJSONString(nil, f.Name)
		g.keys = append(g.keys, append(k, ':'))
	}
	return g
}

func (g *geojsonWriter) Write(r *geo.Row) error {
	if err := checkRow(g.s, r); err != nil {
		return err
	}
	b := g.buf[:0]
	switch {
	case g.seq:
		b = append(b, g.prefix...)
	case g.n > 0:
		b = append(b, ",\n"...)
	default:
		b = append(b, '\n')
	}
	b = append(b, `{"type":"Feature","id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"geometry":`...)
	var err error
	if b, err = g.cw.appendGeoJSON(b, geo.GeometryFromWGS84(g.o.CRS, r.Geometry)); err != nil {
		return err
	}
	b = append(b, `,"properties":{`...)
	for i, f := range g.s.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, g.keys[i]...)
		if b, err = appendJSONValue(b, f.Type, r.Values[i]); err != nil {
			return err
		}
	}
	b = append(b, "}}"...)
	if g.seq {
		b = append(b, '\n')
	}
	g.buf = b
	g.n++
	_, err = g.w.Write(b)
	return err
}

func (g *geojsonWriter) Close() error {
	if !g.seq {
		if _, err := g.w.WriteString("\n]}\n"); err != nil {
			return err
		}
	}
	return g.w.Flush()
}

// Abort drops what is buffered: a cut collection must not be closed with
// "]}", which would make it look whole.
func (g *geojsonWriter) Abort() { g.w.Reset(io.Discard) }
