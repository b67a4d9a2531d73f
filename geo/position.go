package geo

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
)

// MaxPositionNumbers is how many numbers a GeoJSON position may hold:
// longitude, latitude and an optional altitude (RFC 7946 §3.1.1). The
// altitude is read, checked to be a finite number, and dropped: gridmap
// stores and assigns in two dimensions.
const MaxPositionNumbers = 3

// supportedTypes are the geometry types DecodeGeometry reads.
const supportedTypes = "Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon"

// PositionError is a coordinates member that is not what its geometry type
// needs: a position without 2 or 3 finite numbers, a member that is null,
// a string or another non-number, or an array nested the wrong way.
// encoding/json would read such input into [2]float64 as zeros or cut it
// short; this error refuses it instead and says where.
type PositionError struct {
	// Geometry is where the geometry object is ("features[3].geometry",
	// "geometry"); empty when a lone position was read.
	Geometry string
	// Member is the member at fault inside it: "coordinates[0][5]" for a
	// position, "coordinates[0][5][1]" for one of its numbers; for a lone
	// position "" or "[1]".
	Member string
	Msg    string
}

func (e *PositionError) Error() string {
	s := e.Msg
	if e.Member != "" {
		s = e.Member + ": " + s
	}
	if e.Geometry != "" {
		s = e.Geometry + ": " + s
	}
	return s
}

// Path is the full JSON path of the member at fault, such as
// features[3].geometry.coordinates[0][5].
func (e *PositionError) Path() string {
	switch {
	case e.Geometry == "":
		return e.Member
	case e.Member == "":
		return e.Geometry
	case strings.HasPrefix(e.Member, "["):
		return e.Geometry + e.Member
	}
	return e.Geometry + "." + e.Member
}

// DecodeGeometry reads a GeoJSON geometry object of one of the six types
// with coordinates (a GeometryCollection is refused). Every position must
// be 2 or 3 finite JSON numbers; the altitude is dropped. where names the
// geometry in errors ("features[3].geometry", "geometry"). Ranges are not
// checked here: see CheckRange.
func DecodeGeometry(raw []byte, where string) (orb.Geometry, error) {
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	switch g.Type {
	case "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon":
	case "GeometryCollection":
		return nil, fmt.Errorf("%s: type %q is not supported: use %s", where, Excerpt(g.Type, MaxExcerpt), supportedTypes)
	default:
		return nil, fmt.Errorf("%s: type %q is not a GeoJSON geometry type: use %s", where, Excerpt(g.Type, MaxExcerpt), supportedTypes)
	}
	if len(g.Coordinates) == 0 {
		return nil, &PositionError{Geometry: where, Member: "coordinates", Msg: "missing"}
	}
	r := coordReader{b: g.Coordinates, max: MaxPositionNumbers, base: "coordinates"}
	geom, err := r.geometry(g.Type)
	if err == nil {
		err = r.end()
	}
	if err != nil {
		if pe, ok := err.(*PositionError); ok {
			pe.Geometry = where
		}
		return nil, err
	}
	return geom, nil
}

// ParsePosition reads one JSON position of 2 to most finite numbers, such
// as a point of a locate batch (most 2). Errors are *PositionError with
// Member "" (the array) or "[i]" (a number in it).
func ParsePosition(raw []byte, most int) (orb.Point, error) {
	r := coordReader{b: raw, max: most}
	p, err := r.position()
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return orb.Point{}, err
	}
	return p, nil
}

// coordReader parses a coordinates value by hand: a position is read
// number by number, so a missing, null or extra member is seen rather
// than zero-filled or dropped as encoding/json does for [2]float64.
type coordReader struct {
	b    []byte
	i    int
	max  int
	base string // the path of the value read: "coordinates" or ""
	path []int  // indices of the arrays being read
}

var axes = [...]string{"longitude", "latitude", "altitude"}

func (r *coordReader) geometry(typ string) (orb.Geometry, error) {
	switch typ {
	case "Point":
		return r.position()
	case "MultiPoint":
		pts, err := r.positions("an array of positions")
		return orb.MultiPoint(pts), err
	case "LineString":
		pts, err := r.positions("an array of positions")
		return orb.LineString(pts), err
	case "MultiLineString":
		var out orb.MultiLineString
		err := r.array("an array of line strings", func() error {
			pts, err := r.positions("a line string (an array of positions)")
			out = append(out, pts)
			return err
		})
		return out, err
	case "Polygon":
		poly, err := r.polygon("an array of linear rings")
		return poly, err
	default: // MultiPolygon
		var out orb.MultiPolygon
		err := r.array("an array of polygons", func() error {
			poly, err := r.polygon("a polygon (an array of linear rings)")
			out = append(out, poly)
			return err
		})
		return out, err
	}
}

func (r *coordReader) polygon(want string) (orb.Polygon, error) {
	var out orb.Polygon
	err := r.array(want, func() error {
		pts, err := r.positions("a linear ring (an array of positions)")
		out = append(out, pts)
		return err
	})
	return out, err
}

func (r *coordReader) positions(want string) ([]orb.Point, error) {
	var out []orb.Point
	err := r.array(want, func() error {
		p, err := r.position()
		out = append(out, p)
		return err
	})
	return out, err
}

func (r *coordReader) position() (orb.Point, error) {
	var p orb.Point
	n := 0
	err := r.array("a position [longitude, latitude]", func() error {
		k := n
		n++
		if k >= r.max {
			return r.skip()
		}
		v, err := r.number(axes[min(k, len(axes)-1)])
		if k < 2 {
			p[k] = v
		}
		return err
	})
	if err != nil {
		return p, err
	}
	if n < 2 || n > r.max {
		if r.max == 2 {
			return p, r.fail("a position needs 2 numbers (longitude, latitude), got %d", n)
		}
		return p, r.fail("a position needs 2 or %d numbers (longitude, latitude and an optional altitude), got %d", r.max, n)
	}
	return p, nil
}

// array reads a JSON array, calling elem at each element with the path
// extended by the element's index.
func (r *coordReader) array(want string, elem func() error) error {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '[' {
		return r.fail("%s, want %s", r.kind(), want)
	}
	r.i++
	r.path = append(r.path, 0)
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == ']' {
		r.i++
		r.path = r.path[:len(r.path)-1]
		return nil
	}
	for k := 0; ; k++ {
		r.path[len(r.path)-1] = k
		if err := elem(); err != nil {
			return err
		}
		r.ws()
		if r.i >= len(r.b) {
			return r.malformed()
		}
		switch r.b[r.i] {
		case ',':
			r.i++
		case ']':
			r.i++
			r.path = r.path[:len(r.path)-1]
			return nil
		default:
			return r.malformed()
		}
	}
}

// number reads one JSON number that must be finite (1e999 is not).
func (r *coordReader) number(name string) (float64, error) {
	r.ws()
	start := r.i
	end := numberEnd(r.b, start)
	if end < 0 {
		if r.kind() == "a number" {
			return 0, r.malformed()
		}
		return 0, r.fail("%s, want a number (%s)", r.kind(), name)
	}
	r.i = end
	v, err := strconv.ParseFloat(string(r.b[start:end]), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, r.fail("%s %s is not a finite number", name, Excerpt(string(r.b[start:end]), MaxExcerpt))
	}
	return v, nil
}

// numberEnd returns where the JSON number starting at b[i] ends, or -1
// when none starts there (RFC 8259 §6: no +, no leading zeros, no bare
// dot, no Infinity or NaN).
func numberEnd(b []byte, i int) int {
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return -1
		}
	}
	if i < len(b) && b[i] >= '0' && b[i] <= '9' { // 01
		return -1
	}
	return i
}

// skip passes over one JSON value: a member past the numbers a position
// may hold, read only so the count in the error is right.
func (r *coordReader) skip() error {
	depth := 0
	for {
		r.ws()
		if r.i >= len(r.b) {
			return r.malformed()
		}
		switch c := r.b[r.i]; c {
		case '[', '{':
			depth++
			r.i++
			continue
		case ']', '}':
			if depth == 0 {
				return r.malformed()
			}
			depth--
			r.i++
		case ',', ':':
			if depth == 0 {
				return r.malformed()
			}
			r.i++
			continue
		case '"':
			r.i++
			for r.i < len(r.b) && r.b[r.i] != '"' {
				if r.b[r.i] == '\\' {
					r.i++
				}
				r.i++
			}
			if r.i >= len(r.b) {
				return r.malformed()
			}
			r.i++
		default: // a number or a literal
			for r.i < len(r.b) && !strings.ContainsRune(" \t\r\n,:[]{}\"", rune(r.b[r.i])) {
				r.i++
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// end checks that nothing but spaces follows the value.
func (r *coordReader) end() error {
	r.ws()
	if r.i != len(r.b) {
		return r.malformed()
	}
	return nil
}

func (r *coordReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// kind names the JSON value at the cursor for an error.
func (r *coordReader) kind() string {
	if r.i >= len(r.b) {
		return "nothing"
	}
	switch c := r.b[r.i]; {
	case c == 'n':
		return "null"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return fmt.Sprintf("%q", rune(r.b[r.i]))
}

func (r *coordReader) member() string {
	var sb strings.Builder
	sb.WriteString(r.base)
	for _, k := range r.path {
		sb.WriteByte('[')
		sb.WriteString(strconv.Itoa(k))
		sb.WriteByte(']')
	}
	return sb.String()
}

func (r *coordReader) fail(format string, args ...any) error {
	return &PositionError{Member: r.member(), Msg: fmt.Sprintf(format, args...)}
}

func (r *coordReader) malformed() error {
	return r.fail("malformed JSON at byte %d of the coordinates", r.i+1)
}
