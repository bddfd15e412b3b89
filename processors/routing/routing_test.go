package routing

import (
	"context"
	"testing"
	"time"

	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

func TestRoutes(t *testing.T) {
	s := New(map[string]string{"topup": "bank", "withdrawal": "bank"})
	s.now = func() time.Time { return time.Unix(0, 0) }
	tests := []struct {
		typ, op   string
		kind, via string // "" kind: rejected
	}{
		{"transfer", "", Internal, ""},
		{"merchant_payment", "", Internal, ""},
		{"refund", "", Internal, ""},
		{"hold", "", Internal, ""},
		{"hold", "capture", Internal, ""},
		{"merchant_payment", "refund", Internal, ""},
		{"topup", "", Connector, "bank"},
		{"withdrawal", "", Connector, "bank"},
		{"bill_payment", "", "", ""},
		{"airtime_topup", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.op, func(t *testing.T) {
			p := &schemas.Payment{Meta: schemas.Meta{EventID: "e", PaymentID: "pay_1"}, Type: tt.typ, Operation: tt.op}
			res, err := s.Process(context.Background(), &processors.Input{Value: p}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Outputs) != 1 {
				t.Fatalf("outputs %+v", res.Outputs)
			}
			out := res.Outputs[0]
			if tt.kind == "" {
				o, ok := out.Value.(*schemas.PaymentOutcome)
				if !ok || out.Topic != catalog.PaymentsOutcomes || res.Rejected != ReasonNoConnector || o.ReasonCode != ReasonNoConnector {
					t.Errorf("want a no_connector rejection, got %+v", res)
				}
				return
			}
			next, ok := out.Value.(*schemas.Payment)
			if !ok || out.Topic != catalog.PaymentsRouted || next.Route == nil || next.Route.Kind != tt.kind || next.Route.Connector != tt.via {
				t.Errorf("routed %+v", out)
			}
			if p.Route != nil {
				t.Error("the input record was changed")
			}
		})
	}
}
