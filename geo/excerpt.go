package geo

import (
	"fmt"
	"unicode/utf8"
)

// MaxExcerpt is how much of a client's input an error message quotes: enough
// to recognise it, never the input itself (a 50 MB CSV header or number
// would otherwise come back whole in a 400).
const MaxExcerpt = 80

// Excerpt is s cut to at most n bytes (on a rune boundary) with a marker
// saying how long it was, for quoting input in errors.
func Excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:cut], len(s))
}
