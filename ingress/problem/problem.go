// Package problem writes API errors as RFC 9457 problem+json documents with a stable
// machine-readable code and per-field errors. Channels branch on Code, never on Title or
// Detail, which are for people.
package problem

import (
	"encoding/json"
	"net/http"
)

// FieldError is one thing wrong with one field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Problem is an error answer.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Code   string       `json:"code"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// TypePrefix makes a problem's type URI from its code.
const TypePrefix = "urn:paystream:problem:"

// New returns a problem with the standard title of status.
func New(status int, code, detail string) *Problem {
	return &Problem{Type: TypePrefix + code, Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

// Error lets a Problem travel as an error until the handler writes it.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// With adds field errors.
func (p *Problem) With(errs ...FieldError) *Problem {
	p.Errors = append(p.Errors, errs...)
	return p
}

// Write sends p.
func Write(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
