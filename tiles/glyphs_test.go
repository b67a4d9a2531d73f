package tiles

import (
	"math"
	"testing"

	"golang.org/x/image/math/fixed"
)

func TestEDTMatchesBruteForce(t *testing.T) {
	t.Parallel()
	const W, H = 13, 9
	grid := make([]float64, W*H)
	seeds := [][2]int{{2, 3}, {10, 1}, {6, 7}}
	for i := range grid {
		grid[i] = sdfInf
	}
	for _, s := range seeds {
		grid[s[1]*W+s[0]] = 0
	}
	edt(grid, W, H)
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			best := math.Inf(1)
			for _, s := range seeds {
				best = math.Min(best, float64((x-s[0])*(x-s[0])+(y-s[1])*(y-s[1])))
			}
			if grid[y*W+x] != best {
				t.Fatalf("(%d,%d): %v, want %v", x, y, grid[y*W+x], best)
			}
		}
	}
}

func TestGlyphRange(t *testing.T) {
	t.Parallel()
	g, err := NewGlyphs()
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.Range(GlyphFont, 0)
	if err != nil || len(b) < 10000 {
		t.Fatalf("range 0–255: %d bytes, %v", len(b), err)
	}
	// The SDF of "8" is bright (inside) at its stroke and dark far outside.
	dr, mask, maskp, _, ok := g.face.Glyph(fixed.Point26_6{}, '8')
	if !ok {
		t.Fatal("no glyph for 8")
	}
	f := sdf(mask, maskp, dr.Dx(), dr.Dy())
	W := dr.Dx() + 2*glyphBorder
	if f[0] > 100 || f[len(f)-1] > 100 {
		t.Errorf("corners of the bitmap should be outside (dark): %d %d", f[0], f[len(f)-1])
	}
	brightest := byte(0)
	for _, v := range f {
		brightest = max(brightest, v)
	}
	if brightest < 192 {
		t.Errorf("no pixel inside the glyph (max %d); width %d", brightest, W)
	}
	if _, err := g.Range(GlyphFont, 100); err == nil {
		t.Errorf("range 100 accepted")
	}
	// A CJK range has no glyphs in this font: a valid, glyph-less answer.
	if b, err := g.Range(GlyphFont, 19968); err != nil || len(b) == 0 || len(b) > 64 {
		t.Errorf("CJK range: %d bytes, %v", len(b), err)
	}
}

func TestParseZooms(t *testing.T) {
	t.Parallel()
	z, err := ParseZooms("street=8-12, grid=14-22")
	if err != nil || z.Street != [2]int{8, 12} || z.Grid != [2]int{14, 22} || z.District != DefaultZooms.District {
		t.Errorf("ParseZooms: %+v, %v", z, err)
	}
	if z, err := ParseZooms(""); err != nil || z != DefaultZooms {
		t.Errorf("empty: %+v, %v", z, err)
	}
	for _, bad := range []string{"street", "street=9", "street=a-b", "town=1-2", "grid=13-23", "street=12-9"} {
		if _, err := ParseZooms(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c, _ := NewCatalogue(z)
	units, _ := c.Tileset("units")
	if got := len(units.Visible(13)); got != 1 { // only the community level at z13 with grid from z14
		t.Errorf("%d source layers visible at z13, want 1", got)
	}
}
