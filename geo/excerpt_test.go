package geo

import (
	"strings"
	"testing"
)

func TestExcerpt(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", 10), strings.Repeat("a", 10)},
		{strings.Repeat("a", 11), strings.Repeat("a", 10) + "…(11 bytes)"},
		// Cut on a rune boundary: 网 is 3 bytes, 3 of them 9, the 4th would end at 12.
		{strings.Repeat("网", 4), strings.Repeat("网", 3) + "…(12 bytes)"},
	} {
		if got := Excerpt(c.in, 10); got != c.want {
			t.Errorf("Excerpt(%q, 10) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Errors about a stream's input quote an excerpt of it, not all of it.
func TestStreamErrorsQuoteExcerpts(t *testing.T) {
	huge := strings.Repeat("x", 2<<20)
	for _, c := range []struct {
		name, body string
		f          Format
		want       string
	}{
		{"CSV header without lon and lat", "code,class," + huge[:500<<10] + "\n1,2,3\n", FormatCSV, "needs lon and lat"},
		{"CSV header without a line end", "code,class," + huge, FormatCSV, "no line end"},
		{"CSV longitude not a number", "code,class,lon,lat\n1,0101," + huge + ",22\n", FormatCSV, "is not a number"},
		{"GeoJSON type", `{"type":"` + huge + `","features":[]}`, FormatGeoJSON, "want \"FeatureCollection\""},
		{"NDJSON geometry type", `{"type":"Feature","properties":{},"geometry":{"type":"` + huge + `","coordinates":[1,2]}}` + "\n", FormatNDJSON, "not a GeoJSON geometry type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var msg string
			s, err := NewStream(strings.NewReader(c.body), c.f)
			if err == nil {
				rec, rerr := s.Next()
				switch {
				case rerr != nil:
					msg = rerr.Error()
				case rec.Err != nil:
					msg = rec.Err.Error()
				}
			} else {
				msg = err.Error()
			}
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, "…(") || len(msg) > 400 {
				t.Errorf("error of %d bytes %.300q: want an excerpt and %q", len(msg), msg, c.want)
			}
		})
	}
}
