package ingress

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/paystream/paystream/ingress/openapi"
)

// The document is written by hand; this keeps it honest: every route the router serves
// is in it, and it describes no route the router lacks.
func TestOpenAPIListsExactlyTheRouterRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	var inDoc []string
	for path, ops := range doc.Paths {
		for method := range ops {
			inDoc = append(inDoc, strings.ToUpper(method)+" "+path)
		}
	}
	var inRouter []string
	s, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	err = chi.Walk(s.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		inRouter = append(inRouter, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(inDoc)
	slices.Sort(inRouter)
	for _, r := range inRouter {
		if !slices.Contains(inDoc, r) {
			t.Errorf("route %s is served but not in openapi.json", r)
		}
	}
	for _, r := range inDoc {
		if !slices.Contains(inRouter, r) {
			t.Errorf("openapi.json describes %s, which the router does not serve", r)
		}
	}
}
