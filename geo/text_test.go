package geo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSONText(t *testing.T) {
	for _, c := range []struct {
		doc, path string
		enc       bool
	}{
		{`{"name":"ok","attrs":{"a":[1,"x"]}}`, "", false},
		{`{"name":"\ud83d\ude00 pair","s":"\\u0000 is text","f":"\ufffd"}`, "", false},
		{`{"name":"a\u0000b"}`, "name", false},
		{`{"attrs":{"owner":"\ud800"}}`, "attrs.owner", false},
		{`{"attrs":{"owner":"x\udc00y"}}`, "attrs.owner", false},
		{`{"attrs":{"owner":"\ud800\u0041"}}`, "attrs.owner", false},
		{`{"attrs":{"k\u0000":1}}`, `attrs.k\u0000`, false},
		{`{"features":[{},{"properties":{"name":"\ud800"}}]}`, "features[1].properties.name", false},
		{`[1,[2,"\u0000"]]`, "[1][1]", false},
		{"{\"name\":\"bad \xff\"}", "name", true},
		{"{\"a\":[{\"b\":1},{\"c\":[\"x\",\"\xc3\"]}]}", "a[1].c[1]", true},
		{"{\"na\xffme\":1}", "na\uFFFDme", true},
		{"{\"a\":1}\xff", "", true},
		{`{"a":"\u00`, "", false},
	} {
		te := CheckJSONText([]byte(c.doc))
		if c.path == "" && !c.enc {
			if te != nil {
				t.Errorf("%s: %v", c.doc, te)
			}
			continue
		}
		if te == nil {
			t.Errorf("%s: accepted", c.doc)
			continue
		}
		if te.Path != c.path || te.Encoding != c.enc {
			t.Errorf("%s: path %q encoding %v, want %q %v (%v)", c.doc, te.Path, te.Encoding, c.path, c.enc, te)
		}
	}
}

func TestStreamsRefuseBadText(t *testing.T) {
	for _, c := range []struct {
		f    Format
		doc  string
		want string
	}{
		{FormatNDJSON, `{"type":"Feature","properties":{"name":"\u0000"},"geometry":{"type":"Point","coordinates":[114,22]}}`, "properties.name"},
		{FormatNDJSON, "{\"type\":\"Feature\",\"properties\":{\"attrs\":{\"o\":\"\xff\"}},\"geometry\":{\"type\":\"Point\",\"coordinates\":[114,22]}}", "properties.attrs.o"},
		{FormatGeoJSON, `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"\udfff"},"geometry":{"type":"Point","coordinates":[114,22]}}]}`, "properties.code"},
		{FormatCSV, "lon,lat,name\n114,22,a\x00b\n", "column 3 (name)"},
		{FormatCSV, "lon,lat,name\n114,22,\xff\n", "column 3 (name) is not valid UTF-8"},
		{FormatCSV, "lon,lat,attrs\n114,22,\"{\"\"o\"\":\"\"\\ud800\"\"}\"\n", "attrs.o"},
	} {
		s, err := NewStream(strings.NewReader(c.doc), c.f)
		if err != nil {
			t.Fatalf("%q: %v", c.doc, err)
		}
		rec, err := s.Next()
		if err != nil || rec.Err == nil || !strings.Contains(rec.Err.Error(), c.want) || rec.Geometry != nil {
			t.Errorf("%s %q: %+v %v, want an error naming %s", c.f, c.doc, rec, err, c.want)
		}
	}
	if _, err := NewStream(strings.NewReader("lon,lat,na\xffme\n"), FormatCSV); err == nil || !strings.Contains(err.Error(), "column 3") {
		t.Errorf("a header that is not UTF-8: %v", err)
	}
	fs, err := DecodeFeatureCollection(strings.NewReader(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"a\u0000"},"geometry":{"type":"Point","coordinates":[114,22]}}]}`))
	if err != nil || fs[0].Err == nil || !strings.HasPrefix(fs[0].Err.Error(), "features[0].properties.name:") {
		t.Errorf("units: %v %v", fs, err)
	}
}

// FuzzCheckJSONText: no panic, and no valid JSON document is accepted
// that encoding/json reads with a U+0000 or with a U+FFFD the sender did
// not write (a replaced byte or surrogate).
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{
		`{"a":"b"}`, `{"a":"\u0000"}`, `{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, `["\\u0000"]`,
		"{\"a\":\"\xff\"}", `{"a":{"b":[1,"\udc00"]}}`, `"\ud800\ud800"`, `{"\u0000":1}`, `{"a":"\ufffd"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		te := CheckJSONText(raw)
		if !json.Valid(raw) {
			return
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return
		}
		// Count U+FFFD sent as such (literally or as \ufffd): any beyond
		// them came from a replacement.
		sent := strings.Count(string(raw), "\uFFFD") + bytes.Count(bytes.ToLower(raw), []byte(`\ufffd`))
		bad, got := false, 0
		var walk func(any)
		see := func(s string) {
			bad = bad || strings.IndexByte(s, 0) >= 0
			got += strings.Count(s, string(utf8.RuneError))
		}
		walk = func(v any) {
			switch v := v.(type) {
			case string:
				see(v)
			case []any:
				for _, e := range v {
					walk(e)
				}
			case map[string]any:
				for k, e := range v {
					see(k)
					walk(e)
				}
			}
		}
		walk(v)
		bad = bad || got > sent
		if bad && te == nil {
			t.Fatalf("%q accepted, decodes to %#v", raw, v)
		}
	})
}

// benchStream reads a document of n records in format f.
func benchStream(b *testing.B, f Format, doc []byte, n int) {
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		s, err := NewStream(bytes.NewReader(doc), f)
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for {
			rec, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil || rec.Err != nil {
				b.Fatal(err, rec.Err)
			}
			got++
		}
		if got != n {
			b.Fatalf("%d records, want %d", got, n)
		}
	}
}

const benchRecords = 20000

func BenchmarkStreamNDJSON(b *testing.B) {
	var buf bytes.Buffer
	for i := range benchRecords {
		fmt.Fprintf(&buf, `{"type":"Feature","properties":{"code":"OBJ%06d","class":"0118","name":"井盖 %d 号","attrs":{"owner":"水务局","note":"\u8def\u706f"}},"geometry":{"type":"Point","coordinates":[114.%04d,22.%04d]}}`+"\n", i, i, i%10000, i%10000)
	}
	benchStream(b, FormatNDJSON, buf.Bytes(), benchRecords)
}

func BenchmarkStreamCSV(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("code,class,name,lon,lat,attrs\n")
	for i := range benchRecords {
		fmt.Fprintf(&buf, "OBJ%06d,0118,井盖 %d 号,114.%04d,22.%04d,\"{\"\"owner\"\":\"\"水务局\"\"}\"\n", i, i, i%10000, i%10000)
	}
	benchStream(b, FormatCSV, buf.Bytes(), benchRecords)
}

// BenchmarkCheckJSONText: the check alone on an NDJSON-sized feature with
// Chinese text, raw and escaped (the fast path), and with a surrogate pair
// (the token walk, which only suspect documents pay).
func BenchmarkCheckJSONText(b *testing.B) {
	for name, doc := range map[string]string{
		"raw":     `{"type":"Feature","properties":{"code":"OBJ000001","class":"0118","name":"井盖 1 号","attrs":{"owner":"水务局"}},"geometry":{"type":"Point","coordinates":[114.05,22.55]}}`,
		"escaped": `{"type":"Feature","properties":{"code":"OBJ000001","class":"0118","name":"\u4e95\u76d6 1 \u53f7","attrs":{"owner":"\u6c34\u52a1\u5c40"}},"geometry":{"type":"Point","coordinates":[114.05,22.55]}}`,
		"walked":  `{"type":"Feature","properties":{"code":"OBJ000001","class":"0118","name":"井盖 \ud83d\ude00","attrs":{"owner":"\\u0000"}},"geometry":{"type":"Point","coordinates":[114.05,22.55]}}`,
	} {
		raw := []byte(doc)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if te := CheckJSONText(raw); te != nil {
					b.Fatal(te)
				}
			}
		})
	}
}
