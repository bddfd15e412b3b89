package fee

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestPayment is a 100.00 USD P2P transfer in SG01 unless opts say otherwise.
func newTestPayment(opts ...func(*schemas.Payment)) *schemas.Payment {
	p := &schemas.Payment{Meta: schemas.Meta{EventID: "e1", PaymentID: "pay_1"}, CreatedAt: t0, Subsidiary: "SG01",
		Type: "transfer", PayerWallet: "wal_1", PayeeWallet: "wal_2",
		Amount: schemas.Money{Amount: decimal.RequireFromString("100.00"), Currency: "USD"}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func amount(a, cur string) func(*schemas.Payment) {
	return func(p *schemas.Payment) {
		p.Amount = schemas.Money{Amount: decimal.RequireFromString(a), Currency: cur}
	}
}
func ptype(t string) func(*schemas.Payment)     { return func(p *schemas.Payment) { p.Type = t } }
func operation(o string) func(*schemas.Payment) { return func(p *schemas.Payment) { p.Operation = o } }
func method(m string) func(*schemas.Payment)    { return func(p *schemas.Payment) { p.Method = m } }
func at(t time.Time) func(*schemas.Payment)     { return func(p *schemas.Payment) { p.CreatedAt = t } }

var exponents = map[string]int32{"USD": 2, "JPY": 0, "BHD": 3}

// testFacts are a payment's facts with a known payer and merchant in the default fee
// group and a 10 % VAT rate.
func testFacts(p *schemas.Payment, adjust ...func(*Facts)) Facts {
	f := NewFacts(p, p.Subsidiary, exponents[p.Amount.Currency])
	f.VATRate = decimal.RequireFromString("0.10")
	f.Payer = Party{Known: true, FeeGroup: "default", WalletType: "personal", KYCLevel: 2}
	f.Merchant = Party{Known: true, FeeGroup: "merchants", WalletType: "business", KYCLevel: 3}
	for _, a := range adjust {
		a(&f)
	}
	return f
}

func dec(s string) decimal.Decimal      { return decimal.RequireFromString(s) }
func ndec(s string) decimal.NullDecimal { return decimal.NewNullDecimal(dec(s)) }
func kyc(n int) *int                    { return &n }
func def(mods ...func(*Definition)) Definition {
	d := Definition{Code: "p2p_fee", Subsidiary: "SG01", Currency: "USD", PaymentType: "transfer",
		Rate: dec("0.005"), PaidBy: PaidByPayer, Rounding: HalfUp}
	for _, m := range mods {
		m(&d)
	}
	return d
}

type line struct{ code, amount, vat, rate string }

func TestCompute(t *testing.T) {
	t.Parallel()
	p2p := func(d *Definition) { d.Min, d.Max = ndec("0.10"), ndec("5.00") }
	mdr := func(d *Definition) {
		d.Code, d.PaymentType, d.Rate, d.PaidBy = "mdr", "merchant_payment", dec("0.015"), PaidByMerchant
	}
	for _, tc := range []struct {
		name  string
		defs  []Definition
		p     *schemas.Payment
		facts []func(*Facts)
		want  []line
	}{
		{"rate with VAT", []Definition{def(p2p)}, newTestPayment(), nil,
			[]line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}}},
		{"min clamp", []Definition{def(p2p)}, newTestPayment(amount("10.00", "USD")), nil,
			[]line{{"payer:p2p_fee", "0.1", "0.01", "0.1"}}},
		{"max clamp", []Definition{def(p2p)}, newTestPayment(amount("2000.00", "USD")), nil,
			[]line{{"payer:p2p_fee", "5", "0.5", "0.1"}}},
		{"just under max", []Definition{def(p2p)}, newTestPayment(amount("999.99", "USD")), nil,
			[]line{{"payer:p2p_fee", "5", "0.5", "0.1"}}}, // 4.99995 rounds half-up to 5.00
		{"half-up at exactly half a cent", []Definition{def()}, newTestPayment(amount("5.00", "USD")), nil,
			[]line{{"payer:p2p_fee", "0.03", "0", "0.1"}}}, // 0.025 -> 0.03 (banker's would give 0.02); VAT 0.003 -> 0
		{"half-up below half a cent", []Definition{def()}, newTestPayment(amount("4.98", "USD")), nil,
			[]line{{"payer:p2p_fee", "0.02", "0", "0.1"}}}, // 0.0249 -> 0.02
		{"rounding down", []Definition{def(func(d *Definition) { d.Rounding = Down })}, newTestPayment(amount("5.98", "USD")), nil,
			[]line{{"payer:p2p_fee", "0.02", "0", "0.1"}}}, // 0.0299 -> 0.02
		{"rounding up", []Definition{def(func(d *Definition) { d.Rounding = Up })}, newTestPayment(amount("4.02", "USD")), nil,
			[]line{{"payer:p2p_fee", "0.03", "0", "0.1"}}}, // 0.0201 -> 0.03
		{"rounding up leaves exact amounts", []Definition{def(func(d *Definition) { d.Rounding = Up })}, newTestPayment(amount("4.00", "USD")), nil,
			[]line{{"payer:p2p_fee", "0.02", "0", "0.1"}}},
		{"VAT rounds half-up", []Definition{def(func(d *Definition) { d.Fixed, d.Rate = dec("0.15"), decimal.Zero })}, newTestPayment(), nil,
			[]line{{"payer:p2p_fee", "0.15", "0.02", "0.1"}}}, // 0.015 -> 0.02
		{"fixed plus rate", []Definition{def(func(d *Definition) { d.Fixed, d.Rate = dec("0.30"), dec("0.029") })}, newTestPayment(amount("10.00", "USD")), nil,
			[]line{{"payer:p2p_fee", "0.59", "0.06", "0.1"}}},
		{"zero-exponent currency", []Definition{def(func(d *Definition) { d.Currency, d.Rate = "JPY", dec("0.015") })}, newTestPayment(amount("100", "JPY")), nil,
			[]line{{"payer:p2p_fee", "2", "0", "0.1"}}}, // 1.5 -> 2, VAT 0.2 -> 0
		{"three-digit currency", []Definition{def(func(d *Definition) { d.Currency = "BHD" })}, newTestPayment(amount("10.101", "BHD")), nil,
			[]line{{"payer:p2p_fee", "0.051", "0.005", "0.1"}}}, // 0.050505 -> 0.051, VAT 0.0051 -> 0.005
		{"VAT exempt", []Definition{def(func(d *Definition) { d.VATExempt = true })}, newTestPayment(), nil,
			[]line{{"payer:p2p_fee", "0.5", "0", "0"}}},
		{"stacking adds lines in order", []Definition{def(p2p), def(func(d *Definition) { d.Code, d.Fixed, d.Rate = "instant", dec("1.00"), decimal.Zero })},
			newTestPayment(), nil, []line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}, {"payer:instant", "1", "0.1", "0.1"}}},
		{"no definitions is free", nil, newTestPayment(), nil, []line{}},
		{"a zero fee adds no line", []Definition{def(func(d *Definition) { d.Rate = decimal.Zero })}, newTestPayment(), nil, []line{}},
		{"a fee rounding to zero adds no line", []Definition{def()}, newTestPayment(amount("0.99", "USD")), nil, []line{}}, // 0.00495 -> 0.00
		{"other type", []Definition{def(p2p)}, newTestPayment(ptype("withdrawal")), nil, []line{}},
		{"any type", []Definition{def(func(d *Definition) { d.PaymentType = "" })}, newTestPayment(ptype("withdrawal")), nil,
			[]line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}}},
		{"other currency", []Definition{def(p2p)}, newTestPayment(amount("100.00", "EUR")), nil, []line{}},
		{"other subsidiary", []Definition{def(func(d *Definition) { d.Subsidiary = "VN01" })}, newTestPayment(), nil, []line{}},
		{"disabled", []Definition{def(func(d *Definition) { d.Disabled = true })}, newTestPayment(), nil, []line{}},
		{"operations are free by default", []Definition{def(p2p)}, newTestPayment(operation("refund")), nil, []line{}},
		{"a definition for the operation prices it", []Definition{def(p2p), def(func(d *Definition) {
			d.Code, d.Operation, d.Fixed, d.Rate = "refund_fee", "refund", dec("0.25"), decimal.Zero
		})},
			newTestPayment(operation("refund")), nil, []line{{"payer:refund_fee", "0.25", "0.03", "0.1"}}},
		{"amount at the range start matches", []Definition{def(func(d *Definition) { d.AmountFrom, d.AmountTo = ndec("100.00"), ndec("200.00") })}, newTestPayment(), nil,
			[]line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}}},
		{"amount at the range end does not", []Definition{def(func(d *Definition) { d.AmountFrom, d.AmountTo = ndec("50.00"), ndec("100.00") })}, newTestPayment(), nil, []line{}},
		{"tiers pick one", []Definition{
			def(func(d *Definition) {
				d.Code, d.AmountTo, d.Fixed, d.Rate = "small", ndec("100.00"), dec("1.00"), decimal.Zero
			}),
			def(func(d *Definition) {
				d.Code, d.AmountFrom, d.Fixed, d.Rate = "large", ndec("100.00"), dec("2.00"), decimal.Zero
			}),
		}, newTestPayment(), nil, []line{{"payer:large", "2", "0.2", "0.1"}}},
		{"at validity start matches", []Definition{def(func(d *Definition) { d.ValidFrom, d.ValidTo = t0, t0.Add(time.Hour) })}, newTestPayment(), nil,
			[]line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}}},
		{"at validity end does not", []Definition{def(func(d *Definition) { d.ValidFrom, d.ValidTo = t0.Add(-time.Hour), t0 })}, newTestPayment(), nil, []line{}},
		{"before validity", []Definition{def(func(d *Definition) { d.ValidFrom = t0 })}, newTestPayment(at(t0.Add(-time.Nanosecond))), nil, []line{}},
		{"method selector", []Definition{def(func(d *Definition) { d.Method = "card" })}, newTestPayment(method("bank")), nil, []line{}},
		{"method selector matches", []Definition{def(func(d *Definition) { d.Method = "card" })}, newTestPayment(method("card")), nil,
			[]line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}}},
		{"fee group of the payer", []Definition{def(func(d *Definition) { d.FeeGroup = "vip" })}, newTestPayment(), nil, []line{}},
		{"fee group of the payer matches", []Definition{def(func(d *Definition) { d.FeeGroup = "vip" })}, newTestPayment(),
			[]func(*Facts){func(f *Facts) { f.Payer.FeeGroup = "vip" }}, []line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}}},
		{"wallet type", []Definition{def(func(d *Definition) { d.WalletType = "business" })}, newTestPayment(), nil, []line{}},
		{"KYC level", []Definition{def(func(d *Definition) { d.KYCLevel = kyc(1) })}, newTestPayment(), nil, []line{}},
		{"KYC level matches", []Definition{def(func(d *Definition) { d.KYCLevel = kyc(2) })}, newTestPayment(), nil,
			[]line{{"payer:p2p_fee", "0.5", "0.05", "0.1"}}},
		{"merchant pays, selected on the merchant's group", []Definition{def(mdr, func(d *Definition) { d.FeeGroup = "merchants" })},
			newTestPayment(ptype("merchant_payment")), nil, []line{{"merchant:mdr", "1.5", "0.15", "0.1"}}},
		{"merchant fee needs a merchant", []Definition{def(mdr)}, newTestPayment(ptype("merchant_payment")),
			[]func(*Facts){func(f *Facts) { f.Merchant = Party{} }}, []line{}},
		{"payer and merchant fees together", []Definition{def(mdr), def(func(d *Definition) {
			d.PaymentType, d.Code, d.Fixed, d.Rate = "merchant_payment", "convenience", dec("0.20"), decimal.Zero
		})},
			newTestPayment(ptype("merchant_payment")), nil, []line{{"merchant:mdr", "1.5", "0.15", "0.1"}, {"payer:convenience", "0.2", "0.02", "0.1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compute(tc.defs, testFacts(tc.p, tc.facts...))
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("Compute returned nil; a priced payment has a non-nil slice")
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines %+v, want %+v", len(got), got, tc.want)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Code != w.code || !g.Amount.Amount.Equal(dec(w.amount)) || !g.VAT.Amount.Equal(dec(w.vat)) ||
					g.VATRate != w.rate || g.Amount.Currency != tc.p.Amount.Currency || g.VAT.Currency != tc.p.Amount.Currency {
					t.Errorf("line %d = %s %s VAT %s at %s, want %+v", i, g.Code, g.Amount, g.VAT, g.VATRate, w)
				}
				if exp := exponents[tc.p.Amount.Currency]; !g.Amount.Amount.Equal(g.Amount.Amount.Truncate(exp)) || !g.VAT.Amount.Equal(g.VAT.Amount.Truncate(exp)) {
					t.Errorf("line %d has more than %d fraction digits: %s, %s", i, exp, g.Amount, g.VAT)
				}
			}
		})
	}
}

func TestComputeRefusesAnUnknownRounding(t *testing.T) {
	t.Parallel()
	_, err := Compute([]Definition{def(func(d *Definition) { d.Rounding = "bankers" })}, testFacts(newTestPayment()))
	if !errors.Is(err, ErrInvalidDefinition) {
		t.Fatalf("got %v, want ErrInvalidDefinition", err)
	}
}

func TestDefinitionValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*Definition)
		ok   bool
	}{
		{"valid", func(*Definition) {}, true},
		{"bad code", func(d *Definition) { d.Code = "P2P Fee" }, false},
		{"rate of 1", func(d *Definition) { d.Rate = dec("1") }, false},
		{"negative fixed", func(d *Definition) { d.Fixed = dec("-0.01") }, false},
		{"fixed below a cent", func(d *Definition) { d.Fixed = dec("0.001") }, false},
		{"min above max", func(d *Definition) { d.Min, d.Max = ndec("2.00"), ndec("1.00") }, false},
		{"empty range", func(d *Definition) { d.AmountFrom, d.AmountTo = ndec("5"), ndec("5") }, false},
		{"empty window", func(d *Definition) { d.ValidFrom, d.ValidTo = t0, t0 }, false},
		{"unknown operation", func(d *Definition) { d.Operation = "reverse" }, false},
		{"unknown party", func(d *Definition) { d.PaidBy = "payee" }, false},
		{"unknown rounding", func(d *Definition) { d.Rounding = "bankers" }, false},
		{"KYC level 4", func(d *Definition) { d.KYCLevel = kyc(4) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := def(tc.mod)
			err := d.Validate(2)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidDefinition) {
				t.Fatalf("%v does not wrap ErrInvalidDefinition", err)
			}
		})
	}
}

func TestLineCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code   string
		paidBy PaidBy
		name   string
		ok     bool
	}{
		{"payer:p2p_fee", PaidByPayer, "p2p_fee", true},
		{"merchant:mdr", PaidByMerchant, "mdr", true},
		{"p2p_fee", "", "", false},
		{"payee:x", "", "", false},
		{"payer:", "", "", false},
	} {
		by, name, ok := SplitLineCode(tc.code)
		if by != tc.paidBy || name != tc.name || ok != tc.ok {
			t.Errorf("SplitLineCode(%q) = %q, %q, %v", tc.code, by, name, ok)
		}
		if ok && LineCode(by, name) != tc.code {
			t.Errorf("LineCode does not round-trip %q", tc.code)
		}
	}
}
