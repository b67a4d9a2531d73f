package fixedgz

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// Text made of few words: long matches, every distance range.
	words := func(n int) []byte {
		var b []byte
		for len(b) < n {
			b = append(b, []string{"网格", "grid ", "440306", "\x00\x01", "community-"}[rng.IntN(5)]...)
			if rng.IntN(50) == 0 {
				b = append(b, random(rng.IntN(300))...)
			}
		}
		return b[:n]
	}
	cases := map[string][]byte{
		"empty":         {},
		"one byte":      {0xff},
		"three bytes":   []byte("abc"),
		"four equal":    []byte("aaaa"),
		"run":           bytes.Repeat([]byte{7}, 100_000),
		"run of 259":    bytes.Repeat([]byte("x"), 259),
		"period 3":      bytes.Repeat([]byte("abc"), 30_000),
		"random":        random(70_000),
		"random 65535":  random(65535),
		"random 131070": random(131070),
		"words":         words(200_000),
		"far repeat":    append(append(random(32760), random(20)...), random(32760)[:0]...),
	}
	far := random(40_000)
	cases["distance 32768"] = append(append([]byte{}, far[:32768]...), far[:1000]...)
	cases["distance 32769"] = append(append([]byte{}, far[:32769]...), far[:1000]...)
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			gz := Append([]byte("prefix"), in)
			if !bytes.HasPrefix(gz, []byte("prefix")) {
				t.Fatal("dst's bytes were not kept")
			}
			out := gunzip(t, gz[len("prefix"):])
			if !bytes.Equal(out, in) {
				t.Fatalf("round trip of %d bytes gave %d different bytes", len(in), len(out))
			}
			if limit := len(in) + 5*max(1, (len(in)+65534)/65535) + 18; len(gz)-len("prefix") > limit {
				t.Fatalf("%d bytes became %d, more than stored blocks (%d)", len(in), len(gz)-len("prefix"), limit)
			}
		})
	}
	// The same encoder, many inputs in turn: stale table entries of earlier
	// inputs must never be taken for matches.
	for i := range 2000 {
		in := words(rng.IntN(5000))
		if i%3 == 0 {
			in = random(rng.IntN(3000))
		}
		if out := gunzip(t, Append(nil, in)); !bytes.Equal(out, in) {
			t.Fatalf("input %d of %d bytes did not round-trip", i, len(in))
		}
	}
}

// TestCompresses checks that repetitive data shrinks as LZ77 with fixed
// codes should: a long run is a few bytes.
func TestCompresses(t *testing.T) {
	for _, c := range []struct {
		in  []byte
		max int
	}{
		{bytes.Repeat([]byte{0}, 1<<20), 6700}, // 258 bytes a 13-bit match: 8-bit length symbol, 5-bit distance
		{bytes.Repeat([]byte("grid 440306001001 "), 1000), 400},
	} {
		if n := len(Append(nil, c.in)); n > c.max {
			t.Errorf("%d repetitive bytes compressed to %d, want at most %d", len(c.in), n, c.max)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello hello hello"))
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5}, 100))
	f.Fuzz(func(t *testing.T, in []byte) {
		if out := gunzip(t, Append(nil, in)); !bytes.Equal(out, in) {
			t.Fatalf("round trip failed for %d bytes", len(in))
		}
	})
}

// BenchmarkTiles compresses MVT tiles from testdata if present (none are
// committed; tiles/gzip_bench_test.go compares on the demo city's).
func BenchmarkTiles(b *testing.B) {
	fs, _ := filepath.Glob(os.Getenv("FIXEDGZ_TILES"))
	if len(fs) == 0 {
		b.Skip("FIXEDGZ_TILES: a glob of MVT files")
	}
	var in [][]byte
	for _, f := range fs {
		d, _ := os.ReadFile(f)
		in = append(in, d)
	}
	var buf []byte
	n, raw := 0, 0
	for i := 0; b.Loop(); i++ {
		t := in[i%len(in)]
		buf = Append(buf[:0], t)
		n += len(buf)
		raw += len(t)
	}
	b.ReportMetric(float64(n)/float64(raw), "ratio")
}
