package pipeline

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

func newTestPayment() *schemas.Payment {
	return &schemas.Payment{
		Meta: schemas.Meta{EventID: "e1", PaymentID: "pay_1", Trace: "tr"}, Type: "transfer",
		PayerWallet: "wal_1", PayeeWallet: "wal_2",
		Amount:     schemas.Money{Amount: decimal.RequireFromString("10"), Currency: "USD"},
		Validation: &schemas.Validation{Result: "accepted"},
		Risk:       &schemas.Risk{Decision: "approve", ReasonCodes: []string{"ok"}},
		Fees:       []schemas.FeeLine{{Code: "p2p", Amount: schemas.Money{Amount: decimal.RequireFromString("0.5"), Currency: "USD"}}},
	}
}

func TestRejectCarriesEveryDecision(t *testing.T) {
	p := newTestPayment()
	res := Reject(p, Loyalty, "reject", "budget_exhausted", "campaign budget cannot cover the reward", time.Unix(0, 0))
	if res.Rejected != "budget_exhausted" || len(res.Outputs) != 1 || res.Outputs[0].Topic != catalog.PaymentsOutcomes {
		t.Fatalf("result %+v", res)
	}
	o := res.Outputs[0].Value.(*schemas.PaymentOutcome)
	if o.PaymentID != "pay_1" || o.Status != StatusRejected || o.Stage != Loyalty || o.ReasonCode != "budget_exhausted" ||
		o.Trace != "tr" || o.EventID == "" || o.EventID == p.EventID || len(o.Fees) != 1 {
		t.Errorf("outcome %+v", o)
	}
	var stages []string
	for _, d := range o.Decisions {
		stages = append(stages, d.Stage+":"+d.Decision)
	}
	want := []string{"validation:accepted", "risk:approve", "fee:priced", "loyalty:reject"}
	if len(stages) != len(want) {
		t.Fatalf("decisions %v, want %v", stages, want)
	}
	for i := range want {
		if stages[i] != want[i] {
			t.Errorf("decisions %v, want %v", stages, want)
		}
	}
}

func TestForwardKeepsThePaymentUnderANewEvent(t *testing.T) {
	p := newTestPayment()
	out := Forward(p, catalog.PaymentsPriced)
	next := out.Value.(*schemas.Payment)
	if out.Topic != catalog.PaymentsPriced || out.Key != nil || next.PaymentID != p.PaymentID || next.EventID == p.EventID {
		t.Errorf("forwarded %+v", out)
	}
	next.Type = "changed"
	if p.Type != "transfer" {
		t.Error("Forward shares the record with its input")
	}
}
