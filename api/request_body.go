package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gridmap/data"
	"gridmap/geo"
)

// maxObjectBodyBytes caps the body of a single object, class or setting.
const maxObjectBodyBytes = 1 << 20

// readBody reads a request body of at most maxObjectBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return readBodyMax(w, r, maxObjectBodyBytes)
}

// readBodyMax reads a request body of at most limit bytes: over it, the
// error is an *http.MaxBytesError (a 413).
func readBodyMax(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	// Sized once when the length is known: io.ReadAll grows by doubling,
	// holding up to twice a large body while it reads.
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= limit {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	raw := buf.Bytes()
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, err
		}
		return nil, badRequest("Unreadable body", err.Error())
	}
	return raw, nil
}

// decodeJSON unmarshals a body described by want (for the answer when it
// does not fit): malformed JSON is a 400, a member of the wrong JSON type a
// 422 naming it.
func decodeJSON(raw []byte, v any, want string) error {
	if err := bodyText(raw); err != nil {
		return err
	}
	return decodeError(json.Unmarshal(raw, v), want)
}

// bodyText refuses a body with a string that could not be stored as sent:
// bytes that are not UTF-8 (not JSON text: a 400) or an escaped NUL or lone
// surrogate (a 422), naming the member. encoding/json would turn the
// latter two into U+FFFD silently, and PostgreSQL refuses a NUL as a 500.
func bodyText(raw []byte) error {
	te := geo.CheckJSONText(raw)
	if te == nil {
		return nil
	}
	// As decodeError does: an object's members are named without the
	// Feature's "properties." (attrs.owner, not properties.attrs.owner).
	member := strings.TrimPrefix(te.Path, "properties.")
	if member == "" {
		member = "body"
	}
	if te.Encoding {
		p := badRequest("Body not UTF-8", fmt.Sprintf("%s: byte %d is not UTF-8; JSON bodies must be UTF-8", member, te.Offset))
		p.Param = member
		return p
	}
	return invalidMember(member, fmt.Sprintf("%s %s (byte %d)", member, te.Msg, te.Offset))
}

// decodeStrict decodes a JSON object body like decodeJSON, and refuses
// members it does not know (a misspelt "descripton" would otherwise vanish
// silently) and trailing data.
func decodeStrict(raw []byte, v any, want string) error {
	if err := bodyText(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if name, ok := strings.CutPrefix(fmt.Sprint(err), "json: unknown field "); ok {
		return invalidMember(strings.Trim(name, `"`), fmt.Sprintf("unknown member %s in %s", name, want))
	}
	return decodeError(err, want)
}

func decodeError(err error, want string) error {
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
		return invalidMember(strings.TrimPrefix(te.Field, "properties."),
			fmt.Sprintf("%s is a JSON %s, want %s", te.Field, te.Value, jsonTypeName(te.Type.Kind().String())))
	}
	return malformedJSON(want, err)
}

func malformedJSON(want string, err error) *Problem {
	return badRequest("Malformed JSON", fmt.Sprintf("want %s: %v", want, err))
}

// invalidMember is a 422 naming a body member.
func invalidMember(member, detail string) error {
	return &data.InvalidError{Field: member, Msg: detail}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// readStrict reads a body of at most maxObjectBodyBytes and decodes it
// with decodeStrict.
func readStrict(w http.ResponseWriter, r *http.Request, v any, want string) error {
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decodeStrict(raw, v, want)
}

// samePathCode fills an empty body code from the path, and refuses one that
// differs from it; why says why it may not (appended to the detail).
func samePathCode(body *string, path, why string) error {
	if *body == "" {
		*body = path
	}
	if *body != path {
		return &paramError{"code", fmt.Sprintf("the body's code %q differs from the path's %q%s", *body, path, why)}
	}
	return nil
}
