package geo

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/paulmach/orb"
)

// Record is one feature read from a stream. Pos is where it came from: the
// 1-based line of a newline-delimited or CSV file, or the 0-based index of
// a feature in a FeatureCollection. Err is a problem with this record only;
// the stream goes on after it.
type Record struct {
	Pos        int64
	Properties map[string]any
	Geometry   orb.Geometry
	Err        error
}

// PosKind names what Record.Pos counts, for messages.
type PosKind string

const (
	PosLine    PosKind = "line"
	PosFeature PosKind = "feature"
)

// Stream reads records one at a time without holding the input. Next
// returns io.EOF at the end; any other error ends the stream (a truncated
// or malformed document).
type Stream interface {
	Next() (Record, error)
	PosKind() PosKind
}

// Format of an object file.
type Format string

const (
	FormatGeoJSON Format = "geojson" // a FeatureCollection
	FormatNDJSON  Format = "ndjson"  // one Feature per line (also RFC 8142 GeoJSON text sequences)
	FormatCSV     Format = "csv"     // a header row with lon and lat columns
)

// ParseFormat accepts a format name or a file extension.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimPrefix(s, ".")) {
	case "geojson", "json":
		return FormatGeoJSON, nil
	case "ndjson", "geojsonl", "geojsons", "jsonl", "geojsonseq":
		return FormatNDJSON, nil
	case "csv":
		return FormatCSV, nil
	}
	return "", fmt.Errorf("format %q: use geojson (FeatureCollection), ndjson (one Feature per line) or csv", Excerpt(s, MaxExcerpt))
}

// NewStream reads r in the given format. An error means the document's
// start is unusable (not a FeatureCollection, a CSV without lon and lat).
func NewStream(r io.Reader, f Format) (Stream, error) {
	switch f {
	case FormatGeoJSON:
		return newFCStream(r)
	case FormatNDJSON:
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 16<<20)
		return &ndjsonStream{sc: s}, nil
	case FormatCSV:
		return newCSVStream(r)
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

// fcStream walks a FeatureCollection with a token decoder, one feature at a
// time.
type fcStream struct {
	dec   *json.Decoder
	n     int64
	inArr bool
	done  bool
}

func newFCStream(r io.Reader) (*fcStream, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("GeoJSON: %w", streamErr(err))
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("GeoJSON: the document must be a FeatureCollection object")
	}
	s := &fcStream{dec: dec}
	return s, s.seekFeatures()
}

// seekFeatures reads members until "features" opens its array.
func (s *fcStream) seekFeatures() error {
	for s.dec.More() {
		t, err := s.dec.Token()
		if err != nil {
			return fmt.Errorf("GeoJSON: %w", streamErr(err))
		}
		key, _ := t.(string)
		if key == "features" {
			t, err := s.dec.Token()
			if err != nil {
				return fmt.Errorf("GeoJSON: %w", streamErr(err))
			}
			if d, ok := t.(json.Delim); !ok || d != '[' {
				return fmt.Errorf("GeoJSON: \"features\" must be an array")
			}
			s.inArr = true
			return nil
		}
		var skip json.RawMessage
		if err := s.dec.Decode(&skip); err != nil {
			return fmt.Errorf("GeoJSON: member %q: %w", Excerpt(key, MaxExcerpt), streamErr(err))
		}
		if key == "type" && string(bytes.TrimSpace(skip)) != `"FeatureCollection"` {
			return fmt.Errorf("GeoJSON: type is %s, want \"FeatureCollection\"", Excerpt(string(skip), MaxExcerpt))
		}
	}
	return fmt.Errorf("GeoJSON: no \"features\" array")
}

func (s *fcStream) PosKind() PosKind { return PosFeature }

func (s *fcStream) Next() (Record, error) {
	if s.done {
		return Record{}, io.EOF
	}
	if !s.dec.More() {
		if _, err := s.dec.Token(); err != nil { // ]
			return Record{}, fmt.Errorf("GeoJSON: after feature %d: %w", s.n-1, streamErr(err))
		}
		s.done = true
		return Record{}, io.EOF
	}
	var raw json.RawMessage
	if err := s.dec.Decode(&raw); err != nil {
		return Record{}, fmt.Errorf("GeoJSON: feature %d: %w", s.n, streamErr(err))
	}
	rec := recordFromFeature(s.n, raw)
	s.n++
	return rec, nil
}

func streamErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the file ends early (truncated)")
	}
	return err
}

func recordFromFeature(pos int64, raw []byte) Record {
	f := decodeFeature(0, "", raw)
	return Record{Pos: pos, Properties: f.Properties, Geometry: f.Geometry, Err: f.Err}
}

type ndjsonStream struct {
	sc   *bufio.Scanner
	line int64
}

func (s *ndjsonStream) PosKind() PosKind { return PosLine }

func (s *ndjsonStream) Next() (Record, error) {
	for s.sc.Scan() {
		s.line++
		b := bytes.TrimSpace(bytes.TrimPrefix(s.sc.Bytes(), []byte{0x1e})) // RFC 8142 record separator
		if len(b) == 0 {
			continue
		}
		if !json.Valid(b) {
			return Record{Pos: s.line, Err: fmt.Errorf("not a JSON Feature (malformed or cut short)")}, nil
		}
		rec := recordFromFeature(s.line, b)
		return rec, nil
	}
	if err := s.sc.Err(); err != nil {
		return Record{}, fmt.Errorf("line %d: %w", s.line+1, err)
	}
	return Record{}, io.EOF
}

// csvStream reads rows with lon and lat columns as Points; every other
// column is a property (a column named attrs may hold a JSON object).
type csvStream struct {
	r      *csv.Reader
	header []string
	lon    int
	lat    int
	attrs  int
	line   int64
}

// maxCSVHeader bounds the header line: a header is a few names, and one
// without a line end would be read whole into memory, several times over.
const maxCSVHeader = 1 << 20

func newCSVStream(r io.Reader) (*csvStream, error) {
	br := bufio.NewReaderSize(r, maxCSVHeader)
	if p, _ := br.Peek(maxCSVHeader); len(p) == maxCSVHeader && bytes.IndexByte(p, '\n') < 0 {
		return nil, fmt.Errorf("CSV header %q: no line end in the first %d bytes", Excerpt(string(p), MaxExcerpt), maxCSVHeader)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	h, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", streamErr(err))
	}
	s := &csvStream{r: cr, header: append([]string(nil), h...), lon: -1, lat: -1, attrs: -1, line: 1}
	for i, name := range s.header {
		if msg := CheckText(name); msg != "" {
			return nil, fmt.Errorf("CSV header: column %d's name %s", i+1, msg)
		}
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))) {
		case "lon", "lng", "longitude", "x":
			s.lon = i
		case "lat", "latitude", "y":
			s.lat = i
		case "attrs":
			s.attrs = i
		}
		s.header[i] = strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))
	}
	if s.lon < 0 || s.lat < 0 {
		return nil, fmt.Errorf("CSV header %q: needs lon and lat columns", Excerpt(strings.Join(s.header, ","), MaxExcerpt))
	}
	return s, nil
}

func (s *csvStream) PosKind() PosKind { return PosLine }

func (s *csvStream) columnName(i int) string {
	if i < len(s.header) {
		return s.header[i]
	}
	return "beyond the header"
}

func (s *csvStream) Next() (Record, error) {
	rec, err := s.r.Read()
	if err == io.EOF {
		return Record{}, io.EOF
	}
	s.line++
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		s.line = int64(pe.Line)
		return Record{Pos: s.line, Err: fmt.Errorf("CSV: %v", pe.Err)}, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("line %d: %w", s.line, err)
	}
	for i, v := range rec {
		if msg := CheckText(v); msg != "" {
			return Record{Pos: s.line, Err: fmt.Errorf("column %d (%s) %s", i+1, s.columnName(i), msg)}, nil
		}
	}
	out := Record{Pos: s.line, Properties: make(map[string]any, len(rec))}
	for i, v := range rec {
		if i < len(s.header) && i != s.lon && i != s.lat && s.header[i] != "attrs" {
			out.Properties[s.header[i]] = v
		}
	}
	if len(rec) != len(s.header) {
		out.Err = fmt.Errorf("%d fields, the header has %d (cut short?)", len(rec), len(s.header))
		return out, nil
	}
	lon, ok1 := ParseNumber(rec[s.lon])
	lat, ok2 := ParseNumber(rec[s.lat])
	switch {
	case !ok1:
		out.Err = fmt.Errorf("%s %q is not a number", Excerpt(s.header[s.lon], MaxExcerpt), Excerpt(rec[s.lon], MaxExcerpt))
	case !ok2:
		out.Err = fmt.Errorf("%s %q is not a number", Excerpt(s.header[s.lat], MaxExcerpt), Excerpt(rec[s.lat], MaxExcerpt))
	}
	if out.Err != nil {
		return out, nil
	}
	pt := orb.Point{lon, lat}
	if err := CheckRange(pt); err != nil {
		out.Err = err
		return out, nil
	}
	if i := s.attrs; i >= 0 && rec[i] != "" {
		// Kept as raw JSON: re-encoding a parsed map per row is the import's
		// most expensive step otherwise.
		v := strings.TrimSpace(rec[i])
		if !strings.HasPrefix(v, "{") || !json.Valid([]byte(v)) {
			out.Err = fmt.Errorf("attrs is not a JSON object")
			return out, nil
		}
		if te := CheckJSONText([]byte(v)); te != nil {
			out.Err = fmt.Errorf("column %d (attrs): %s: %s", i+1, joinPath("attrs", te.Path), te.Msg)
			return out, nil
		}
		out.Properties["attrs"] = json.RawMessage(v)
	}
	// Only now: a record with an error carries no geometry.
	out.Geometry = pt
	return out, nil
}
