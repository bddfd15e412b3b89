package schemas

import (
	"embed"
	"fmt"
	"reflect"

	"github.com/linkedin/goavro/v2"

	"github.com/paystream/paystream/schemas/catalog"
)

//go:embed avro/*.avsc
var avroFiles embed.FS // read-only embedded files, not state

// record is implemented by every Go type with a schema.
type record interface {
	native(version int) (map[string]any, error)
	fromNative(v any) error
}

// kind is one schema with all its versions.
type kind struct {
	name   string // file stem in avro/
	base   int    // fixed ids are base + version
	latest int
	topics []catalog.Topic // topics whose values use it
	typ    reflect.Type    // the Go struct
	newRec func() record
	fast   int // the version newRec's fastRecord codes by hand, 0 for none
}

// kinds lists every schema, the topics that carry it and its newest version.
func kinds() []kind {
	return []kind{
		{name: "payment", base: 100, latest: 2, fast: 2, typ: reflect.TypeFor[Payment](),
			newRec: func() record { return &Payment{} },
			topics: []catalog.Topic{catalog.PaymentsRequested, catalog.PaymentsValidated, catalog.PaymentsScreened,
				catalog.PaymentsPriced, catalog.PaymentsRewarded, catalog.PaymentsRouted, catalog.PaymentsApproved}},
		{name: "payment_outcome", base: 200, latest: 2, fast: 2, typ: reflect.TypeFor[PaymentOutcome](),
			newRec: func() record { return &PaymentOutcome{} }, topics: []catalog.Topic{catalog.PaymentsOutcomes}},
		{name: "connector_request", base: 300, latest: 1, typ: reflect.TypeFor[ConnectorRequest](),
			newRec: func() record { return &ConnectorRequest{} }, topics: []catalog.Topic{catalog.ConnectorRequests}},
		{name: "connector_result", base: 400, latest: 1, typ: reflect.TypeFor[ConnectorResult](),
			newRec: func() record { return &ConnectorResult{} }, topics: []catalog.Topic{catalog.ConnectorResults}},
		{name: "statement_line", base: 500, latest: 1, typ: reflect.TypeFor[StatementLine](),
			newRec: func() record { return &StatementLine{} }, topics: []catalog.Topic{catalog.ReconStatements}},
		{name: "recon_result", base: 600, latest: 1, typ: reflect.TypeFor[ReconResult](),
			newRec: func() record { return &ReconResult{} }, topics: []catalog.Topic{catalog.ReconResults}},
	}
}

// Schema is one version of one schema.
type Schema struct {
	Name    string // file stem, e.g. payment
	Version int
	FixedID int    // the id used without a Schema Registry
	Text    string // the .avsc
	Topics  []catalog.Topic

	kind  kind
	codec *goavro.Codec
	guard *guard
}

// File is the schema's path inside the module's schemas/ folder.
// A schema learned from the registry (a newer writer's) has no file and no known version.
func (s Schema) File() string {
	if s.Version == 0 {
		return fmt.Sprintf("registry schema %d (%s)", s.FixedID, s.Name)
	}
	return fmt.Sprintf("avro/%s.v%d.avsc", s.Name, s.Version)
}

// fast reports whether the hand-written codec of fastcodec.go reads and writes this
// version. A schema learned from the registry never is: its text is not ours.
func (s Schema) fast() bool { return s.Version != 0 && s.Version == s.kind.fast }

// Latest reports whether writers use this version.
func (s Schema) Latest() bool { return s.Version == s.kind.latest }

// Schemas returns every version of every schema, oldest version first per schema.
func Schemas() ([]Schema, error) {
	var out []Schema
	for _, k := range kinds() {
		for v := 1; v <= k.latest; v++ {
			s := Schema{Name: k.name, Version: v, FixedID: k.base + v, Topics: k.topics, kind: k}
			b, err := avroFiles.ReadFile(s.File())
			if err != nil {
				return nil, fmt.Errorf("reading schema %s: %w", s.File(), err)
			}
			s.Text = string(b)
			if s.codec, err = goavro.NewCodec(s.Text); err != nil {
				return nil, fmt.Errorf("compiling schema %s: %w", s.File(), err)
			}
			if s.guard, err = newGuard(s.Text); err != nil {
				return nil, fmt.Errorf("compiling schema %s: %w", s.File(), err)
			}
			out = append(out, s)
		}
	}
	return out, nil
}
