package risk

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/schemas"
)

// step is one payment of a scenario and what the stage must decide about it.
type step struct {
	opts     []paymentOpt
	decision string
	code     string // the outcome's reason code ("" when approved)
	reasons  []string
}

// TestEachRule runs a scenario per rule, each on its own wallets and state.
func TestEachRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	type scenario struct {
		name  string
		setup func() []step
	}
	scenarios := []scenario{
		{"velocity: the N+1-th payment in the hour is refused", func() []step {
			w, _ := f.wallet(1)
			f.limit(Limit{KYCLevel: 1, Type: "transfer", Window: Hour, Currency: "USD", MaxCount: ptr(3)})
			ok := step{opts: []paymentOpt{from(w)}, decision: DecisionApprove}
			return []step{ok, ok, ok,
				{opts: []paymentOpt{from(w)}, decision: DecisionReject, code: ReasonVelocity, reasons: []string{ReasonVelocity}},
				// another type is not limited; the window rolls on payment time
				{opts: []paymentOpt{from(w), typ("bill_payment")}, decision: DecisionApprove},
				{opts: []paymentOpt{from(w), at(t0.Add(2 * time.Hour))}, decision: DecisionApprove},
			}
		}},
		{"turnover: a refused payment does not use up the limit", func() []step {
			w, _ := f.wallet(2)
			f.limit(Limit{KYCLevel: 2, Type: AllTypes, Window: Day, Currency: "USD", MaxAmount: ptr(decimal.RequireFromString("100"))})
			return []step{
				{opts: []paymentOpt{from(w), amount("60"), typ("merchant_payment")}, decision: DecisionApprove},
				{opts: []paymentOpt{from(w), amount("50")}, decision: DecisionReject, code: ReasonTurnover, reasons: []string{ReasonTurnover}},
				{opts: []paymentOpt{from(w), amount("40"), typ("bill_payment")}, decision: DecisionApprove},
				{opts: []paymentOpt{from(w), amount("0.01")}, decision: DecisionReject, code: ReasonTurnover, reasons: []string{ReasonTurnover}},
			}
		}},
		{"limit with action review holds the payment", func() []step {
			w, _ := f.wallet(3)
			f.limit(Limit{KYCLevel: 3, Type: "withdrawal", Window: Month, Currency: "USD", MaxCount: ptr(1), Action: DecisionReview})
			return []step{
				{opts: []paymentOpt{from(w), typ("withdrawal")}, decision: DecisionApprove},
				{opts: []paymentOpt{from(w), typ("withdrawal"), at(t0.Add(20 * 24 * time.Hour))}, decision: DecisionReview,
					code: ReasonUnderReview, reasons: []string{ReasonVelocity}},
			}
		}},
		{"watch-listed payer is reviewed", func() []step {
			w, u := f.wallet(0)
			f.watchUser(u, DecisionReview)
			return []step{{opts: []paymentOpt{from(w)}, decision: DecisionReview, code: ReasonUnderReview, reasons: []string{ReasonWatchListed}}}
		}},
		{"watch-listed payee is rejected", func() []step {
			payer, _ := f.wallet(0)
			payee, u := f.wallet(0)
			f.watchUser(u, DecisionReject)
			return []step{{opts: []paymentOpt{from(payer), to(payee)}, decision: DecisionReject, code: ReasonWatchListed, reasons: []string{ReasonWatchListed}}}
		}},
		{"unusual amount only after the wallet has a history", func() []step {
			w, _ := f.wallet(0)
			var steps []step
			steps = append(steps, step{opts: []paymentOpt{from(w), amount("500")}, decision: DecisionApprove})
			for range 5 {
				steps = append(steps, step{opts: []paymentOpt{from(w), amount("10")}, decision: DecisionApprove})
			}
			// average is now about 91: 10 times that is fine, much more is not
			return append(steps,
				step{opts: []paymentOpt{from(w), amount("900")}, decision: DecisionApprove},
				step{opts: []paymentOpt{from(w), amount("5000")}, decision: DecisionReview, code: ReasonUnderReview, reasons: []string{ReasonUnusualAmount}})
		}},
		{"top-ups count on the credited wallet", func() []step {
			w, _ := f.wallet(1)
			f.limit(Limit{KYCLevel: 1, Type: "topup", Window: Day, Currency: "USD", MaxCount: ptr(1)})
			return []step{
				{opts: []paymentOpt{typ("topup"), to(w)}, decision: DecisionApprove},
				{opts: []paymentOpt{typ("topup"), to(w)}, decision: DecisionReject, code: ReasonVelocity, reasons: []string{ReasonVelocity}},
			}
		}},
		{"operations are not screened again", func() []step {
			w, u := f.wallet(1)
			f.watchUser(u, DecisionReject)
			return []step{{opts: []paymentOpt{from(w), typ("hold"), operation("capture")}, decision: DecisionApprove}}
		}},
		{"malformed records are refused", func() []step {
			w, _ := f.wallet(1)
			return []step{
				{opts: []paymentOpt{from("wal_x")}, decision: DecisionReject, code: ReasonInvalidRecord, reasons: []string{ReasonInvalidRecord}},
				{opts: []paymentOpt{from(w), at(time.Time{})}, decision: DecisionReject, code: ReasonInvalidRecord, reasons: []string{ReasonInvalidRecord}},
				{opts: []paymentOpt{from(w), amount("0.001")}, decision: DecisionReject, code: ReasonInvalidRecord, reasons: []string{ReasonInvalidRecord}},
				{opts: []paymentOpt{from("wal_999999")}, decision: DecisionReject, code: ReasonWalletNotFound, reasons: []string{ReasonWalletNotFound}},
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f.t = t
			st := mapState{}
			for i, s := range sc.setup() {
				d := f.process(st, newTestPayment(s.opts...))
				reasons := s.reasons
				if reasons == nil {
					reasons = []string{}
				}
				if d.decision != s.decision || d.code != s.code || !slices.Equal(d.risk.ReasonCodes, reasons) {
					t.Fatalf("payment %d: %s/%s %v, want %s/%s %v", i+1, d.decision, d.code, d.risk.ReasonCodes, s.decision, s.code, reasons)
				}
				wantScore := map[string]func(int) bool{
					DecisionApprove: func(s int) bool { return s >= 0 && s < ScoreReview },
					DecisionReview:  func(s int) bool { return s == ScoreReview },
					DecisionReject:  func(s int) bool { return s == ScoreReject },
				}[s.decision]
				if !wantScore(d.risk.Score) {
					t.Errorf("payment %d: score %d for %s", i+1, d.risk.Score, s.decision)
				}
			}
		})
	}
}

func TestScoreFollowsTheTightestLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w, _ := f.wallet(1)
	f.limit(Limit{KYCLevel: 1, Type: "transfer", Window: Day, Currency: "USD", MaxCount: ptr(4)})
	st := mapState{}
	var scores []int
	for range 4 {
		scores = append(scores, f.process(st, newTestPayment(from(w))).risk.Score)
	}
	if !slices.IsSorted(scores) || scores[0] == scores[3] || scores[3] != scoreMaxOK {
		t.Errorf("scores %v, want rising to %d", scores, scoreMaxOK)
	}
}

func TestHeldPaymentIsQueuedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w, u := f.wallet(1)
	f.watchUser(u, DecisionReview)
	p := newTestPayment(from(w), amount("42.5"))
	for range 2 { // a retried batch processes the record again
		f.process(mapState{}, newTestPayment(func(q *schemas.Payment) { *q = *p }))
	}
	rs, err := NewReviews(f.db.Pool, nil, nil).List(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].PaymentID != p.PaymentID || rs[0].Wallet != w || !rs[0].Amount.Amount.Equal(decimal.RequireFromString("42.5")) ||
		rs[0].Status != ReviewOpen || !slices.Equal(rs[0].ReasonCodes, []string{ReasonWatchListed}) || rs[0].Score != ScoreReview {
		t.Errorf("queue %+v", rs)
	}
}

func TestRulesAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := SeedDemo(f.ctx, f.db.Pool); err != nil {
		t.Fatal(err)
	}
	if err := SeedDemo(f.ctx, f.db.Pool); err != nil { // again: keeps what is there
		t.Fatal(err)
	}
	ls, err := f.rules.ListLimits(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2*(3*4+1) {
		t.Errorf("%d demo limits", len(ls))
	}
	if err := f.rules.DeleteLimit(f.ctx, 0, "transfer", Hour, "USD"); err != nil {
		t.Fatal(err)
	}
	if err := f.rules.DeleteLimit(f.ctx, 0, "transfer", Hour, "USD"); !errors.Is(err, ErrNoSuchRule) {
		t.Errorf("deleting twice: %v", err)
	}
	for _, l := range []Limit{
		{KYCLevel: 0, Type: "transfer", Window: Hour, Currency: "USD"},
		{KYCLevel: 0, Type: "p2p", Window: Hour, Currency: "USD", MaxCount: ptr(1)},
		{KYCLevel: 0, Type: "transfer", Window: "week", Currency: "USD", MaxCount: ptr(1)},
		{KYCLevel: 0, Type: "transfer", Window: Hour, Currency: "USD", MaxCount: ptr(1), Action: "block"},
	} {
		if err := f.rules.SetLimit(f.ctx, l); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("SetLimit(%+v) = %v, want ErrInvalidRule", l, err)
		}
	}
	s, err := f.rules.Settings(f.ctx)
	if err != nil || s.AnomalyAction != DecisionReview || s.AnomalyMinPayments != 5 {
		t.Fatalf("default settings %+v, %v", s, err)
	}
	s.AnomalyAction = "off"
	if err := f.rules.SetSettings(f.ctx, s); err != nil {
		t.Fatal(err)
	}
	s.AnomalyMultiplier = decimal.NewFromInt(1)
	if err := f.rules.SetSettings(f.ctx, s); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("multiplier 1 accepted: %v", err)
	}
	_, u := f.wallet(0)
	if err := f.watch.Add(f.ctx, WatchEntry{User: u, Action: DecisionReject, ReasonCode: "sanctions_hit"}); err != nil {
		t.Fatal(err)
	}
	if err := f.watch.Add(f.ctx, WatchEntry{User: u, Action: DecisionReject, ReasonCode: "Free text!"}); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("free-text reason accepted: %v", err)
	}
	es, err := f.watch.List(f.ctx)
	if err != nil || len(es) != 1 || es[0].ReasonCode != "sanctions_hit" {
		t.Fatalf("watch list %+v, %v", es, err)
	}
	if err := f.watch.Remove(f.ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := f.watch.Remove(f.ctx, u); !errors.Is(err, ErrNoSuchRule) {
		t.Errorf("removing twice: %v", err)
	}
}

func TestUnreadableStateStartsOver(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w, _ := f.wallet(1)
	f.limit(Limit{KYCLevel: 1, Type: "transfer", Window: Hour, Currency: "USD", MaxCount: ptr(1)})
	st := mapState{stateKey(w, "transfer", "USD"): {0xff, 1, 2}}
	if d := f.process(st, newTestPayment(from(w))); d.decision != DecisionApprove {
		t.Fatalf("first payment on unreadable state: %+v", d)
	}
	if _, err := decodeCounters(st[stateKey(w, "transfer", "USD")]); err != nil {
		t.Fatalf("state not rewritten: %v", err)
	}
	if d := f.process(st, newTestPayment(from(w))); d.decision != DecisionReject {
		t.Fatalf("second payment: %+v, want the rewritten counters to refuse it", d)
	}
}
