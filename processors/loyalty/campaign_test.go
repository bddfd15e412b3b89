package loyalty

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestPayment is a 100.00 USD merchant payment from wal_1 to wal_9 (MCC 5411) in SG01
// unless opts say otherwise.
func newTestPayment(opts ...func(*schemas.Payment)) *schemas.Payment {
	p := &schemas.Payment{Meta: schemas.Meta{EventID: "e1", PaymentID: "pay_1"}, CreatedAt: t0, Subsidiary: "SG01",
		Type: "merchant_payment", PayerWallet: "wal_1", PayeeWallet: "wal_9", MCC: "5411",
		Amount: schemas.Money{Amount: dec("100.00"), Currency: "USD"}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func amount(a, cur string) func(*schemas.Payment) {
	return func(p *schemas.Payment) { p.Amount = schemas.Money{Amount: dec(a), Currency: cur} }
}
func ptype(t string) func(*schemas.Payment)  { return func(p *schemas.Payment) { p.Type = t } }
func payee(w string) func(*schemas.Payment)  { return func(p *schemas.Payment) { p.PayeeWallet = w } }
func mcc(m string) func(*schemas.Payment)    { return func(p *schemas.Payment) { p.MCC = m } }
func at(t time.Time) func(*schemas.Payment)  { return func(p *schemas.Payment) { p.CreatedAt = t } }
func payID(id string) func(*schemas.Payment) { return func(p *schemas.Payment) { p.PaymentID = id } }

func dec(s string) decimal.Decimal      { return decimal.RequireFromString(s) }
func ndec(s string) decimal.NullDecimal { return decimal.NewNullDecimal(dec(s)) }

func campaign(mods ...func(*Campaign)) Campaign {
	c := Campaign{ID: "spring", Subsidiary: "SG01", Currency: "USD", PaymentTypes: []string{"merchant_payment"},
		Kind: Discount, Rate: dec("0.05")}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func TestEligible(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    func(*Campaign)
		p    *schemas.Payment
		want bool
	}{
		{"matches", nil, newTestPayment(), true},
		{"other type", nil, newTestPayment(ptype("transfer")), false},
		{"any type", func(c *Campaign) { c.Kind, c.PaymentTypes = Rebate, nil }, newTestPayment(ptype("transfer")), true},
		{"listed merchant", func(c *Campaign) { c.Merchants = []string{"wal_8", "wal_9"} }, newTestPayment(), true},
		{"other merchant", func(c *Campaign) { c.Merchants = []string{"wal_8"} }, newTestPayment(), false},
		{"paid to another wallet", func(c *Campaign) { c.Merchants = []string{"wal_9"} }, newTestPayment(payee("wal_7")), false},
		{"listed MCC", func(c *Campaign) { c.MCCs = []string{"5411", "5812"} }, newTestPayment(), true},
		{"other MCC", func(c *Campaign) { c.MCCs = []string{"5812"} }, newTestPayment(), false},
		{"no MCC", func(c *Campaign) { c.MCCs = []string{"5812"} }, newTestPayment(mcc("")), false},
		{"at start", func(c *Campaign) { c.StartsAt = t0 }, newTestPayment(), true},
		{"before start", func(c *Campaign) { c.StartsAt = t0 }, newTestPayment(at(t0.Add(-time.Second))), false},
		{"at end", func(c *Campaign) { c.EndsAt = t0 }, newTestPayment(), false},
		{"before end", func(c *Campaign) { c.EndsAt = t0 }, newTestPayment(at(t0.Add(-time.Nanosecond))), true},
		{"at minimum", func(c *Campaign) { c.MinAmount = dec("100.00") }, newTestPayment(), true},
		{"below minimum", func(c *Campaign) { c.MinAmount = dec("100.01") }, newTestPayment(), false},
		{"other currency", nil, newTestPayment(amount("100.00", "EUR")), false},
		{"other subsidiary", func(c *Campaign) { c.Subsidiary = "VN01" }, newTestPayment(), false},
		{"stopped", func(c *Campaign) { c.Stopped = true }, newTestPayment(), false},
		{"an operation", nil, newTestPayment(func(p *schemas.Payment) { p.Operation = "capture" }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := campaign()
			if tc.c != nil {
				tc.c(&c)
			}
			if got := c.Eligible(tc.p); got != tc.want {
				t.Errorf("Eligible = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReward(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		c      func(*Campaign)
		p      *schemas.Payment
		exp    int32
		ok     bool
		amount string
		points int64
	}{
		{"5 % discount", nil, newTestPayment(), 2, true, "5", 0},
		{"discount rounds half-up", nil, newTestPayment(amount("10.10", "USD")), 2, true, "0.51", 0}, // 0.505
		{"discount rounds half-up, below half", nil, newTestPayment(amount("10.09", "USD")), 2, true, "0.5", 0},
		{"discount capped by MaxReward", func(c *Campaign) { c.MaxReward = ndec("3.00") }, newTestPayment(), 2, true, "3", 0},
		{"fixed discount", func(c *Campaign) { c.Rate, c.Fixed = decimal.Zero, dec("2.00") }, newTestPayment(), 2, true, "2", 0},
		{"discount leaves a cent to pay", func(c *Campaign) { c.Rate, c.Fixed = decimal.Zero, dec("50.00") }, newTestPayment(amount("20.00", "USD")), 2, true, "19.99", 0},
		{"100 % discount leaves a yen", func(c *Campaign) { c.Currency, c.Rate = "JPY", dec("1") }, newTestPayment(amount("500", "JPY")), 0, true, "499", 0},
		{"discount rounding to zero", nil, newTestPayment(amount("0.09", "USD")), 2, false, "0", 0},
		{"rebate", func(c *Campaign) { c.Kind, c.Rate = Rebate, dec("0.01") }, newTestPayment(amount("250.00", "USD")), 2, true, "2.5", 0},
		{"rebate is not limited by the price", func(c *Campaign) { c.Kind, c.Rate, c.Fixed = Rebate, decimal.Zero, dec("50.00") }, newTestPayment(amount("20.00", "USD")), 2, true, "50", 0},
		{"points per unit, floored", func(c *Campaign) { c.Kind, c.PointsPerUnit = Points, ndec("1") }, newTestPayment(amount("12.99", "USD")), 2, true, "0", 12},
		{"fractional points rate", func(c *Campaign) { c.Kind, c.PointsPerUnit = Points, ndec("2.5") }, newTestPayment(amount("10.00", "USD")), 2, true, "0", 25},
		{"no whole point", func(c *Campaign) { c.Kind, c.PointsPerUnit = Points, ndec("1") }, newTestPayment(amount("0.99", "USD")), 2, false, "0", 0},
		{"random within fixed bounds", func(c *Campaign) { c.Kind, c.RandomMin, c.RandomMax = RandomReduction, ndec("1.00"), ndec("1.00") }, newTestPayment(), 2, true, "1", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := campaign()
			if tc.c != nil {
				tc.c(&c)
			}
			r, ok := c.Reward(tc.p, tc.exp)
			if ok != tc.ok {
				t.Fatalf("Reward = %+v, %v; want ok %v", r, ok, tc.ok)
			}
			if !ok {
				return
			}
			if !r.Amount.Amount.Equal(dec(tc.amount)) || r.Points != tc.points || r.Kind != string(c.Kind) ||
				r.Campaign != c.ID || r.Amount.Currency != tc.p.Amount.Currency {
				t.Errorf("Reward = %+v, want amount %s points %d", r, tc.amount, tc.points)
			}
		})
	}
}

func TestRandomAmountIsDeterministicAndWithinBounds(t *testing.T) {
	t.Parallel()
	lo, hi := dec("0.50"), dec("2.00")
	seen := map[string]bool{}
	for i := range 500 {
		id := fmt.Sprintf("pay_%032x", i)
		a := RandomAmount(id, "lucky", lo, hi, 2)
		if b := RandomAmount(id, "lucky", lo, hi, 2); !a.Equal(b) {
			t.Fatalf("payment %s drew %s then %s", id, a, b)
		}
		if a.LessThan(lo) || a.GreaterThan(hi) || !a.Equal(a.Truncate(2)) {
			t.Fatalf("payment %s drew %s, outside [%s, %s] or finer than a cent", id, a, lo, hi)
		}
		seen[a.String()] = true
	}
	// 151 possible amounts and 500 draws: a uniform draw hits nearly all, both ends included.
	if len(seen) < 120 || !seen["0.5"] || !seen["2"] {
		t.Errorf("500 draws gave %d distinct amounts (ends: %v, %v); the draw is not spread over the range", len(seen), seen["0.5"], seen["2"])
	}
	differ := 0
	for i := range 50 {
		id := fmt.Sprintf("pay_%d", i)
		if !RandomAmount(id, "a", lo, hi, 2).Equal(RandomAmount(id, "b", lo, hi, 2)) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("two campaigns draw the same amounts for every payment")
	}
	if got := RandomAmount("p", "c", dec("3"), dec("3"), 0); !got.Equal(dec("3")) {
		t.Errorf("a degenerate range drew %s", got)
	}
}

func TestApplyCap(t *testing.T) {
	t.Parallel()
	cash := schemas.Reward{Kind: string(Rebate), Amount: schemas.Money{Amount: dec("5.00"), Currency: "USD"}}
	pts := schemas.Reward{Kind: string(Points), Points: 40}
	for _, tc := range []struct {
		name   string
		c      func(*Campaign)
		r      schemas.Reward
		u      Usage
		ok     bool
		amount string
		points int64
	}{
		{"no caps", nil, cash, Usage{Count: 99, Total: dec("1000")}, true, "5", 0},
		{"under the count", func(c *Campaign) { c.CapCount = 3 }, cash, Usage{Count: 2}, true, "5", 0},
		{"at the count", func(c *Campaign) { c.CapCount = 3 }, cash, Usage{Count: 3}, false, "", 0},
		{"amount left covers it", func(c *Campaign) { c.CapAmount = ndec("10.00") }, cash, Usage{Count: 1, Total: dec("5.00")}, true, "5", 0},
		{"cut to what is left", func(c *Campaign) { c.CapAmount = ndec("10.00") }, cash, Usage{Count: 2, Total: dec("8.50")}, true, "1.5", 0},
		{"nothing left", func(c *Campaign) { c.CapAmount = ndec("10.00") }, cash, Usage{Count: 2, Total: dec("10.00")}, false, "", 0},
		{"points cut", func(c *Campaign) { c.Kind, c.CapAmount = Points, ndec("100") }, pts, Usage{Count: 3, Total: dec("75")}, true, "", 25},
		{"points none left", func(c *Campaign) { c.Kind, c.CapAmount = Points, ndec("100") }, pts, Usage{Count: 3, Total: dec("100")}, false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := campaign()
			if tc.c != nil {
				tc.c(&c)
			}
			r, ok := c.ApplyCap(tc.r, tc.u)
			if ok != tc.ok {
				t.Fatalf("ApplyCap = %+v, %v; want ok %v", r, ok, tc.ok)
			}
			if ok && ((tc.amount != "" && !r.Amount.Amount.Equal(dec(tc.amount))) || r.Points != tc.points) {
				t.Errorf("ApplyCap = %+v, want amount %s points %d", r, tc.amount, tc.points)
			}
		})
	}
	u := Usage{}.Add(cash).Add(cash).Add(pts)
	if u.Count != 3 || !u.Total.Equal(dec("50")) {
		t.Errorf("usage after two 5.00 rewards and 40 points = %+v", u)
	}
}

func TestCampaignValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*Campaign)
		ok   bool
	}{
		{"valid discount", func(*Campaign) {}, true},
		{"valid rebate on anything", func(c *Campaign) { c.Kind, c.PaymentTypes = Rebate, nil }, true},
		{"valid points", func(c *Campaign) { c.Kind, c.PointsPerUnit = Points, ndec("1") }, true},
		{"valid random", func(c *Campaign) { c.Kind, c.RandomMin, c.RandomMax = RandomReduction, ndec("0.10"), ndec("1.00") }, true},
		{"bad id", func(c *Campaign) { c.ID = "Spring Sale" }, false},
		{"unknown kind", func(c *Campaign) { c.Kind = "voucher" }, false},
		{"discount on transfers", func(c *Campaign) { c.PaymentTypes = []string{"transfer"} }, false},
		{"discount on any type", func(c *Campaign) { c.PaymentTypes = nil }, false},
		{"discount of nothing", func(c *Campaign) { c.Rate = decimal.Zero }, false},
		{"rate above 1", func(c *Campaign) { c.Rate = dec("1.5") }, false},
		{"max below a cent", func(c *Campaign) { c.MaxReward = ndec("0.001") }, false},
		{"random without bounds", func(c *Campaign) { c.Kind = RandomReduction }, false},
		{"random min above max", func(c *Campaign) { c.Kind, c.RandomMin, c.RandomMax = RandomReduction, ndec("2.00"), ndec("1.00") }, false},
		{"points without a rate", func(c *Campaign) { c.Kind = Points }, false},
		{"fractional points cap", func(c *Campaign) { c.Kind, c.PointsPerUnit, c.CapAmount = Points, ndec("1"), ndec("10.5") }, false},
		{"empty window", func(c *Campaign) { c.StartsAt, c.EndsAt = t0, t0 }, false},
		{"valid redemption", func(c *Campaign) { c.Kind, c.PointValue = Redemption, ndec("0.01") }, true},
		{"redemption without a value", func(c *Campaign) { c.Kind = Redemption }, false},
		{"redemption with a cap", func(c *Campaign) { c.Kind, c.PointValue, c.CapCount = Redemption, ndec("0.01"), 2 }, false},
		{"redemption on transfers", func(c *Campaign) {
			c.Kind, c.PointValue, c.PaymentTypes = Redemption, ndec("0.01"), []string{"transfer"}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := campaign(tc.mod)
			err := c.Validate(2)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidCampaign) {
				t.Fatalf("%v does not wrap ErrInvalidCampaign", err)
			}
		})
	}
}

func TestPointsToRedeem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		meta   map[string]string
		points int64
		reason string
	}{
		{nil, 0, ""},
		{map[string]string{"other": "1"}, 0, ""},
		{map[string]string{MetaPointsToRedeem: "250"}, 250, ""},
		{map[string]string{MetaPointsToRedeem: "0"}, 0, ReasonPointsInvalid},
		{map[string]string{MetaPointsToRedeem: "-5"}, 0, ReasonPointsInvalid},
		{map[string]string{MetaPointsToRedeem: "1.5"}, 0, ReasonPointsInvalid},
		{map[string]string{MetaPointsToRedeem: "0100"}, 0, ReasonPointsInvalid},
		{map[string]string{MetaPointsToRedeem: "+100"}, 0, ReasonPointsInvalid},
		{map[string]string{MetaPointsToRedeem: "1000000000001"}, 0, ReasonPointsInvalid},
		{map[string]string{MetaPointsToRedeem: "lots"}, 0, ReasonPointsInvalid},
	} {
		p := newTestPayment(func(p *schemas.Payment) { p.Metadata = tc.meta })
		if n, reason := PointsToRedeem(p); n != tc.points || reason != tc.reason {
			t.Errorf("PointsToRedeem(%v) = %d, %q; want %d, %q", tc.meta, n, reason, tc.points, tc.reason)
		}
	}
}

func TestRedeem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		value  string
		points int64
		p      *schemas.Payment
		exp    int32
		amount string
		reason string
	}{
		{"a cent a point", "0.01", 333, newTestPayment(), 2, "3.33", ""},
		{"rounded down", "0.003", 333, newTestPayment(), 2, "0.99", ""}, // 0.999
		{"the whole payment", "0.01", 10000, newTestPayment(), 2, "100", ""},
		{"more than the payment", "0.01", 10001, newTestPayment(), 2, "", ReasonPointsExceedAmount},
		{"worth nothing", "0.001", 5, newTestPayment(), 2, "", ReasonPointsInvalid},
		{"yen", "0.5", 7, newTestPayment(amount("100", "JPY")), 0, "3", ""}, // 3.5
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := campaign(func(c *Campaign) { c.Kind, c.PointValue = Redemption, ndec(tc.value) })
			r, reason := c.Redeem(tc.p, tc.points, tc.exp)
			if reason != tc.reason {
				t.Fatalf("Redeem = %+v, %q; want reason %q", r, reason, tc.reason)
			}
			if reason == "" && (!r.Amount.Amount.Equal(dec(tc.amount)) || r.Points != tc.points || r.Kind != string(Redemption)) {
				t.Errorf("Redeem = %+v, want %s for %d points", r, tc.amount, tc.points)
			}
		})
	}
}
