package validation

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

// fixture is a migrated database with a subsidiary, the demo rules and a validation stage.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	db    *testenv.DB
	l     *ledger.Ledger
	rules *Rules
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
	if err := SeedDemo(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	st, err := New(ctx, db.Pool, l, Config{Now: func() time.Time { return time.Unix(1_800_000_000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: ctx, db: db, l: l, rules: NewRules(db.Pool), stage: st}
}

type walletSpec struct {
	kind       ledger.UserKind
	kyc        int
	userStatus string
	currencies []string
}

type walletOpt func(*walletSpec)

func merchant() walletOpt            { return func(s *walletSpec) { s.kind = ledger.Merchant } }
func kyc(level int) walletOpt        { return func(s *walletSpec) { s.kyc = level } }
func userStatus(st string) walletOpt { return func(s *walletSpec) { s.userStatus = st } }
func currencies(cs ...string) walletOpt {
	return func(s *walletSpec) { s.currencies = cs }
}

// wallet creates a user with one wallet and main accounts (USD unless told) and returns
// the wallet's reference.
func (f *fixture) wallet(opts ...walletOpt) string {
	f.t.Helper()
	s := walletSpec{kind: ledger.Customer, kyc: 1, currencies: []string{"USD"}}
	for _, o := range opts {
		o(&s)
	}
	u, err := f.l.CreateUser(f.ctx, ledger.User{Kind: s.kind, DisplayName: "t", KYCLevel: s.kyc, Status: s.userStatus})
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := f.l.CreateWallet(f.ctx, ledger.Wallet{UserID: u.ID, Subsidiary: "SG01"})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range s.currencies {
		if _, err := f.l.OpenWalletAccount(f.ctx, w.ID, c, ledger.Main, ledger.WalletRules); err != nil {
			f.t.Fatal(err)
		}
	}
	return ledger.WalletRef(w.ID)
}

func (f *fixture) setStatus(ref string, s ledger.WalletStatus) {
	f.t.Helper()
	id, _ := ledger.ParseWalletRef(ref)
	if err := f.l.SetWalletStatus(f.ctx, id, s); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) closeAccount(ref, currency string) {
	f.t.Helper()
	id, _ := ledger.ParseWalletRef(ref)
	a, err := f.l.WalletAccount(f.ctx, id, currency, ledger.Main)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.l.CloseAccount(f.ctx, a.ID); err != nil {
		f.t.Fatal(err)
	}
}

// process runs the stage on p and returns the reason code ("" when accepted) after
// checking the result's shape.
func (f *fixture) process(p *schemas.Payment) string {
	f.t.Helper()
	res, err := f.stage.Process(f.ctx, &processors.Input{Value: p}, nil)
	if err != nil {
		f.t.Fatalf("Process: %v", err)
	}
	return reasonOf(f.t, res)
}

func reasonOf(t testing.TB, res processors.Result) string {
	t.Helper()
	if len(res.Outputs) != 1 {
		t.Fatalf("%d outputs, want 1", len(res.Outputs))
	}
	switch v := res.Outputs[0].Value.(type) {
	case *schemas.Payment:
		if res.Rejected != "" || v.Validation == nil || v.Validation.Result != Accepted {
			t.Fatalf("forwarded payment with validation %+v, rejected %q", v.Validation, res.Rejected)
		}
		return ""
	case *schemas.PaymentOutcome:
		if v.Status != "rejected" || v.Stage != "validation" || v.ReasonCode != res.Rejected || res.Rejected == "" {
			t.Fatalf("outcome %+v, rejected %q", v, res.Rejected)
		}
		last := v.Decisions[len(v.Decisions)-1]
		if last.Stage != "validation" || last.Decision != Rejected || len(last.Reasons) != 1 || last.Reasons[0] != v.ReasonCode {
			t.Fatalf("validation decision %+v on outcome with reason %s", last, v.ReasonCode)
		}
		return v.ReasonCode
	default:
		t.Fatalf("output %T", v)
		return ""
	}
}

var paymentSeq atomic.Int64

type paymentOpt func(*schemas.Payment)

// newTestPayment is a 10 USD transfer between no wallets yet; options set the rest.
func newTestPayment(opts ...paymentOpt) *schemas.Payment {
	n := paymentSeq.Add(1)
	p := &schemas.Payment{
		Meta:      schemas.Meta{EventID: fmt.Sprintf("evt_%d", n), PaymentID: fmt.Sprintf("pay_%032x", n)},
		CreatedAt: time.Unix(1_800_000_000, 0).UTC(), Subsidiary: "SG01", Type: "transfer",
		Amount: schemas.Money{Amount: decimal.RequireFromString("10"), Currency: "USD"},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func typ(t string) paymentOpt  { return func(p *schemas.Payment) { p.Type = t } }
func from(w string) paymentOpt { return func(p *schemas.Payment) { p.PayerWallet = w } }
func to(w string) paymentOpt   { return func(p *schemas.Payment) { p.PayeeWallet = w } }
func amount(a string, cur string) paymentOpt {
	return func(p *schemas.Payment) {
		p.Amount = schemas.Money{Amount: decimal.RequireFromString(a), Currency: cur}
	}
}
func operation(op, target string) paymentOpt {
	return func(p *schemas.Payment) { p.Operation, p.TargetPaymentID = op, target }
}
