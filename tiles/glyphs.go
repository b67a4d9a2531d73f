package tiles

import (
	"fmt"
	"image"
	"math"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Glyphs serves the signed-distance-field glyph ranges MapLibre asks for
// (glyphs: "/fonts/{fontstack}/{range}.pbf"), drawn from the Go Regular font
// that ships with golang.org/x/image, so labels need no font server and no
// network. Chinese names are drawn by the browser from its own fonts
// (MapLibre's localIdeographFontFamily); these ranges cover the digits and
// Latin letters in names and counts.
type Glyphs struct {
	mu     sync.Mutex
	face   font.Face
	ascent int
	ranges map[int][]byte
}

// GlyphFont is the fontstack name the wall style asks for.
const GlyphFont = "Go Regular"

const (
	glyphSize   = 24 // px, the size MapLibre's glyph ranges are drawn at
	glyphBorder = 3  // px of SDF border around each glyph bitmap
	sdfRadius   = 8
	sdfCutoff   = 0.25
)

// NewGlyphs loads the font.
func NewGlyphs() (*Glyphs, error) {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, err
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: glyphSize, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, err
	}
	return &Glyphs{face: face, ascent: face.Metrics().Ascent.Round(), ranges: map[int][]byte{}}, nil
}

// Range returns the PBF of the 256 code points from start (a multiple of
// 256); code points the font lacks are left out, as MapLibre expects.
func (g *Glyphs) Range(fontstack string, start int) ([]byte, error) {
	if start < 0 || start%256 != 0 || start > 65280 {
		return nil, fmt.Errorf("glyph range %d: want a multiple of 256 in 0–65280", start)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.ranges[start]; ok {
		return b, nil
	}
	var glyphs [][]byte
	for r := rune(start); r < rune(start+256); r++ {
		if gl, ok := g.glyph(r); ok {
			glyphs = append(glyphs, gl)
		}
	}
	var stack []byte
	stack = pbString(stack, 1, fontstack)
	stack = pbString(stack, 2, fmt.Sprintf("%d-%d", start, start+255))
	for _, gl := range glyphs {
		stack = pbBytes(stack, 3, gl)
	}
	out := pbBytes(nil, 1, stack)
	g.ranges[start] = out
	return out, nil
}

// glyph encodes one glyph message: id, SDF bitmap, width, height, left,
// top, advance.
func (g *Glyphs) glyph(r rune) ([]byte, bool) {
	dr, mask, maskp, adv, ok := g.face.Glyph(fixed.Point26_6{}, r)
	if !ok {
		return nil, false
	}
	w, h := dr.Dx(), dr.Dy()
	var b []byte
	b = pbVarint(b, 1, uint64(r))
	if w > 0 && h > 0 {
		b = pbBytes(b, 2, sdf(mask, maskp, w, h))
	}
	b = pbVarint(b, 3, uint64(w))
	b = pbVarint(b, 4, uint64(h))
	b = pbVarint(b, 5, zigzag(int64(dr.Min.X)))
	// top: the glyph's top above the baseline, less the font's ascent (the
	// convention of the glyph sets MapLibre is built for).
	b = pbVarint(b, 6, zigzag(int64(-dr.Min.Y-g.ascent)))
	b = pbVarint(b, 7, uint64(adv.Round()))
	return b, true
}

// sdf turns a glyph's coverage mask into a signed distance field with a
// border: 255 − 255·(d/radius + cutoff), d the distance to the edge in
// pixels (negative inside), as MapLibre's own TinySDF does.
func sdf(mask image.Image, maskp image.Point, w, h int) []byte {
	W, H := w+2*glyphBorder, h+2*glyphBorder
	outer := make([]float64, W*H) // squared distance to the nearest inside pixel
	inner := make([]float64, W*H) // squared distance to the nearest outside pixel
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			a := 0.0
			if gx, gy := x-glyphBorder, y-glyphBorder; gx >= 0 && gy >= 0 && gx < w && gy < h {
				_, _, _, al := mask.At(maskp.X+gx, maskp.Y+gy).RGBA()
				a = float64(al) / 0xffff
			}
			i := y*W + x
			switch {
			case a >= 1:
				outer[i], inner[i] = 0, sdfInf
			case a <= 0:
				outer[i], inner[i] = sdfInf, 0
			default: // anti-aliased edge: sub-pixel offset, as TinySDF
				d := 0.5 - a
				if d > 0 {
					outer[i], inner[i] = d*d, 0
				} else {
					outer[i], inner[i] = 0, d*d
				}
			}
		}
	}
	edt(outer, W, H)
	edt(inner, W, H)
	out := make([]byte, W*H)
	for i := range out {
		d := math.Sqrt(outer[i]) - math.Sqrt(inner[i])
		v := math.Round(255 - 255*(d/sdfRadius+sdfCutoff))
		out[i] = byte(math.Max(0, math.Min(255, v)))
	}
	return out
}

// edt is Felzenszwalb and Huttenlocher's exact squared Euclidean distance
// transform, in place, columns then rows.
func edt(grid []float64, W, H int) {
	n := max(W, H)
	f, d := make([]float64, n), make([]float64, n)
	v, z := make([]int, n), make([]float64, n+1)
	for x := 0; x < W; x++ {
		for y := 0; y < H; y++ {
			f[y] = grid[y*W+x]
		}
		edt1d(f[:H], d[:H], v, z)
		for y := 0; y < H; y++ {
			grid[y*W+x] = d[y]
		}
	}
	for y := 0; y < H; y++ {
		copy(f[:W], grid[y*W:(y+1)*W])
		edt1d(f[:W], d[:W], v, z)
		copy(grid[y*W:(y+1)*W], d[:W])
	}
}

func edt1d(f, d []float64, v []int, z []float64) {
	n := len(f)
	k := 0
	v[0], z[0], z[1] = 0, -sdfInf, sdfInf
	for q := 1; q < n; q++ {
		s := ((f[q] + float64(q*q)) - (f[v[k]] + float64(v[k]*v[k]))) / float64(2*q-2*v[k])
		for s <= z[k] {
			k--
			s = ((f[q] + float64(q*q)) - (f[v[k]] + float64(v[k]*v[k]))) / float64(2*q-2*v[k])
		}
		k++
		v[k], z[k], z[k+1] = q, s, sdfInf
	}
	k = 0
	for q := 0; q < n; q++ {
		for z[k+1] < float64(q) {
			k++
		}
		d[q] = float64((q-v[k])*(q-v[k])) + f[v[k]]
	}
}

// sdfInf stands for "no such pixel": large but finite, so the parabola
// arithmetic stays finite (as in TinySDF).
const sdfInf = 1e20

// Protocol-buffer wire format, for the three messages of glyphs.proto.
func pbKey(b []byte, field, wire int) []byte { return appendUvarint(b, uint64(field<<3|wire)) }
func pbVarint(b []byte, field int, v uint64) []byte {
	return appendUvarint(pbKey(b, field, 0), v)
}
func pbBytes(b []byte, field int, v []byte) []byte {
	b = appendUvarint(pbKey(b, field, 2), uint64(len(v)))
	return append(b, v...)
}
func pbString(b []byte, field int, s string) []byte { return pbBytes(b, field, []byte(s)) }
func zigzag(v int64) uint64                         { return uint64((v << 1) ^ (v >> 63)) }
func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
