package validation

import (
	"testing"

	"github.com/paystream/paystream/processors/stagetest"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/schemas/catalog"
)

// TestValidationThroughTheRunner runs the stage on kfake with the Avro serde: accepted
// payments go on to payments.validated, rejected ones end on payments.outcomes.
func TestValidationThroughTheRunner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := stagetest.NewStream(t)
	payer, payee, frozen := f.wallet(), f.wallet(), f.wallet()
	f.setStatus(frozen, ledger.WalletFrozen)
	good := newTestPayment(from(payer), to(payee))
	topup := newTestPayment(typ("topup"), to(payee))
	missing := newTestPayment(from(payer), to("wal_999999"))
	fromFrozen := newTestPayment(from(frozen), to(payee))
	tooMuch := newTestPayment(from(f.wallet(kyc(0))), to(payee), amount("1000", "USD"))
	s.Produce(catalog.PaymentsRequested, good, topup, missing, fromFrozen, tooMuch)

	r := s.Run("validation-1", []string{"validation"}, false, f.stage.Definition())
	s.WaitCaughtUp(catalog.GroupValidation, catalog.PaymentsRequested)
	r.Stop(t)

	validated, _, nValidated := stagetest.ByPayment(s.ReadAll(catalog.PaymentsValidated))
	_, outcomes, nOutcomes := stagetest.ByPayment(s.ReadAll(catalog.PaymentsOutcomes))
	for _, p := range []string{good.PaymentID, topup.PaymentID} {
		v := validated[p]
		if nValidated[p] != 1 || v.Validation == nil || v.Validation.Result != Accepted || nOutcomes[p] != 0 {
			t.Errorf("payment %s: validated %d times as %+v, %d outcomes", p, nValidated[p], v, nOutcomes[p])
		}
	}
	for p, code := range map[string]string{missing.PaymentID: ReasonWalletNotFound, fromFrozen.PaymentID: ReasonWalletFrozen,
		tooMuch.PaymentID: ReasonKYCLimitExceeded} {
		o := outcomes[p]
		if nOutcomes[p] != 1 || o.Status != "rejected" || o.Stage != "validation" || o.ReasonCode != code || nValidated[p] != 0 ||
			len(o.Decisions) != 1 || o.Decisions[0].Decision != Rejected {
			t.Errorf("payment %s: outcome %+v (%d), validated %d; want rejected %s", p, o, nOutcomes[p], nValidated[p], code)
		}
	}
	if len(nValidated) != 2 || len(nOutcomes) != 3 {
		t.Errorf("%d validated and %d outcomes, want 2 and 3", len(nValidated), len(nOutcomes))
	}
}
