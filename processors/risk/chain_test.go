package risk

import (
	"testing"
	"time"

	"github.com/paystream/paystream/processors/stagetest"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors/validation"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// TestValidationAndRiskFused runs both stages as one hop: every stage still writes its
// outputs, and a payment refused by risk carries validation's decision too.
func TestValidationAndRiskFused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := stagetest.NewStream(t)
	if err := validation.SeedDemo(f.ctx, f.db.Pool); err != nil {
		t.Fatal(err)
	}
	v, err := validation.New(f.ctx, f.db.Pool, f.l, validation.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f.limit(Limit{KYCLevel: 1, Type: "transfer", Window: Day, Currency: "USD", MaxCount: ptr(2)})
	payer, _ := f.wallet(1)
	payee, _ := f.wallet(1)
	for _, w := range []string{payer, payee} {
		id, _ := ledger.ParseWalletRef(w)
		if _, err := f.l.OpenWalletAccount(f.ctx, id, "USD", ledger.Main, ledger.WalletRules); err != nil {
			t.Fatal(err)
		}
	}
	ps := []*schemas.Payment{
		newTestPayment(from(payer), to(payee)),
		newTestPayment(from(payer), to(payee), at(t0.Add(time.Minute))),
		newTestPayment(from(payer), to("wal_999999"), at(t0.Add(2*time.Minute))),
		newTestPayment(from(payer), to(payee), at(t0.Add(3*time.Minute))),
	}
	for _, p := range ps {
		p.Validation = nil // as the ingress writes it
	}
	s.Produce(catalog.PaymentsRequested, ps...)
	r := s.Run("chain-1", []string{"validation", "risk"}, true, v.Definition(), f.stage.Definition())
	s.WaitCaughtUp(catalog.GroupValidation, catalog.PaymentsRequested)
	r.Stop(t)

	_, _, nValidated := stagetest.ByPayment(s.ReadAll(catalog.PaymentsValidated))
	screened, _, nScreened := stagetest.ByPayment(s.ReadAll(catalog.PaymentsScreened))
	_, outcomes, nOutcomes := stagetest.ByPayment(s.ReadAll(catalog.PaymentsOutcomes))
	if len(nOutcomes) != 2 {
		t.Errorf("%d payments with outcomes, want 2", len(nOutcomes))
	}
	for _, p := range ps[:2] {
		q := screened[p.PaymentID]
		if nValidated[p.PaymentID] != 1 || nScreened[p.PaymentID] != 1 || q.Validation == nil || q.Risk == nil ||
			q.Validation.Result != validation.Accepted || q.Risk.Decision != DecisionApprove {
			t.Errorf("payment %s screened as %+v", p.PaymentID, q)
		}
	}
	if o := outcomes[ps[2].PaymentID]; nValidated[ps[2].PaymentID] != 0 || o == nil || o.Stage != "validation" ||
		o.ReasonCode != validation.ReasonWalletNotFound {
		t.Errorf("unknown payee: outcome %+v", o)
	}
	o := outcomes[ps[3].PaymentID]
	if nValidated[ps[3].PaymentID] != 1 || nScreened[ps[3].PaymentID] != 0 || o == nil || o.Stage != "risk" ||
		o.ReasonCode != ReasonVelocity || len(o.Decisions) != 2 || o.Decisions[0].Decision != validation.Accepted ||
		o.Decisions[1].Decision != DecisionReject {
		t.Errorf("third transfer: outcome %+v", o)
	}
}
