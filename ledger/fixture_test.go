package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// ledgerOn opens a ledger on a pool of its own to the fixture's database, configured by
// configure (a tracer, a dialer, a single connection), closed when the test ends.
func (f *fixture) ledgerOn(configure func(*pgxpool.Config)) (*Ledger, *pgxpool.Pool) {
	f.t.Helper()
	cfg, err := pgxpool.ParseConfig(f.db.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	configure(cfg)
	pool, err := pgxpool.NewWithConfig(f.ctx, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(pool.Close)
	l, err := New(f.ctx, pool)
	if err != nil {
		f.t.Fatal(err)
	}
	return l, pool
}

// fixture is a subsidiary with its system accounts on a fresh database.
type fixture struct {
	t      testing.TB
	ctx    context.Context
	l      *Ledger
	db     *testenv.DB
	sub    string
	cur    string
	safe   Account // safeguarding bank
	fees   Account // fee revenue (hot)
	vat    Account // VAT payable (hot)
	clear  Account // connector clearing
	budget Account // campaign budget (hot, no overdraft)
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := testenv.Postgres(t)
	ctx := context.Background()
	l, err := New(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, l: l, db: db, sub: "SG01", cur: "USD"}
	if err := l.CreateSubsidiary(ctx, Subsidiary{ID: f.sub, Name: "Paystream SG", BaseCurrency: f.cur},
		VATRate{Category: "standard", ValidFrom: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Rate: decimal.RequireFromString("0.09")}); err != nil {
		t.Fatal(err)
	}
	f.safe = f.system(Safeguarding, "", Rules{})
	f.fees = f.system(FeeRevenue, "", Rules{Shards: 4})
	f.vat = f.system(VATPayable, "", Rules{Shards: 4})
	f.clear = f.system(ConnectorClearing, "bank1", Rules{})
	f.budget = f.system(CampaignBudget, "welcome", Rules{NoOverdraft: true, Shards: 4})
	return f
}

func (f *fixture) system(p Purpose, ref string, r Rules) Account {
	f.t.Helper()
	a, err := f.l.OpenSystemAccount(f.ctx, f.sub, p, f.cur, ref, r)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

var userSeq atomic.Int64

// wallet opens a customer wallet whose main account holds balance (topped up from the
// safeguarding bank).
func (f *fixture) wallet(balance string, opts ...func(*walletSpec)) Account {
	f.t.Helper()
	s := walletSpec{kind: Customer, purpose: Main, rules: WalletRules, currency: f.cur}
	for _, o := range opts {
		o(&s)
	}
	u, err := f.l.CreateUser(f.ctx, User{Kind: s.kind, DisplayName: fmt.Sprintf("user %d", userSeq.Add(1)), KYCLevel: 2})
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := f.l.CreateWallet(f.ctx, Wallet{UserID: u.ID, Subsidiary: f.sub})
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := f.l.OpenWalletAccount(f.ctx, w.ID, s.currency, s.purpose, s.rules)
	if err != nil {
		f.t.Fatal(err)
	}
	if b := decimal.RequireFromString(balance); b.IsPositive() {
		f.mustPost(Posting{PaymentID: f.id("fund"), Transfers: []Transfer{
			{Code: CodePrincipal, Debit: f.safe.ID, Credit: a.ID, Amount: b, Currency: s.currency}}})
	}
	return a
}

type walletSpec struct {
	kind     UserKind
	purpose  Purpose
	rules    Rules
	currency string
}

func asMerchant(s *walletSpec)            { s.kind = Merchant; s.rules = Rules{NoOverdraft: true, Shards: 4} }
func withRules(r Rules) func(*walletSpec) { return func(s *walletSpec) { s.rules = r } }
func withPurpose(p Purpose, r Rules) func(*walletSpec) {
	return func(s *walletSpec) { s.purpose, s.rules = p, r }
}

var idSeq atomic.Int64

func (f *fixture) id(prefix string) string { return fmt.Sprintf("%s-%d", prefix, idSeq.Add(1)) }

func (f *fixture) mustPost(p Posting) Result {
	f.t.Helper()
	r, err := f.l.Post(f.ctx, p)
	if err != nil {
		f.t.Fatalf("posting %s: %v", p.PaymentID, err)
	}
	return r
}

func (f *fixture) available(a Account) decimal.Decimal {
	f.t.Helper()
	b, err := f.l.Balance(f.ctx, a.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return b.Available
}

// verify fails the test when any ledger invariant is broken.
func (f *fixture) verify() {
	f.t.Helper()
	rep, err := Verify(f.ctx, f.db.Pool)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if !c.Pass {
			f.t.Errorf("invariant %s failed: %d violations (%s)", c.Name, c.Violations, c.Detail)
		}
	}
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// p2p builds a transfer of amount with a fee and VAT on the fee, paid by the sender.
func (f *fixture) p2p(id string, from, to Account, amount, fee, vat string) Posting {
	return Posting{PaymentID: id, Transfers: []Transfer{
		{Code: CodePrincipal, Debit: from.ID, Credit: to.ID, Amount: d(amount), Currency: f.cur},
		{Code: CodeFee, Debit: from.ID, Credit: f.fees.ID, Amount: d(fee), Currency: f.cur},
		{Code: CodeVAT, Debit: from.ID, Credit: f.vat.ID, Amount: d(vat), Currency: f.cur},
	}}
}
