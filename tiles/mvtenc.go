package tiles

import "encoding/binary"

// mvtEncoder writes MVT 2.1 layers of unit features straight to protobuf
// bytes: one layer at a time, its features appended as they come, keys
// fixed (the unit attributes) and values deduplicated. It is what
// orb's encoding/mvt would write, without building orb geometries and
// maps first (docs/benchmarks.md, unit tiles from memory).
type mvtEncoder struct {
	name     string
	features []byte
	values   map[string]uint32
	order    []string
	// the last value of each attribute and its index
	last    [4]string
	lastIdx [4]uint32
	hasLast [4]bool
}

// unitKeys are the attributes of a unit feature, in the order ST_AsMVT
// writes them (the columns of the unit queries).
var unitKeys = [4]string{"code", "name", "level", "parent_code"}

func (e *mvtEncoder) startLayer(name string) {
	e.name = name
	e.features = e.features[:0]
	e.order = e.order[:0]
	e.hasLast = [4]bool{}
	// clear walks a map's whole table, which keeps the size of the
	// largest tile drawn (19,700 values for a city of grids): past a few
	// hundred entries a new map is cheaper.
	if e.values == nil || len(e.values) > 512 {
		e.values = map[string]uint32{}
	} else {
		clear(e.values)
	}
}

func (e *mvtEncoder) value(s string) uint32 {
	if i, ok := e.values[s]; ok {
		return i
	}
	i := uint32(len(e.order))
	e.values[s] = i
	e.order = append(e.order, s)
	return i
}

// feature appends one polygon feature with id and the unit attributes
// (empty parent codes included, as the queries' coalesce writes them).
func (e *mvtEncoder) feature(id uint64, attrs [4]string, geom []uint32) {
	var tags [8]uint32
	for i, a := range attrs {
		tags[2*i] = uint32(i)
		switch {
		case i == 0:
			// A code is unique within its level's layer: no lookup (on
			// the z6 tile of every grid, the lookups of 19,700 codes were
			// a third of the encoding).
			tags[1] = uint32(len(e.order))
			e.order = append(e.order, a)
		case e.last[i] == a && e.hasLast[i]:
			// Features come in code order: siblings share a parent
			// and a level one after another.
			tags[2*i+1] = e.lastIdx[i]
		default:
			tags[2*i+1] = e.value(a)
			e.last[i], e.lastIdx[i], e.hasLast[i] = a, tags[2*i+1], true
		}
	}
	tagLen := 0
	for _, t := range tags {
		tagLen += uvarintLen(uint64(t))
	}
	geomLen := 0
	for _, g := range geom {
		geomLen += uvarintLen(uint64(g))
	}
	body := 1 + uvarintLen(id) + // id
		1 + uvarintLen(uint64(tagLen)) + tagLen + // tags
		2 + // type
		1 + uvarintLen(uint64(geomLen)) + geomLen // geometry
	b := e.features
	b = append(b, 2<<3|2)
	b = binary.AppendUvarint(b, uint64(body))
	b = append(b, 1<<3 /* varint */)
	b = binary.AppendUvarint(b, id)
	b = append(b, 2<<3|2)
	b = binary.AppendUvarint(b, uint64(tagLen))
	for _, t := range tags {
		b = binary.AppendUvarint(b, uint64(t))
	}
	b = append(b, 3<<3 /* varint */, 3) // POLYGON
	b = append(b, 4<<3|2)
	b = binary.AppendUvarint(b, uint64(geomLen))
	for _, g := range geom {
		// Most commands and deltas of a tile fit in one or two bytes.
		switch {
		case g < 1<<7:
			b = append(b, byte(g))
		case g < 1<<14:
			b = append(b, byte(g)|0x80, byte(g>>7))
		default:
			b = binary.AppendUvarint(b, uint64(g))
		}
	}
	e.features = b
}

// endLayer appends the layer (as field 3 of a Tile) to out; a layer
// without features is left out, as ST_AsMVT of no rows is empty.
func (e *mvtEncoder) endLayer(out []byte) []byte {
	if len(e.features) == 0 {
		return out
	}
	n := 1 + uvarintLen(uint64(len(e.name))) + len(e.name) + len(e.features)
	for _, k := range unitKeys {
		n += 1 + uvarintLen(uint64(len(k))) + len(k)
	}
	for _, v := range e.order {
		vl := 1 + uvarintLen(uint64(len(v))) + len(v)
		n += 1 + uvarintLen(uint64(vl)) + vl
	}
	n += 1 + uvarintLen(Extent) + 2 // extent, version
	out = append(out, 3<<3|2)
	out = binary.AppendUvarint(out, uint64(n))
	out = appendString(out, 1, e.name)
	out = append(out, e.features...)
	for _, k := range unitKeys {
		out = appendString(out, 3, k)
	}
	for _, v := range e.order {
		vl := 1 + uvarintLen(uint64(len(v))) + len(v)
		out = append(out, 4<<3|2)
		out = binary.AppendUvarint(out, uint64(vl))
		out = appendString(out, 1, v)
	}
	out = append(out, 5<<3 /* varint */)
	out = binary.AppendUvarint(out, Extent)
	out = append(out, 15<<3 /* varint */, 2)
	return out
}

func appendString(b []byte, field int, s string) []byte {
	b = append(b, byte(field<<3|2))
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
