package export

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

// FlatGeobuf (flatgeobuf.org, version 3) written without its spatial
// index: the header, then each feature as it comes, so the file streams
// like the text formats (an index would need every feature before the
// first). Readers take such files (GDAL reads them sequentially; a bbox
// filter then scans). The FlatBuffers tables are laid out by hand (fgbBuf)
// rather than through generated code: no FlatBuffers module is at hand,
// and the two tables and their vectors are a page of code.

var fgbMagic = []byte{'f', 'g', 'b', 3, 'f', 'g', 'b', 0}

// FlatGeobuf geometry and column types.
const (
	fgbUnknown            = 0
	fgbPoint              = 1
	fgbLineString         = 2
	fgbPolygon            = 3
	fgbMultiPoint         = 4
	fgbMultiLineString    = 5
	fgbMultiPolygon       = 6
	fgbGeometryCollection = 7

	fgbColBool     = 2
	fgbColLong     = 7
	fgbColDouble   = 10
	fgbColString   = 11
	fgbColJSON     = 12
	fgbColDateTime = 13
)

type fgbWriter struct {
	w     *bufio.Writer
	s     geo.Schema
	o     Options
	scale float64
	buf   fgbBuf
	props []byte
	size  [4]byte
}

// NewFlatGeobuf writes a FlatGeobuf file of one layer named after the
// schema: the id column and the fields, the geometry in o.CRS (its WKT in
// the header's crs).
func NewFlatGeobuf(w io.Writer, s geo.Schema, o Options) (Writer, error) {
	o = o.withDefaults()
	names, err := columnNames(s, o)
	if err != nil {
		return nil, err
	}
	f := &fgbWriter{w: bufio.NewWriterSize(w, bufferSize), s: s, o: o, scale: math.Pow10(o.Precision)}
	columns := make([][]fgbField, len(names))
	for i, n := range names {
		typ := fgbColString
		if i > 0 {
			typ = fgbColumnType(s.Fields[i-1].Type)
		}
		columns[i] = []fgbField{{id: 0, str: n}, {id: 1, size: 1, scalar: uint64(typ)}}
	}
	id, name, org, orgID, def, _ := gpkgSRS(o.CRS)
	crs := []fgbField{{id: 0, str: org}, {id: 1, size: 4, scalar: uint64(uint32(int32(orgID)))}, {id: 2, str: name}, {id: 4, str: def}}
	if id != srsWGS84 {
		crs = []fgbField{{id: 2, str: name}, {id: 4, str: def}}
	}
	header := []fgbField{
		{id: 0, str: s.Name},
		{id: 2, size: 1, scalar: uint64(fgbGeometryType(s.GeometryType))},
		{id: 7, tables: columns},
		{id: 8, size: 8, scalar: 0}, // features_count: unknown until the end
		{id: 9, size: 2, scalar: 0}, // index_node_size 0: no index
		{id: 10, table: crs},
	}
	b := f.buf.root(header)
	binary.LittleEndian.PutUint32(f.size[:], uint32(len(b)))
	f.w.Write(fgbMagic)
	f.w.Write(f.size[:])
	_, err = f.w.Write(b)
	return f, err
}

func fgbGeometryType(t string) int {
	switch t {
	case "Point":
		return fgbPoint
	case "LineString":
		return fgbLineString
	case "Polygon":
		return fgbPolygon
	case "MultiPoint":
		return fgbMultiPoint
	case "MultiLineString":
		return fgbMultiLineString
	case "MultiPolygon":
		return fgbMultiPolygon
	case "GeometryCollection":
		return fgbGeometryCollection
	}
	return fgbUnknown
}

func fgbColumnType(t geo.FieldType) int {
	switch t {
	case geo.Integer:
		return fgbColLong
	case geo.Real:
		return fgbColDouble
	case geo.Boolean:
		return fgbColBool
	case geo.Time:
		return fgbColDateTime
	case geo.JSON:
		return fgbColJSON
	}
	return fgbColString
}

func (f *fgbWriter) Write(r *geo.Row) error {
	if err := checkRow(f.s, r); err != nil {
		return err
	}
	// Properties: for each non-null value its column index (uint16) and
	// the value, little-endian; text as a uint32 length and UTF-8.
	p := f.props[:0]
	p = appendFGBText(binary.LittleEndian.AppendUint16(p, 0), r.ID)
	for i, fd := range f.s.Fields {
		v := r.Values[i]
		if v == nil {
			continue
		}
		p = binary.LittleEndian.AppendUint16(p, uint16(i+1))
		switch x := v.(type) {
		case int64:
			p = binary.LittleEndian.AppendUint64(p, uint64(x))
		case int:
			p = binary.LittleEndian.AppendUint64(p, uint64(int64(x)))
		case float64:
			p = binary.LittleEndian.AppendUint64(p, math.Float64bits(x))
		case bool:
			if x {
				p = append(p, 1)
			} else {
				p = append(p, 0)
			}
		case time.Time:
			p = appendFGBText(p, x.UTC().Format(timeLayout))
		default:
			s, err := textValue(fd.Type, v)
			if err != nil {
				return err
			}
			p = appendFGBText(p, s)
		}
	}
	f.props = p
	feature := []fgbField{{id: 1, bytes: p}}
	if r.Geometry != nil {
		g, err := f.geometry(roundGeometry(geo.GeometryFromWGS84(f.o.CRS, r.Geometry), f.scale))
		if err != nil {
			return err
		}
		feature = append(feature, fgbField{id: 0, table: g})
	}
	b := f.buf.root(feature)
	binary.LittleEndian.PutUint32(f.size[:], uint32(len(b)))
	f.w.Write(f.size[:])
	_, err := f.w.Write(b)
	return err
}

func appendFGBText(p []byte, s string) []byte {
	return append(binary.LittleEndian.AppendUint32(p, uint32(len(s))), s...)
}

// geometry is the Geometry table of g: xy flat, ends of rings or lines,
// parts for multipolygons and collections, its type always (a layer of
// mixed types needs it per feature).
func (f *fgbWriter) geometry(g orb.Geometry) ([]fgbField, error) {
	typ := func(t int) fgbField { return fgbField{id: 6, size: 1, scalar: uint64(t)} }
	xy := func(ps ...[]orb.Point) fgbField {
		v := make([]float64, 0, 16)
		for _, pts := range ps {
			for _, p := range pts {
				v = append(v, p[0], p[1])
			}
		}
		return fgbField{id: 1, doubles: v}
	}
	ends := func(ps ...[]orb.Point) []fgbField {
		if len(ps) < 2 {
			return nil
		}
		var e []uint32
		n := 0
		for _, pts := range ps {
			n += len(pts)
			e = append(e, uint32(n))
		}
		return []fgbField{{id: 0, uints: e}}
	}
	rings := func(p orb.Polygon) [][]orb.Point {
		out := make([][]orb.Point, len(p))
		for i, r := range p {
			out[i] = r
		}
		return out
	}
	switch x := g.(type) {
	case orb.Point:
		return []fgbField{xy([]orb.Point{x}), typ(fgbPoint)}, nil
	case orb.MultiPoint:
		return []fgbField{xy(x), typ(fgbMultiPoint)}, nil
	case orb.LineString:
		return []fgbField{xy(x), typ(fgbLineString)}, nil
	case orb.MultiLineString:
		ls := make([][]orb.Point, len(x))
		for i, l := range x {
			ls[i] = l
		}
		return append([]fgbField{xy(ls...), typ(fgbMultiLineString)}, ends(ls...)...), nil
	case orb.Ring:
		return f.geometry(orb.Polygon{x})
	case orb.Bound:
		return f.geometry(x.ToPolygon())
	case orb.Polygon:
		rs := rings(x)
		return append([]fgbField{xy(rs...), typ(fgbPolygon)}, ends(rs...)...), nil
	case orb.MultiPolygon:
		parts := make([][]fgbField, len(x))
		for i, p := range x {
			parts[i], _ = f.geometry(p)
		}
		return []fgbField{typ(fgbMultiPolygon), {id: 7, tables: parts}}, nil
	case orb.Collection:
		parts := make([][]fgbField, len(x))
		for i, m := range x {
			var err error
			if parts[i], err = f.geometry(m); err != nil {
				return nil, err
			}
		}
		return []fgbField{typ(fgbGeometryCollection), {id: 7, tables: parts}}, nil
	}
	return nil, fmt.Errorf("export: geometry of type %T", g)
}

func (f *fgbWriter) Close() error { return f.w.Flush() }

func (f *fgbWriter) Abort() { f.w.Reset(io.Discard) }

// fgbField is one field of a FlatBuffers table: a scalar of size bytes,
// or what an offset points to (a string, a vector, a table, a vector of
// tables).
type fgbField struct {
	id      int
	size    int // scalar: 1, 2, 4 or 8 bytes
	scalar  uint64
	str     string
	bytes   []byte
	doubles []float64
	uints   []uint32
	table   []fgbField
	tables  [][]fgbField
}

func (fd *fgbField) isOffset() bool { return fd.size == 0 }

// fgbBuf lays FlatBuffers out front to back: the root offset, then each
// table preceded by its vtable and followed by what its offsets point to
// (offsets are unsigned and point forward). Every scalar and vector
// element sits at a multiple of its size from the start of the buffer, as
// a verifier (GDAL's) checks.
type fgbBuf struct{ b []byte }

func (f *fgbBuf) padTo(align, rem int) {
	for len(f.b)%align != rem {
		f.b = append(f.b, 0)
	}
}

func (f *fgbBuf) put32(at int, v uint32) { binary.LittleEndian.PutUint32(f.b[at:], v) }

// root returns a buffer holding table t; it is reused by the next call.
func (f *fgbBuf) root(t []fgbField) []byte {
	f.b = append(f.b[:0], 0, 0, 0, 0)
	pos := f.table(t)
	f.put32(0, uint32(pos))
	f.padTo(8, 0)
	return f.b
}

// table writes a vtable and its table and everything the table points
// to, and returns the table's position.
func (f *fgbBuf) table(fields []fgbField) int {
	maxID, wide := -1, false
	for _, fd := range fields {
		maxID = max(maxID, fd.id)
		wide = wide || fd.size == 8
	}
	// Inline layout: the soffset, then the 8-byte scalars, then 4-byte
	// ones and offsets, then 2 and 1. With an 8-byte field the table
	// starts 4 past a multiple of 8, so those fields land on multiples of 8.
	at := make([]int, len(fields))
	inline := 4
	for _, sz := range []int{8, 4, 2, 1} {
		for i, fd := range fields {
			s := fd.size
			if fd.isOffset() {
				s = 4
			}
			if s == sz {
				at[i] = inline
				inline += sz
			}
		}
	}
	vtLen := 4 + 2*(maxID+1)
	f.padTo(2, 0)
	vt := len(f.b)
	f.b = append(f.b, make([]byte, vtLen)...)
	if wide {
		f.padTo(8, 4)
	} else {
		f.padTo(4, 0)
	}
	t := len(f.b)
	f.b = append(f.b, make([]byte, inline)...)
	binary.LittleEndian.PutUint16(f.b[vt:], uint16(vtLen))
	binary.LittleEndian.PutUint16(f.b[vt+2:], uint16(inline))
	binary.LittleEndian.PutUint32(f.b[t:], uint32(int32(t-vt)))
	for i, fd := range fields {
		binary.LittleEndian.PutUint16(f.b[vt+4+2*fd.id:], uint16(at[i]))
		p := t + at[i]
		switch fd.size {
		case 1:
			f.b[p] = byte(fd.scalar)
		case 2:
			binary.LittleEndian.PutUint16(f.b[p:], uint16(fd.scalar))
		case 4:
			binary.LittleEndian.PutUint32(f.b[p:], uint32(fd.scalar))
		case 8:
			binary.LittleEndian.PutUint64(f.b[p:], fd.scalar)
		}
	}
	// What the offsets point to, after the table.
	for i, fd := range fields {
		if !fd.isOffset() {
			continue
		}
		slot := t + at[i]
		var target int
		switch {
		case fd.table != nil:
			target = f.table(fd.table)
		case fd.tables != nil:
			target = f.vectorOfTables(fd.tables)
		case fd.doubles != nil:
			f.padTo(8, 4)
			target = len(f.b)
			f.b = binary.LittleEndian.AppendUint32(f.b, uint32(len(fd.doubles)))
			for _, d := range fd.doubles {
				f.b = binary.LittleEndian.AppendUint64(f.b, math.Float64bits(d))
			}
		case fd.uints != nil:
			f.padTo(4, 0)
			target = len(f.b)
			f.b = binary.LittleEndian.AppendUint32(f.b, uint32(len(fd.uints)))
			for _, u := range fd.uints {
				f.b = binary.LittleEndian.AppendUint32(f.b, u)
			}
		case fd.bytes != nil:
			f.padTo(4, 0)
			target = len(f.b)
			f.b = binary.LittleEndian.AppendUint32(f.b, uint32(len(fd.bytes)))
			f.b = append(f.b, fd.bytes...)
		default: // a string, NUL-terminated
			f.padTo(4, 0)
			target = len(f.b)
			f.b = binary.LittleEndian.AppendUint32(f.b, uint32(len(fd.str)))
			f.b = append(append(f.b, fd.str...), 0)
		}
		f.put32(slot, uint32(target-slot))
	}
	return t
}

func (f *fgbBuf) vectorOfTables(ts [][]fgbField) int {
	f.padTo(4, 0)
	v := len(f.b)
	f.b = binary.LittleEndian.AppendUint32(f.b, uint32(len(ts)))
	f.b = append(f.b, make([]byte, 4*len(ts))...)
	for i, t := range ts {
		pos := f.table(t)
		slot := v + 4 + 4*i
		f.put32(slot, uint32(pos-slot))
	}
	return v
}
