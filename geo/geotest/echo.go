// Package geotest holds checks that the tests of several packages share.
// Only tests import it.
package geotest

import (
	"strconv"
	"strings"
	"testing"
)

// MaxEcho is how much of its input an error may repeat: enough to show
// where it breaks (geo.Excerpt quotes 80 bytes and says how long the rest
// was), never a client's whole document back to it.
const MaxEcho = 100

// CheckNoEcho fails when msg repeats more than about MaxEcho bytes of any
// input, as is or %q-quoted (which may take 4 characters a byte), or is
// long whatever its input.
func CheckNoEcho(t testing.TB, msg string, inputs ...string) {
	t.Helper()
	if len(msg) > 1024 {
		t.Fatalf("error of %d bytes: %.200s…", len(msg), msg)
	}
	for _, in := range inputs {
		q := strconv.Quote(in)
		for _, c := range []struct {
			s string
			n int
		}{{in, MaxEcho}, {q[1 : len(q)-1], 4 * MaxEcho}} {
			for i := 0; i+c.n < len(c.s); i += c.n / 2 {
				if strings.Contains(msg, c.s[i:i+c.n+1]) {
					t.Fatalf("error repeats more than %d bytes of its input: %.200s…", MaxEcho, msg)
				}
			}
		}
	}
}
