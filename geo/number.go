package geo

import (
	"math"
	"strconv"
	"strings"
)

// ParseNumber reads a decimal number as a person or a spreadsheet writes
// it (CSV cells, query parameters): digits, a sign, a point and an
// exponent, with surrounding spaces. strconv.ParseFloat alone also takes
// hex floats ("0x1p4"), digit separators ("1_0"), "Inf" and "NaN", none of
// which is a coordinate anyone meant.
func ParseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, "xXpP_iInN") {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}
