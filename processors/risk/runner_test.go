package risk

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/paystream/paystream/processors/stagetest"

	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// TestRiskThroughTheRunner runs the stage on kfake with the Avro serde: the velocity limit
// refuses the N+1-th payment, the counters survive a worker restart through the
// changelog, and a held payment is approved, or rejected, exactly once.
func TestRiskThroughTheRunner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := stagetest.NewStream(t)
	f.limit(Limit{KYCLevel: 1, Type: "transfer", Window: Hour, Currency: "USD", MaxCount: ptr(3)})
	a, _ := f.wallet(1)
	b, _ := f.wallet(1)
	watched, u := f.wallet(1)
	f.watchUser(u, DecisionReview)

	pay := func(w string, min int) *schemas.Payment {
		return newTestPayment(from(w), at(t0.Add(time.Duration(min)*time.Minute)))
	}
	first := []*schemas.Payment{pay(a, 0), pay(a, 1), pay(b, 1), pay(a, 2), pay(a, 3)}
	s.Produce(catalog.PaymentsValidated, first...)
	r := s.Run("risk-1", []string{"risk"}, false, f.stage.Definition())
	s.WaitCaughtUp(catalog.GroupRisk, catalog.PaymentsValidated)
	r.Stop(t)

	// A new worker with the same instance id restores the counters from the changelog.
	second := []*schemas.Payment{pay(a, 10), pay(b, 10), pay(watched, 11), pay(watched, 12)}
	s.Produce(catalog.PaymentsValidated, second...)
	r = s.Run("risk-1", []string{"risk"}, false, f.stage.Definition())
	s.WaitCaughtUp(catalog.GroupRisk, catalog.PaymentsValidated)
	r.Stop(t)

	reviews := NewReviews(f.db.Pool, s.Serde(), s.Client())
	open, err := reviews.List(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 || open[0].Wallet != watched || open[1].Wallet != watched {
		t.Fatalf("open reviews %+v, want the watched wallet's two payments", open)
	}
	approved, rejected := second[2].PaymentID, second[3].PaymentID
	if err := reviews.Approve(f.ctx, approved); err != nil {
		t.Fatal(err)
	}
	if err := reviews.Approve(f.ctx, approved); !errors.Is(err, ErrReviewResolved) {
		t.Errorf("second approval: %v, want ErrReviewResolved", err)
	}
	if err := reviews.Reject(f.ctx, rejected, "fraud_confirmed"); err != nil {
		t.Fatal(err)
	}
	if err := reviews.Approve(f.ctx, rejected); !errors.Is(err, ErrReviewResolved) {
		t.Errorf("approving a rejected review: %v, want ErrReviewResolved", err)
	}
	if err := reviews.Approve(f.ctx, "pay_unknown"); !errors.Is(err, ErrReviewNotFound) {
		t.Errorf("approving an unknown review: %v, want ErrReviewNotFound", err)
	}
	if open, err := reviews.List(f.ctx); err != nil || len(open) != 0 {
		t.Errorf("open reviews after resolving: %+v, %v", open, err)
	}
	if rv, err := reviews.Get(f.ctx, approved); err != nil || rv.Status != ReviewApproved || rv.ResolvedAt == nil {
		t.Errorf("approved review %+v, %v", rv, err)
	}

	screened, _, nScreened := stagetest.ByPayment(s.ReadAll(catalog.PaymentsScreened))
	released, _, nReleased := stagetest.ByPayment(s.ReadAll(catalog.PaymentsApproved))
	_, outcomes, nOutcomes := stagetest.ByPayment(s.ReadAll(catalog.PaymentsOutcomes))
	wantScreened := []string{first[0].PaymentID, first[1].PaymentID, first[2].PaymentID, first[3].PaymentID,
		second[1].PaymentID}
	// The approved payment leaves on payments.approved, once, and not on payments.screened.
	if nReleased[approved] != 1 || len(nReleased) != 1 || nScreened[approved] != 0 {
		t.Errorf("approved payment on payments.approved %d times (%d payments there), on payments.screened %d times; want 1, 1, 0",
			nReleased[approved], len(nReleased), nScreened[approved])
	}
	wantRejected := map[string]string{first[4].PaymentID: ReasonVelocity, second[0].PaymentID: ReasonVelocity,
		rejected: "fraud_confirmed"}
	for _, id := range wantScreened {
		if nScreened[id] != 1 || nOutcomes[id] > 1 {
			t.Errorf("payment %s screened %d times, %d outcomes; want once", id, nScreened[id], nOutcomes[id])
		}
	}
	if len(nScreened) != len(wantScreened) {
		t.Errorf("%d payments screened, want %d", len(nScreened), len(wantScreened))
	}
	for id, code := range wantRejected {
		want := 1
		if id == rejected {
			want = 2 // pending, then rejected
		}
		o := outcomes[id]
		if o == nil || o.Status != "rejected" || o.ReasonCode != code || nOutcomes[id] != want || nScreened[id] != 0 {
			t.Errorf("payment %s: last outcome %+v of %d, screened %d; want rejected %s", id, o, nOutcomes[id], nScreened[id], code)
		}
	}
	// byPayment keeps the last outcome of a payment: the approved one has only its pending.
	if o := outcomes[approved]; o == nil || o.Status != "pending" || o.ReasonCode != ReasonUnderReview {
		t.Errorf("approved payment's outcome %+v, want pending under_review", o)
	}
	p := released[approved]
	if p == nil || p.Risk == nil || p.Risk.Decision != DecisionApprove ||
		!slices.Equal(p.Risk.ReasonCodes, []string{ReasonWatchListed, ReasonApproved}) || p.Validation == nil || p.PayerWallet != watched {
		t.Errorf("re-emitted payment %+v", p)
	}
	if q := screened[first[0].PaymentID]; q.Risk == nil || q.Risk.Decision != DecisionApprove || q.EventID == first[0].EventID {
		t.Errorf("screened payment %+v", q)
	}
}
