package grid

import (
	"fmt"
	"regexp"
	"strconv"

	"gridmap/geo"
)

// CodeError says which coding rule a unit code breaks and at which digits
// (1-based, inclusive), so an editor can point at them.
type CodeError struct {
	Code   string `json:"code"`
	Rule   string `json:"rule"`
	Digits string `json:"digits,omitempty"`
	Msg    string `json:"message"`
}

func (e *CodeError) Error() string {
	if e.Digits != "" {
		return fmt.Sprintf("code %q: %s (digits %s): %s", geo.Excerpt(e.Code, geo.MaxExcerpt), e.Rule, e.Digits, e.Msg)
	}
	return fmt.Sprintf("code %q: %s: %s", geo.Excerpt(e.Code, geo.MaxExcerpt), e.Rule, e.Msg)
}

// Code rules, as named in errors.
const (
	RuleCodeDigits = "code_digits" // only ASCII digits
	RuleCodeLength = "code_length" // length fits the level
	RuleCodeRange  = "code_range"  // a segment is outside its allowed range
	RuleCodePrefix = "code_prefix" // the prefix is not the parent's code
)

var digitsOnly = regexp.MustCompile(`^[0-9]+$`)

// NormalizeCode returns the canonical code for a level. A 14-digit grid code
// (CJ/T 213-2005: community + 2-digit sequence) is widened to the 15-digit
// form of GB/T 30428.1 by padding the sequence to three digits.
func NormalizeCode(level Level, code string) string {
	if level == Grid && len(code) == 14 && digitsOnly.MatchString(code) {
		return code[:12] + "0" + code[12:]
	}
	return code
}

// ParentCode is the code of the unit's parent, read from its prefix
// ("" for a district).
func ParentCode(level Level, code string) string {
	p := level.Parent()
	if p == "" || len(code) < p.CodeLen() {
		return ""
	}
	return code[:p.CodeLen()]
}

// ValidateCode checks a canonical code against its level (DESIGN §1) and,
// when parent is not empty, that its prefix is the parent's code.
//
//	district  6 digits: GB/T 2260 county-level code; digits 5–6 are 01–99
//	street    9 digits: + township 001–599 (001–099 街道, 100–199 镇, 200–399 乡, 400–599 special areas)
//	community 12 digits: + 001–599 (001–199 居委会, 200–399 村委会, 400–599 others; 498 virtual)
//	grid      15 digits: + sequence 001–999
func ValidateCode(level Level, code, parent string) error {
	want := level.CodeLen()
	if want == 0 {
		return &CodeError{Code: code, Rule: RuleCodeLength, Msg: fmt.Sprintf("unknown level %q", geo.Excerpt(string(level), geo.MaxExcerpt))}
	}
	if !digitsOnly.MatchString(code) {
		for i, r := range code {
			if r < '0' || r > '9' {
				return &CodeError{Code: code, Rule: RuleCodeDigits, Digits: strconv.Itoa(i + 1), Msg: fmt.Sprintf("%q is not a digit; codes are decimal digits only", r)}
			}
		}
		return &CodeError{Code: code, Rule: RuleCodeDigits, Msg: "code is empty"}
	}
	if len(code) != want {
		return &CodeError{Code: code, Rule: RuleCodeLength, Msg: fmt.Sprintf("a %s code has %d digits, this one has %d", level, want, len(code))}
	}
	seg := func(from, to int) int { n, _ := strconv.Atoi(code[from-1 : to]); return n }
	check := func(from, to, lo, hi int, what string) error {
		if n := seg(from, to); n < lo || n > hi {
			return &CodeError{Code: code, Rule: RuleCodeRange, Digits: fmt.Sprintf("%d-%d", from, to),
				Msg: fmt.Sprintf("%s %s is outside %0*d–%0*d", what, code[from-1:to], to-from+1, lo, to-from+1, hi)}
		}
		return nil
	}
	// Every segment up to this level, so a street code also carries a
	// well-formed district code.
	segments := []struct {
		from, to, lo, hi int
		what             string
	}{
		{1, 2, 11, 82, "province code"},
		{5, 6, 1, 99, "county-level sequence"},
		{7, 9, 1, 599, "township code"},
		{10, 12, 1, 599, "community code"},
		{13, 15, 1, 999, "grid sequence"},
	}
	for _, sg := range segments {
		if sg.to > want {
			break
		}
		if err := check(sg.from, sg.to, sg.lo, sg.hi, sg.what); err != nil {
			return err
		}
	}
	if parent != "" {
		pl := level.Parent()
		if pl == "" {
			return &CodeError{Code: code, Rule: RuleCodePrefix, Msg: "a district has no parent unit"}
		}
		if len(parent) != pl.CodeLen() || code[:pl.CodeLen()] != parent {
			return &CodeError{Code: code, Rule: RuleCodePrefix, Digits: fmt.Sprintf("1-%d", pl.CodeLen()),
				Msg: fmt.Sprintf("prefix %s must equal the parent %s code %q", code[:pl.CodeLen()], pl, geo.Excerpt(parent, geo.MaxExcerpt))}
		}
	}
	return nil
}

// SeqBlock is the range of sequence numbers (the last three digits) that
// holds seq at level, so that a unit given a new code keeps its kind:
// streets 001–099 街道, 100–199 镇, 200–399 乡, 400–599 special areas;
// communities 001–199 居委会, 200–399 村委会, 400–599 others; grids
// 001–999. A district (or a seq outside every block) gives 0, 0.
func SeqBlock(level Level, seq int) (lo, hi int) {
	var blocks [][2]int
	switch level {
	case Street:
		blocks = [][2]int{{1, 99}, {100, 199}, {200, 399}, {400, 599}}
	case Community:
		blocks = [][2]int{{1, 199}, {200, 399}, {400, 599}}
	case Grid:
		blocks = [][2]int{{1, 999}}
	}
	for _, b := range blocks {
		if seq >= b[0] && seq <= b[1] {
			return b[0], b[1]
		}
	}
	return 0, 0
}
