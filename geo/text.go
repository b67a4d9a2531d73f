package geo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text that PostgreSQL cannot store (a NUL in text or jsonb) or that
// encoding/json would silently change (invalid UTF-8 and lone surrogate
// escapes both become U+FFFD) is refused where it enters, naming where it
// is, rather than failing deep in a query or being stored altered.

// TextError is a JSON document with a string that cannot be stored as sent.
type TextError struct {
	// Path is the member holding the string ("attrs.owner",
	// "features[3].properties.name"); empty for the document itself.
	Path string
	// Offset is the byte offset of the fault in the document.
	Offset int64
	// Encoding is set when the bytes are not UTF-8 (the document is not a
	// JSON text at all); otherwise an escape names a character that cannot
	// be stored.
	Encoding bool
	Msg      string
}

func (e *TextError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("byte %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("%s (byte %d): %s", e.Path, e.Offset, e.Msg)
}

// CheckText says what is wrong with a string that is to be stored as text:
// "" when nothing is.
func CheckText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL byte (U+0000), which cannot be stored"
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	return ""
}

// CheckJSONText finds the first string in a JSON document that is not
// valid UTF-8 or whose escapes name U+0000 or a lone surrogate. It returns
// nil when there is none, and also when the document is malformed JSON in
// valid UTF-8 (the decoder reports that). Documents without such text, the
// common case, cost one UTF-8 validation and a scan for `\u`.
func CheckJSONText(raw []byte) *TextError {
	if !suspectText(raw) {
		return nil
	}
	return walkText(raw)
}

// suspectText is the fast pass: true when raw is not UTF-8 or has a \u
// escape that may be U+0000 or an unpaired surrogate. It may say true for
// text that is fine (an escaped backslash before "u0000"); walkText decides.
func suspectText(raw []byte) bool {
	if !utf8.Valid(raw) {
		return true
	}
	for i := 0; ; {
		j := bytes.Index(raw[i:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += j + 2
		v, ok := hex4(raw[i:])
		if !ok {
			continue // malformed: the decoder refuses it
		}
		switch {
		case v == 0:
			return true
		case v >= 0xDC00 && v <= 0xDFFF:
			return true
		case v >= 0xD800 && v <= 0xDBFF:
			if !bytes.HasPrefix(raw[i+4:], []byte(`\u`)) {
				return true
			}
			if lo, ok := hex4(raw[i+6:]); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	return v, true
}

// frame is one open object or array of walkText.
type frame struct {
	array bool
	index int    // the next element's index
	key   string // the current member's name
	isKey bool   // the next string token is a member name
}

// walkText walks the document's tokens, keeping the member path, and
// checks each string's raw bytes.
func walkText(raw []byte) *TextError {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var stack []frame
	var prev int64
	for {
		tok, err := dec.Token()
		if err != nil {
			// Malformed JSON: report bytes that are not UTF-8 (without a
			// path); anything else is the decoder's to report.
			if i := invalidUTF8At(raw); i >= 0 {
				return &TextError{Offset: int64(i), Encoding: true, Msg: "the body is not valid UTF-8"}
			}
			return nil
		}
		off := dec.InputOffset()
		seg := raw[prev:off]
		prev = off
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, frame{array: t == '[', isKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				advance(stack)
			}
			continue
		case string:
			q := bytes.IndexByte(seg, '"')
			if msg, at, enc := checkLiteral(seg[q:]); msg != "" {
				path := textPath(stack)
				if top := len(stack) - 1; top >= 0 && stack[top].isKey {
					msg = "the member name " + msg
					path = joinPath(path, printable(t))
				}
				return &TextError{Path: path, Offset: off - int64(len(seg)-q) + int64(at), Encoding: enc, Msg: msg}
			}
			if top := len(stack) - 1; top >= 0 && stack[top].isKey {
				stack[top].key, stack[top].isKey = t, false
				continue
			}
		}
		advance(stack)
		if len(stack) == 0 && !dec.More() {
			return nil
		}
	}
}

// advance moves the innermost container past a value.
func advance(stack []frame) {
	if top := len(stack) - 1; top >= 0 {
		if stack[top].array {
			stack[top].index++
		} else {
			stack[top].isKey = true
		}
	}
}

func textPath(stack []frame) string {
	var b strings.Builder
	for _, f := range stack {
		if !f.array && f.isKey {
			continue // between members: the member name is the fault
		}
		if f.array {
			fmt.Fprintf(&b, "[%d]", f.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(printable(f.key))
	}
	return b.String()
}

// printable is a member name fit for a message.
func printable(key string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(key, "\uFFFD"), "\x00", `\u0000`)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkLiteral checks one JSON string literal (from its opening quote):
// a message, the byte offset in lit and whether it is an encoding fault.
func checkLiteral(lit []byte) (string, int, bool) {
	for i := 1; i < len(lit); {
		c := lit[i]
		switch {
		case c == '"':
			return "", 0, false
		case c == '\\':
			if i+1 < len(lit) && lit[i+1] == 'u' {
				v, _ := hex4(lit[i+2:])
				switch {
				case v == 0:
					return `contains \u0000 (NUL), which cannot be stored`, i, false
				case v >= 0xDC00 && v <= 0xDFFF:
					return fmt.Sprintf(`has a lone surrogate \u%04x (not a character)`, v), i, false
				case v >= 0xD800 && v <= 0xDBFF:
					lo, ok := rune(0), false
					if i+7 < len(lit) && lit[i+6] == '\\' && lit[i+7] == 'u' {
						lo, ok = hex4(lit[i+8:])
					}
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return fmt.Sprintf(`has a lone surrogate \u%04x (not a character)`, v), i, false
					}
					i += 12
					continue
				}
				i += 6
				continue
			}
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(lit[i:])
			if r == utf8.RuneError && n == 1 {
				return "is not valid UTF-8", i, true
			}
			i += n
		}
	}
	return "", 0, false
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}
