package risk

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// t0 is when test payments are made unless told otherwise.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fixture is a migrated database with a subsidiary and a risk stage without rules.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	db    *testenv.DB
	l     *ledger.Ledger
	rules *Rules
	watch *WatchList
	stage *Stage
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	db := testenv.Postgres(t)
	l, err := ledger.New(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateSubsidiary(ctx, ledger.Subsidiary{ID: "SG01", Name: "test", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	st, err := New(ctx, db.Pool, l, Config{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: ctx, db: db, l: l, rules: NewRules(db.Pool), watch: NewWatchList(db.Pool), stage: st}
}

// wallet creates a customer with one wallet at a KYC level and returns the wallet's
// reference and the user.
func (f *fixture) wallet(kyc int) (string, ledger.UserID) {
	f.t.Helper()
	u, err := f.l.CreateUser(f.ctx, ledger.User{Kind: ledger.Customer, DisplayName: "t", KYCLevel: kyc})
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := f.l.CreateWallet(f.ctx, ledger.Wallet{UserID: u.ID, Subsidiary: "SG01"})
	if err != nil {
		f.t.Fatal(err)
	}
	return ledger.WalletRef(w.ID), u.ID
}

func (f *fixture) limit(l Limit) {
	f.t.Helper()
	if err := f.rules.SetLimit(f.ctx, l); err != nil {
		f.t.Fatal(err)
	}
	if err := f.stage.Refresh(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) watchUser(u ledger.UserID, action string) {
	f.t.Helper()
	if err := f.watch.Add(f.ctx, WatchEntry{User: u, Action: action}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.stage.Refresh(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

// mapState is the runner's State for tests that call Process directly, with its bounds.
type mapState map[string][]byte

func (m mapState) Get(k string) ([]byte, bool) { v, ok := m[k]; return v, ok }
func (m mapState) Set(k string, v []byte) error {
	if len(k) > processors.DefaultMaxStateKeyBytes || len(v) > processors.DefaultMaxStateValueBytes {
		return processors.ErrStateTooLarge
	}
	m[k] = append([]byte(nil), v...)
	return nil
}
func (m mapState) Delete(k string) { delete(m, k) }

// decision is what the stage decided about one payment.
type decision struct {
	decision string // approve, review or reject
	code     string // the outcome's reason code; "" when approved
	risk     schemas.Risk
}

func (f *fixture) process(st processors.State, p *schemas.Payment) decision {
	f.t.Helper()
	res, err := f.stage.Process(f.ctx, &processors.Input{Value: p}, st)
	if err != nil {
		f.t.Fatalf("Process: %v", err)
	}
	if len(res.Outputs) != 1 {
		f.t.Fatalf("%d outputs, want 1", len(res.Outputs))
	}
	switch v := res.Outputs[0].Value.(type) {
	case *schemas.Payment:
		if v.Risk == nil || v.Risk.Decision != DecisionApprove || res.Rejected != "" || v.PaymentID != p.PaymentID {
			f.t.Fatalf("forwarded %+v, rejected %q", v.Risk, res.Rejected)
		}
		return decision{decision: DecisionApprove, risk: *v.Risk}
	case *schemas.PaymentOutcome:
		last := v.Decisions[len(v.Decisions)-1]
		if v.Stage != "risk" || last.Stage != "risk" || v.ReasonCode == "" {
			f.t.Fatalf("outcome %+v", v)
		}
		switch {
		case v.Status == "rejected" && last.Decision == DecisionReject && res.Rejected == v.ReasonCode:
		case v.Status == "pending" && last.Decision == DecisionReview && v.ReasonCode == ReasonUnderReview && res.Rejected == "":
		default:
			f.t.Fatalf("outcome %+v with decision %+v, rejected %q", v, last, res.Rejected)
		}
		return decision{decision: last.Decision, code: v.ReasonCode, risk: *p.Risk}
	default:
		f.t.Fatalf("output %T", v)
		return decision{}
	}
}

var paymentSeq atomic.Int64

type paymentOpt func(*schemas.Payment)

// newTestPayment is a validated 10 USD transfer made at t0; options set the rest.
func newTestPayment(opts ...paymentOpt) *schemas.Payment {
	n := paymentSeq.Add(1)
	p := &schemas.Payment{
		Meta:      schemas.Meta{EventID: fmt.Sprintf("evt_%d", n), PaymentID: fmt.Sprintf("pay_%032x", n)},
		CreatedAt: t0, Subsidiary: "SG01", Type: "transfer",
		Amount:     schemas.Money{Amount: decimal.RequireFromString("10"), Currency: "USD"},
		Validation: &schemas.Validation{Result: "accepted", ReasonCodes: []string{}, At: t0},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func typ(t string) paymentOpt  { return func(p *schemas.Payment) { p.Type = t } }
func from(w string) paymentOpt { return func(p *schemas.Payment) { p.PayerWallet = w } }
func to(w string) paymentOpt   { return func(p *schemas.Payment) { p.PayeeWallet = w } }
func at(t time.Time) paymentOpt {
	return func(p *schemas.Payment) { p.CreatedAt = t }
}
func amount(a string) paymentOpt {
	return func(p *schemas.Payment) { p.Amount.Amount = decimal.RequireFromString(a) }
}
func operation(op string) paymentOpt {
	return func(p *schemas.Payment) { p.Operation, p.TargetPaymentID = op, "pay_target" }
}

func ptr[T any](v T) *T { return &v }
