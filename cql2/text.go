package cql2

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

// MaxDepth bounds the nesting of a filter (parentheses, NOT, functions,
// WKT collections) so that a hostile one cannot exhaust the stack.
const MaxDepth = 64

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // a name or a keyword
	tQuoted         // "a property"
	tString         // 'a literal'
	tNumber         // 12, -3.5e2
	tPunct          // ( ) , = <> < > <= >=
)

type token struct {
	kind tokKind
	pos  int
	text string // the identifier, the unescaped string, the punctuation
	num  float64
}

type textParser struct {
	s     string
	next  int // byte offset after tok
	tok   token
	depth int
}

// ParseText reads a filter in the CQL2 text encoding. Keywords and function
// names are case-insensitive; property names are identifiers or
// "double-quoted". Errors are *Error with Pos, the byte offset of the
// fault.
func ParseText(s string) (Expr, error) {
	if msg := geo.CheckText(s); msg != "" {
		return nil, &Error{Pos: 0, Msg: "the filter " + msg}
	}
	p := &textParser{s: s}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, p.fail(p.tok.pos, "the filter is empty")
	}
	e, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.fail(p.tok.pos, "unexpected %s after a complete filter", p.describe())
	}
	return e, nil
}

func (p *textParser) fail(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// describe names the current token for an error, quoting at most
// geo.MaxExcerpt bytes of it.
func (p *textParser) describe() string {
	switch p.tok.kind {
	case tEOF:
		return "end of filter"
	case tString:
		return "string '" + geo.Excerpt(p.tok.text, geo.MaxExcerpt) + "'"
	case tNumber:
		return "number " + geo.Excerpt(p.s[p.tok.pos:p.next], geo.MaxExcerpt)
	case tQuoted:
		return `"` + geo.Excerpt(p.tok.text, geo.MaxExcerpt) + `"`
	}
	return "'" + geo.Excerpt(p.tok.text, geo.MaxExcerpt) + "'"
}

func (p *textParser) advance() error {
	s, i := p.s, p.next
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	p.tok = token{pos: i}
	if i >= len(s) {
		p.tok.kind, p.next = tEOF, i
		return nil
	}
	c := s[i]
	switch {
	case c == '(' || c == ')' || c == ',' || c == '=':
		p.tok.kind, p.tok.text, p.next = tPunct, s[i:i+1], i+1
	case c == '<':
		j := i + 1
		if j < len(s) && (s[j] == '>' || s[j] == '=') {
			j++
		}
		p.tok.kind, p.tok.text, p.next = tPunct, s[i:j], j
	case c == '>':
		j := i + 1
		if j < len(s) && s[j] == '=' {
			j++
		}
		p.tok.kind, p.tok.text, p.next = tPunct, s[i:j], j
	case c == '\'':
		var b strings.Builder
		j := i + 1
		for {
			if j >= len(s) {
				return p.fail(i, "string starting here is not closed with '")
			}
			if s[j] == '\'' {
				if j+1 < len(s) && s[j+1] == '\'' {
					b.WriteByte('\'')
					j += 2
					continue
				}
				break
			}
			if s[j] == '\\' && j+1 < len(s) && s[j+1] == '\'' {
				b.WriteByte('\'')
				j += 2
				continue
			}
			b.WriteByte(s[j])
			j++
		}
		p.tok.kind, p.tok.text, p.next = tString, b.String(), j+1
	case c == '"':
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			return p.fail(i, `property name starting here is not closed with "`)
		}
		if j == 0 {
			return p.fail(i, "empty property name")
		}
		p.tok.kind, p.tok.text, p.next = tQuoted, s[i+1:i+1+j], i+j+2
	case c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+':
		j := i
		if c == '-' || c == '+' {
			j++
		}
		start := j
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		if j == start {
			return p.fail(i, "%q is not a number (CQL2 arithmetic is not supported)", string(c))
		}
		if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
			k := j + 1
			if k < len(s) && (s[k] == '+' || s[k] == '-') {
				k++
			}
			d := k
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			if k > d {
				j = k
			}
		}
		f, err := strconv.ParseFloat(s[i:j], 64)
		if err != nil || math.IsInf(f, 0) {
			return p.fail(i, "%s is not a finite number", geo.Excerpt(s[i:j], geo.MaxExcerpt))
		}
		p.tok.kind, p.tok.num, p.next = tNumber, f, j
	default:
		r, _ := utf8.DecodeRuneInString(s[i:])
		if !identStart(r) {
			return p.fail(i, "unexpected character %q", r)
		}
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if !identStart(r) && !unicode.IsDigit(r) && r != '.' {
				break
			}
			j += n
		}
		p.tok.kind, p.tok.text, p.next = tIdent, s[i:j], j
	}
	return nil
}

func identStart(r rune) bool { return unicode.IsLetter(r) || r == '_' || r == ':' }

// is says whether the current token is the keyword or punctuation kw.
func (p *textParser) is(kw string) bool {
	return (p.tok.kind == tIdent || p.tok.kind == tPunct) && strings.EqualFold(p.tok.text, kw)
}

func (p *textParser) expect(kw string) error {
	if !p.is(kw) {
		return p.fail(p.tok.pos, "expected %s, found %s", kw, p.describe())
	}
	return p.advance()
}

func (p *textParser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return p.fail(p.tok.pos, "the filter nests deeper than %d levels", MaxDepth)
	}
	return nil
}

func (p *textParser) orExpr() (Expr, error) { return p.chain("or", p.andExpr) }

func (p *textParser) andExpr() (Expr, error) { return p.chain("and", p.notExpr) }

func (p *textParser) chain(op string, sub func() (Expr, error)) (Expr, error) {
	first, err := sub()
	if err != nil {
		return nil, err
	}
	args := []Expr{first}
	for p.is(op) {
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := sub()
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	if len(args) == 1 {
		return first, nil
	}
	return &Op{Op: op, Args: args}, nil
}

func (p *textParser) notExpr() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if p.is("not") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		return &Op{Op: "not", Args: []Expr{e}}, nil
	}
	if p.is("(") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.orExpr()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")")
	}
	return p.predicate()
}

var comparisonOps = map[string]bool{"=": true, "<>": true, "<": true, ">": true, "<=": true, ">=": true}

// predicate reads an operand and what follows it: a comparison, [NOT]
// LIKE / BETWEEN / IN, IS [NOT] NULL, or nothing when the operand is a
// boolean itself (a spatial or temporal function, TRUE, a boolean
// property).
func (p *textParser) predicate() (Expr, error) {
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	if p.tok.kind == tPunct && comparisonOps[p.tok.text] {
		op := p.tok.text
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.operand()
		if err != nil {
			return nil, err
		}
		return &Op{Op: op, Args: []Expr{left, right}}, nil
	}
	negate := false
	if p.is("not") {
		negate = true
		if err := p.advance(); err != nil {
			return nil, err
		}
		if !p.is("like") && !p.is("between") && !p.is("in") {
			return nil, p.fail(p.tok.pos, "expected LIKE, BETWEEN or IN after NOT, found %s", p.describe())
		}
	}
	var e Expr
	switch {
	case p.is("like"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		pat, err := p.operand()
		if err != nil {
			return nil, err
		}
		e = &Op{Op: "like", Args: []Expr{left, pat}}
	case p.is("between"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		lo, err := p.operand()
		if err != nil {
			return nil, err
		}
		if err := p.expect("and"); err != nil {
			return nil, err
		}
		hi, err := p.operand()
		if err != nil {
			return nil, err
		}
		e = &Op{Op: "between", Args: []Expr{left, lo, hi}}
	case p.is("in"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		if err := p.expect("("); err != nil {
			return nil, err
		}
		list := &List{}
		for {
			item, err := p.operand()
			if err != nil {
				return nil, err
			}
			list.Items = append(list.Items, item)
			if !p.is(",") {
				break
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		e = &Op{Op: "in", Args: []Expr{left, list}}
	case p.is("is"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.is("not") {
			negate = true
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		if err := p.expect("null"); err != nil {
			return nil, err
		}
		e = &Op{Op: "isNull", Args: []Expr{left}}
	default:
		return left, nil
	}
	if negate {
		e = &Op{Op: "not", Args: []Expr{e}}
	}
	return e, nil
}

var wktTypes = map[string]bool{"point": true, "linestring": true, "polygon": true, "multipoint": true,
	"multilinestring": true, "multipolygon": true, "geometrycollection": true}

// operand reads a literal, a property or a function call.
func (p *textParser) operand() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	t := p.tok
	switch t.kind {
	case tString:
		return &StringLit{Value: t.text}, p.advance()
	case tNumber:
		return &NumberLit{Value: t.num}, p.advance()
	case tQuoted:
		return &Property{Name: t.text}, p.advance()
	case tEOF:
		return nil, p.fail(t.pos, "the filter ends where a value or property was expected")
	case tPunct:
		if t.text == "(" {
			return nil, p.fail(t.pos, "a parenthesis cannot start a value (CQL2 arithmetic is not supported)")
		}
		return nil, p.fail(t.pos, "expected a value or property, found %s", p.describe())
	}
	name := strings.ToLower(t.text)
	if err := p.advance(); err != nil {
		return nil, err
	}
	switch name {
	case "true", "false":
		return &BoolLit{Value: name == "true"}, nil
	case "and", "or", "not", "like", "between", "in", "is", "null":
		return nil, p.fail(t.pos, "expected a value or property, found the keyword %s (quote a property of that name: \"%s\")", strings.ToUpper(name), t.text)
	case "timestamp", "date":
		if err := p.expect("("); err != nil {
			return nil, err
		}
		pos := p.tok.pos
		if p.tok.kind != tString {
			return nil, p.fail(pos, "%s takes a quoted string, found %s", strings.ToUpper(name), p.describe())
		}
		lit, err := instant(name, p.tok.text)
		if err != nil {
			return nil, p.fail(pos, "%s", err.Error())
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return lit, p.expect(")")
	case "interval":
		return p.interval()
	case "bbox":
		return p.bbox(t.pos)
	case "casei":
		if err := p.expect("("); err != nil {
			return nil, err
		}
		a, err := p.operand()
		if err != nil {
			return nil, err
		}
		return &Op{Op: "casei", Args: []Expr{a}}, p.expect(")")
	}
	if wktTypes[name] {
		g, err := p.wkt(name, t.pos)
		if err != nil {
			return nil, err
		}
		return &GeometryLit{Geom: g}, nil
	}
	if isBinaryFunction(name) {
		if err := p.expect("("); err != nil {
			return nil, err
		}
		a, err := p.operand()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		b, err := p.operand()
		if err != nil {
			return nil, err
		}
		return &Op{Op: name, Args: []Expr{a, b}}, p.expect(")")
	}
	if p.is("(") {
		return nil, p.fail(t.pos, "unknown or unsupported function %s", geo.Excerpt(t.text, geo.MaxExcerpt))
	}
	return &Property{Name: t.text}, nil
}

func isBinaryFunction(name string) bool {
	for _, o := range SpatialOps {
		if o == name {
			return true
		}
	}
	for _, o := range TemporalOps {
		if o == name {
			return true
		}
	}
	return false
}

// instant reads the string of a DATE or TIMESTAMP literal.
func instant(kind, s string) (Expr, error) {
	if kind == "date" {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, fmt.Errorf("'%s' is not a date (YYYY-MM-DD)", geo.Excerpt(s, geo.MaxExcerpt))
		}
		return &DateLit{Time: t}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("'%s' is not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SSZ)", geo.Excerpt(s, geo.MaxExcerpt))
	}
	return &TimestampLit{Time: t.UTC()}, nil
}

// intervalEnd reads an end of an interval given as a string: '..' (open,
// nil), a date or a timestamp.
func intervalEnd(s string) (Expr, error) {
	switch {
	case s == "..":
		return nil, nil
	case len(s) == len(time.DateOnly):
		return instant("date", s)
	}
	return instant("timestamp", s)
}

func (p *textParser) interval() (Expr, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var ends [2]Expr
	for i := range ends {
		if i == 1 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		if p.tok.kind == tString {
			e, err := intervalEnd(p.tok.text)
			if err != nil {
				return nil, p.fail(p.tok.pos, "%s", err.Error())
			}
			ends[i] = e
			if err := p.advance(); err != nil {
				return nil, err
			}
			continue
		}
		pos := p.tok.pos
		e, err := p.operand()
		if err != nil {
			return nil, err
		}
		switch e.(type) {
		case *DateLit, *TimestampLit, *Property:
		default:
			return nil, p.fail(pos, "an interval end is a date, a timestamp, '..' or a property")
		}
		ends[i] = e
	}
	return &IntervalLit{Start: ends[0], End: ends[1]}, p.expect(")")
}

func (p *textParser) number(what string) (float64, error) {
	if p.tok.kind != tNumber {
		return 0, p.fail(p.tok.pos, "expected a number (%s), found %s", what, p.describe())
	}
	f := p.tok.num
	return f, p.advance()
}

func (p *textParser) bbox(pos int) (Expr, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var n []float64
	for {
		f, err := p.number("a BBOX corner")
		if err != nil {
			return nil, err
		}
		n = append(n, f)
		if !p.is(",") {
			break
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	b, msg := bound(n)
	if msg != "" {
		return nil, p.fail(pos, "BBOX %s", msg)
	}
	return &GeometryLit{Geom: b}, nil
}

// bound reads the 4 or 6 numbers of a bbox (6: with heights, dropped).
func bound(n []float64) (orb.Bound, string) {
	var b orb.Bound
	switch len(n) {
	case 4:
		b = orb.Bound{Min: orb.Point{n[0], n[1]}, Max: orb.Point{n[2], n[3]}}
	case 6:
		b = orb.Bound{Min: orb.Point{n[0], n[1]}, Max: orb.Point{n[3], n[4]}}
	default:
		return b, fmt.Sprintf("takes 4 numbers (minLon, minLat, maxLon, maxLat) or 6, not %d", len(n))
	}
	for _, x := range n {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return b, "has a number that is not finite"
		}
	}
	if b.Min[0] < -180 || b.Max[0] > 180 || b.Min[1] < -90 || b.Max[1] > 90 {
		return b, "is outside longitude -180…180, latitude -90…90"
	}
	if b.Min[0] > b.Max[0] || b.Min[1] > b.Max[1] {
		return b, "has a minimum above its maximum"
	}
	return b, ""
}

// wkt reads a WKT geometry after its type keyword. A Z, M or ZM marker and
// third or fourth ordinates are accepted and dropped: units and objects
// are two-dimensional.
func (p *textParser) wkt(typ string, pos int) (orb.Geometry, error) {
	if p.is("z") || p.is("m") || p.is("zm") {
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if p.is("empty") {
		return nil, p.fail(p.tok.pos, "EMPTY geometries are not supported")
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	var g orb.Geometry
	var err error
	switch typ {
	case "point":
		err = p.parens(func() error {
			pt, err := p.position()
			g = pt
			return err
		})
	case "linestring":
		var ls orb.LineString
		ls, err = p.lineString()
		g = ls
	case "polygon":
		var pg orb.Polygon
		pg, err = p.polygon()
		g = pg
	case "multipoint":
		var mp orb.MultiPoint
		err = p.list(func() error {
			var pt orb.Point
			var err error
			if p.is("(") {
				err = p.parens(func() error { pt, err = p.position(); return err })
			} else {
				pt, err = p.position()
			}
			mp = append(mp, pt)
			return err
		})
		g = mp
	case "multilinestring":
		var ml orb.MultiLineString
		err = p.list(func() error {
			ls, err := p.lineString()
			ml = append(ml, ls)
			return err
		})
		g = ml
	case "multipolygon":
		var mp orb.MultiPolygon
		err = p.list(func() error {
			pg, err := p.polygon()
			mp = append(mp, pg)
			return err
		})
		g = mp
	case "geometrycollection":
		var c orb.Collection
		err = p.list(func() error {
			t := p.tok
			name := strings.ToLower(t.text)
			if t.kind != tIdent || !wktTypes[name] {
				return p.fail(t.pos, "expected a WKT geometry, found %s", p.describe())
			}
			if err := p.advance(); err != nil {
				return err
			}
			m, err := p.wkt(name, t.pos)
			c = append(c, m)
			return err
		})
		g = c
	}
	if err != nil {
		return nil, err
	}
	if err := geo.CheckRange(g); err != nil {
		return nil, p.fail(pos, "%s %s", strings.ToUpper(typ), err.Error())
	}
	return g, nil
}

func (p *textParser) parens(inner func() error) error {
	if err := p.expect("("); err != nil {
		return err
	}
	if err := inner(); err != nil {
		return err
	}
	return p.expect(")")
}

// list reads ( item, item, … ).
func (p *textParser) list(item func() error) error {
	return p.parens(func() error {
		for {
			if err := item(); err != nil {
				return err
			}
			if !p.is(",") {
				return nil
			}
			if err := p.advance(); err != nil {
				return err
			}
		}
	})
}

func (p *textParser) position() (orb.Point, error) {
	x, err := p.number("a longitude")
	if err != nil {
		return orb.Point{}, err
	}
	y, err := p.number("a latitude")
	if err != nil {
		return orb.Point{}, err
	}
	for range 2 {
		if p.tok.kind == tNumber {
			if err := p.advance(); err != nil {
				return orb.Point{}, err
			}
		}
	}
	return orb.Point{x, y}, nil
}

func (p *textParser) lineString() (orb.LineString, error) {
	pos := p.tok.pos
	var ls orb.LineString
	err := p.list(func() error {
		pt, err := p.position()
		ls = append(ls, pt)
		return err
	})
	if err == nil && len(ls) < 2 {
		return nil, p.fail(pos, "a line string needs at least 2 positions")
	}
	return ls, err
}

func (p *textParser) polygon() (orb.Polygon, error) {
	var pg orb.Polygon
	err := p.list(func() error {
		pos := p.tok.pos
		ls, err := p.lineString()
		if err != nil {
			return err
		}
		if msg := ringProblem(ls); msg != "" {
			return p.fail(pos, "%s", msg)
		}
		pg = append(pg, orb.Ring(ls))
		return nil
	})
	return pg, err
}

// ringProblem says why a ring cannot be a polygon ring: PostGIS refuses
// such a geometry only when the query runs, as an internal error.
func ringProblem(r []orb.Point) string {
	if len(r) < 4 {
		return "a polygon ring needs at least 4 positions"
	}
	if r[0] != r[len(r)-1] {
		return "a polygon ring must end at its first position"
	}
	return ""
}
