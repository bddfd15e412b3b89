// Package routing is the routing stage: it decides whether a payment stays inside the
// ledger or needs an external counterparty, and which connector serves it.
package routing

import (
	"context"
	"fmt"
	"time"

	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// Route kinds.
const (
	Internal  = "internal"
	Connector = "connector"
)

// ReasonNoConnector ends a payment that needs a counterparty none is configured for.
const ReasonNoConnector = "no_connector"

// internalTypes never leave the ledger.
var internalTypes = map[string]bool{"transfer": true, "merchant_payment": true, "refund": true, "hold": true}

// Stage is the routing stage.
type Stage struct {
	// byType names the connector of each external payment type.
	byType map[string]string
	now    func() time.Time
}

// New returns the stage; byType maps external payment types (topup, withdrawal,
// bill_payment, airtime_topup) to the connector that serves them.
func New(byType map[string]string) *Stage { return &Stage{byType: byType, now: time.Now} }

// Definition is the stage's wiring.
func (s *Stage) Definition() processors.Definition {
	return processors.Definition{Name: pipeline.Routing, Input: catalog.PaymentsRewarded, Group: catalog.GroupRouting,
		Outputs: []catalog.Topic{catalog.PaymentsRouted, catalog.PaymentsOutcomes}, Stage: s}
}

// Process sets the payment's route.
func (s *Stage) Process(_ context.Context, in *processors.Input, _ processors.State) (processors.Result, error) {
	p, ok := in.Value.(*schemas.Payment)
	if !ok {
		return processors.Result{}, processors.Permanent(fmt.Errorf("routing got %T", in.Value))
	}
	next := *p
	switch {
	case p.Operation != "" || internalTypes[p.Type]:
		next.Route = &schemas.Route{Kind: Internal}
	default:
		name, ok := s.byType[p.Type]
		if !ok {
			next.Route = &schemas.Route{Kind: "none", Reason: ReasonNoConnector}
			return pipeline.Reject(&next, pipeline.Routing, "", ReasonNoConnector,
				"no connector serves "+p.Type+" payments", s.now()), nil
		}
		next.Route = &schemas.Route{Kind: Connector, Connector: name}
	}
	return processors.Result{Outputs: []processors.Output{pipeline.Forward(&next, catalog.PaymentsRouted)}}, nil
}
