package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/paystream/paystream/ingress/problem"
)

// readBody is a request body authenticate has read (the signature covers it): handlers
// and middleware after it take the bytes from bodyOf rather than reading and copying it
// again.
type readBody struct {
	*bytes.Reader
	b []byte
}

func (*readBody) Close() error { return nil }

// bodyOf returns the request's body. Reading it with bodyOf leaves it readable.
func bodyOf(r *http.Request) []byte {
	if rb, ok := r.Body.(*readBody); ok {
		return rb.b
	}
	b, _ := io.ReadAll(r.Body)
	r.Body = &readBody{Reader: bytes.NewReader(b), b: b}
	return b
}

// readStrict reads the request body into v with decodeStrict; on a problem it answers it
// and reports false. The body stays readable for whoever reads it next.
func readStrict(w http.ResponseWriter, r *http.Request, v any) bool {
	body := bodyOf(r)
	if p := decodeStrict(body, v); p != nil {
		problem.Write(w, p)
		return false
	}
	return true
}

// decodeStrict reads a JSON object into v and refuses what a lenient decoder would let
// through: unknown fields, duplicate keys, trailing data, and anything but one object.
func decodeStrict(body []byte, v any) *problem.Problem {
	if len(bytes.TrimSpace(body)) == 0 {
		return problem.New(http.StatusBadRequest, "invalid_json", "the body must be a JSON object")
	}
	if mayRepeatKey(body) {
		if err := checkDuplicateKeys(json.NewDecoder(bytes.NewReader(body))); err != nil {
			return problem.New(http.StatusBadRequest, "invalid_json", err.Error())
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, errMoneyNotString) {
			return problem.New(http.StatusUnprocessableEntity, "invalid_amount", err.Error()).With(
				problem.FieldError{Field: "amount", Code: "money_not_string", Message: errMoneyNotString.Error()})
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return problem.New(http.StatusUnprocessableEntity, "invalid_field",
				"field "+typeErr.Field+" has the wrong type").With(problem.FieldError{
				Field: typeErr.Field, Code: "wrong_type", Message: "want a JSON " + jsonKind(typeErr.Type.Kind().String()) + ", got " + typeErr.Value})
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return problem.New(http.StatusUnprocessableEntity, "unknown_field", "unknown field "+f).With(
				problem.FieldError{Field: f, Code: "unknown_field", Message: "this field is not part of the request"})
		}
		return problem.New(http.StatusBadRequest, "invalid_json", "the body is not valid JSON: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.New(http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return "number"
}

// checkDuplicateKeys walks one JSON value and fails on an object with a repeated key:
// two decoders could otherwise disagree on which one counts.
func checkDuplicateKeys(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("the body is not valid JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("the body is not valid JSON: %w", err)
			}
			k, _ := kt.(string)
			if seen[k] {
				return fmt.Errorf("duplicate key %q", k)
			}
			seen[k] = true
			if err := checkDuplicateKeys(dec); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := checkDuplicateKeys(dec); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("the body is not valid JSON: %w", err)
	}
	return nil
}
