package fee

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/paystream/paystream/processors/stagetest"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// env is a subsidiary SG01 with a customer wallet (payer), a second customer (payee) and
// a merchant in fee group "merchants", on a fresh database.
type env struct {
	ctx                    context.Context
	db                     *testenv.DB
	led                    *ledger.Ledger
	payer, payee, merchant string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := testenv.Postgres(t)
	led, err := ledger.New(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := led.CreateSubsidiary(ctx, ledger.Subsidiary{ID: "SG01", Name: "Paystream SG", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	wallet := func(kind ledger.UserKind, group string) string {
		u, err := led.CreateUser(ctx, ledger.User{Kind: kind, DisplayName: string(kind), KYCLevel: 2})
		if err != nil {
			t.Fatal(err)
		}
		w, err := led.CreateWallet(ctx, ledger.Wallet{UserID: u.ID, Subsidiary: "SG01", FeeGroup: group})
		if err != nil {
			t.Fatal(err)
		}
		return ledger.WalletRef(w.ID)
	}
	e := &env{ctx: ctx, db: db, led: led, payer: wallet(ledger.Customer, ""), payee: wallet(ledger.Customer, ""),
		merchant: wallet(ledger.Merchant, "merchants")}
	return e
}

func (e *env) stage(t *testing.T) *Stage {
	t.Helper()
	s, err := New(e.db.Pool, e.led, Config{RefreshInterval: time.Hour, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) pay(opts ...func(*schemas.Payment)) *schemas.Payment {
	return newTestPayment(append([]func(*schemas.Payment){func(p *schemas.Payment) {
		p.PayerWallet, p.PayeeWallet = e.payer, e.payee
	}}, opts...)...)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// process runs the stage on p and returns the payment it forwarded.
func process(t *testing.T, s *Stage, p *schemas.Payment) *schemas.Payment {
	t.Helper()
	res, err := s.Process(context.Background(), &processors.Input{Topic: catalog.PaymentsScreened, Value: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Topic != catalog.PaymentsPriced || res.Rejected != "" {
		t.Fatalf("outputs %+v rejected %q, want one on %s", res.Outputs, res.Rejected, catalog.PaymentsPriced)
	}
	return res.Outputs[0].Value.(*schemas.Payment)
}

func checkLines(t *testing.T, got []schemas.FeeLine, want ...line) {
	t.Helper()
	if got == nil {
		t.Fatal("Fees is nil: the payment is not marked priced")
	}
	if len(got) != len(want) {
		t.Fatalf("fees %+v, want %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Code != w.code || !g.Amount.Amount.Equal(dec(w.amount)) || !g.VAT.Amount.Equal(dec(w.vat)) || g.VATRate != w.rate {
			t.Errorf("fee %d = %s %s VAT %s at %s, want %+v", i, g.Code, g.Amount, g.VAT, g.VATRate, w)
		}
	}
}

func TestStagePricesWithTheDemoRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := SeedDemo(e.ctx, e.db.Pool, "SG01"); err != nil {
		t.Fatal(err)
	}
	if err := SeedDemo(e.ctx, e.db.Pool, "SG01"); err != nil { // idempotent
		t.Fatal(err)
	}
	defs, err := NewRules(e.db.Pool, e.led).List(e.ctx, "SG01", true)
	if err != nil || len(defs) != 2 {
		t.Fatalf("after seeding twice: %d definitions, %v; want 2", len(defs), err)
	}
	s := e.stage(t)
	merchantPay := func(p *schemas.Payment) { p.Type, p.PayeeWallet = "merchant_payment", e.merchant }
	for _, tc := range []struct {
		name string
		p    *schemas.Payment
		want []line
	}{
		{"p2p", e.pay(), []line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}}},
		{"p2p min", e.pay(amount("3.00", "USD")), []line{{"payer:p2p_fee", "0.1", "0.01", "0.1"}}},
		{"p2p max", e.pay(amount("5000.00", "USD")), []line{{"payer:p2p_fee", "5", "0.5", "0.1"}}},
		{"merchant payment", e.pay(merchantPay, amount("200.00", "USD")), []line{{"merchant:mdr", "3", "0.3", "0.1"}}},
		{"withdrawal is free", e.pay(ptype("withdrawal"), func(p *schemas.Payment) { p.PayeeWallet = "" }), nil},
		{"refund of a p2p is free", e.pay(operation("refund")), nil},
		{"other currency is free", e.pay(amount("100.00", "EUR")), nil},
		{"top-up is free", e.pay(ptype("topup"), func(p *schemas.Payment) { p.PayerWallet, p.PayeeWallet = "", e.payer }), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := process(t, s, tc.p)
			checkLines(t, out.Fees, tc.want...)
			if out.EventID == tc.p.EventID {
				t.Error("forwarded under the input's event id")
			}
			preview, err := s.Preview(e.ctx, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			checkLines(t, preview, tc.want...)
		})
	}
}

func TestPreviewLeavesThePaymentAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := SeedDemo(e.ctx, e.db.Pool, "SG01"); err != nil {
		t.Fatal(err)
	}
	p := e.pay(func(p *schemas.Payment) { p.CreatedAt = time.Time{}; p.PaymentID = "" })
	lines, err := e.stage(t).Preview(e.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, lines, line{"payer:p2p_fee", "0.5", "0.05", "0.1"})
	if p.Fees != nil || !p.CreatedAt.IsZero() {
		t.Errorf("Preview changed the payment: %+v", p)
	}
}

func TestRuleChangesArePickedUpOnRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rules := NewRules(e.db.Pool, e.led)
	d, err := rules.Create(e.ctx, def(func(d *Definition) { d.Min = ndec("0.10") }))
	if err != nil {
		t.Fatal(err)
	}
	s := e.stage(t)
	checkLines(t, process(t, s, e.pay()).Fees, line{"payer:p2p_fee", "0.5", "0", "0"}) // no VAT rate on fees in SG01

	if err := rules.Disable(e.ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Create(e.ctx, def(func(d *Definition) { d.Code, d.Fixed, d.Rate = "flat", dec("1.00"), dec("0") })); err != nil {
		t.Fatal(err)
	}
	if _, err := e.led.EnsureVATRate(e.ctx, "SG01", ledger.VATRate{Category: VATCategory, ValidFrom: t0.AddDate(0, -1, 0), Rate: dec("0.07")}); err != nil {
		t.Fatal(err)
	}
	// The cache still holds the old rules until it refreshes: no restart needed, but no
	// database read per payment either.
	checkLines(t, process(t, s, e.pay()).Fees, line{"payer:p2p_fee", "0.5", "0", "0"})
	if err := s.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	checkLines(t, process(t, s, e.pay()).Fees, line{"payer:flat", "1", "0.07", "0.07"})

	if err := rules.Disable(e.ctx, 999999); !errors.Is(err, ErrNotFound) {
		t.Errorf("disabling an unknown definition: %v, want ErrNotFound", err)
	}
	all, err := rules.List(e.ctx, "SG01", true)
	if err != nil || len(all) != 2 || !all[0].Disabled || all[1].Disabled || !all[0].Min.Valid {
		t.Errorf("List(all) = %+v, %v", all, err)
	}
	if _, err := rules.Create(e.ctx, def(func(d *Definition) { d.Fixed = dec("0.005") })); !errors.Is(err, ErrInvalidDefinition) {
		t.Errorf("creating a fixed fee below a cent: %v, want ErrInvalidDefinition", err)
	}
}

func TestSelectorsReadTheLedgersWalletFacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rules := NewRules(e.db.Pool, e.led)
	if _, err := rules.Create(e.ctx, def(func(d *Definition) { d.Code, d.WalletType, d.KYCLevel = "business", "business", kyc(2) })); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Create(e.ctx, def(func(d *Definition) {
		d.Code, d.PaymentType, d.FeeGroup, d.PaidBy, d.Rate = "mdr", "merchant_payment", "merchants", PaidByMerchant, dec("0.01")
	})); err != nil {
		t.Fatal(err)
	}
	s := e.stage(t)
	checkLines(t, process(t, s, e.pay()).Fees) // a personal wallet
	id, _ := ledger.ParseWalletRef(e.payer)
	if err := e.led.SetWalletType(e.ctx, id, "business"); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(e.ctx); err != nil { // wallet facts are cached with the rules
		t.Fatal(err)
	}
	checkLines(t, process(t, s, e.pay()).Fees, line{"payer:business", "0.5", "0", "0"})
	checkLines(t, process(t, s, e.pay(func(p *schemas.Payment) { p.Type, p.PayeeWallet = "merchant_payment", e.merchant })).Fees,
		line{"merchant:mdr", "1", "0", "0"})
	checkLines(t, process(t, s, e.pay(ptype("merchant_payment"))).Fees) // payee not in group "merchants"
}

func TestUnknownWalletEndsThePayment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := SeedDemo(e.ctx, e.db.Pool, "SG01"); err != nil {
		t.Fatal(err)
	}
	s := e.stage(t)
	p := e.pay(func(p *schemas.Payment) { p.PayerWallet = "wal_999999" })
	res, err := s.Process(e.ctx, &processors.Input{Value: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != ReasonUnknownWallet || len(res.Outputs) != 1 || res.Outputs[0].Topic != catalog.PaymentsOutcomes {
		t.Fatalf("result %+v, want a rejection %s on outcomes", res, ReasonUnknownWallet)
	}
	o := res.Outputs[0].Value.(*schemas.PaymentOutcome)
	if o.Status != pipeline.StatusRejected || o.Stage != pipeline.Fee || o.ReasonCode != ReasonUnknownWallet {
		t.Errorf("outcome %+v", o)
	}
	if _, err := s.Process(e.ctx, &processors.Input{Value: "not a payment"}, nil); !processors.IsPermanent(err) {
		t.Errorf("a record that is not a payment: %v, want a permanent error", err)
	}
}

// TestStageThroughTheRunner runs the fee stage in the exactly-once runner on kfake: payments
// in on payments.screened, priced payments out on payments.priced.
func TestStageThroughTheRunner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := SeedDemo(e.ctx, e.db.Pool, "SG01"); err != nil {
		t.Fatal(err)
	}
	st := stagetest.NewStream(t)
	const n = 20
	var ps []*schemas.Payment
	for i := range n {
		ps = append(ps, e.pay(amount(fmt.Sprintf("%d.00", i+1), "USD"), func(p *schemas.Payment) {
			p.PaymentID, p.EventID = fmt.Sprintf("pay_%d", i), fmt.Sprintf("ev_%d", i)
		}))
	}
	st.Produce(catalog.PaymentsScreened, ps...)
	r := st.Run("fee-test", []string{pipeline.Fee}, false, e.stage(t).Definition())
	st.WaitCaughtUp(catalog.GroupFee, catalog.PaymentsScreened)
	r.Stop(t)
	priced, _, count := stagetest.ByPayment(st.ReadAll(catalog.PaymentsPriced))
	if len(priced) != n {
		t.Fatalf("%d priced payments, want %d", len(priced), n)
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("payment %s priced %d times", id, c)
		}
	}
	var got []*schemas.Payment
	for _, p := range priced {
		got = append(got, p)
	}
	for _, p := range got {
		// 0.5 % with a 0.10 minimum: every amount here (1..20 USD) pays the minimum.
		checkLines(t, p.Fees, line{"payer:p2p_fee", "0.1", "0.01", "0.1"})
	}
}

func TestDefinitionsRoundTripThroughTheDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rules := NewRules(e.db.Pool, e.led)
	want := Definition{Code: "full", Subsidiary: "SG01", Currency: "USD", PaymentType: "withdrawal", Operation: "refund",
		FeeGroup: "vip", WalletType: "business", KYCLevel: kyc(3), Method: "bank", AmountFrom: ndec("10.00"), AmountTo: ndec("500.00"),
		ValidFrom: t0, ValidTo: t0.AddDate(1, 0, 0), Fixed: dec("0.25"), Rate: dec("0.0125"), Min: ndec("0.50"), Max: ndec("9.99"),
		PaidBy: PaidByMerchant, VATExempt: true, Rounding: Up}
	created, err := rules.Create(e.ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rules.List(e.ctx, "SG01", false)
	if err != nil || len(got) != 1 {
		t.Fatalf("List = %+v, %v", got, err)
	}
	g := got[0]
	same := func(a, b decimal.NullDecimal) bool { return a.Valid == b.Valid && a.Decimal.Equal(b.Decimal) }
	if g.ID != created.ID || g.Code != want.Code || g.PaymentType != want.PaymentType || g.Operation != want.Operation ||
		g.FeeGroup != want.FeeGroup || g.WalletType != want.WalletType || g.KYCLevel == nil || *g.KYCLevel != 3 ||
		g.Method != want.Method || !same(g.AmountFrom, want.AmountFrom) || !same(g.AmountTo, want.AmountTo) ||
		!g.ValidFrom.Equal(want.ValidFrom) || !g.ValidTo.Equal(want.ValidTo) || !g.Fixed.Equal(want.Fixed) ||
		!g.Rate.Equal(want.Rate) || !same(g.Min, want.Min) || !same(g.Max, want.Max) || g.PaidBy != want.PaidBy ||
		!g.VATExempt || g.Rounding != Up || g.Disabled {
		t.Errorf("stored %+v\nread   %+v", want, g)
	}
	open, err := rules.Create(e.ctx, Definition{Code: "open", Subsidiary: "SG01", Currency: "USD", Fixed: dec("1.00")})
	if err != nil {
		t.Fatal(err)
	}
	got, err = rules.List(e.ctx, "SG01", false)
	if err != nil || len(got) != 2 {
		t.Fatalf("List = %+v, %v", got, err)
	}
	if g := got[1]; g.ID != open.ID || g.PaymentType != "" || g.KYCLevel != nil || g.AmountFrom.Valid || !g.ValidFrom.IsZero() ||
		g.Min.Valid || g.PaidBy != PaidByPayer || g.Rounding != HalfUp {
		t.Errorf("a definition without selectors read back as %+v", g)
	}
}

// Rules that reload while a batch is processed do not reach the rest of the batch: its
// payments are priced from the wallets its Prepare read, not one by one from a new,
// empty snapshot. The next batch sees the new facts.
func TestABatchIsPricedFromWhatItsPrepareRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rules := NewRules(e.db.Pool, e.led)
	if _, err := rules.Create(e.ctx, def(func(d *Definition) { d.Code, d.WalletType, d.KYCLevel = "business", "business", kyc(2) })); err != nil {
		t.Fatal(err)
	}
	s := e.stage(t)
	batch := func() *schemas.Payment {
		p := e.pay()
		if err := s.Prepare(e.ctx, []*processors.Input{{Topic: catalog.PaymentsScreened, Value: p}}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := batch() // the payer is a personal wallet
	id, _ := ledger.ParseWalletRef(e.payer)
	if err := e.led.SetWalletType(e.ctx, id, "business"); err != nil {
		t.Fatal(err)
	}
	if err := s.snaps.Refresh(e.ctx); err != nil { // as a background reload lands
		t.Fatal(err)
	}
	checkLines(t, process(t, s, p).Fees)
	checkLines(t, process(t, s, batch()).Fees, line{"payer:business", "0.5", "0", "0"})
}
