package ledger

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

func TestCheckDebit(t *testing.T) {
	t.Parallel()
	noOverdraft := accountMeta{noOverdraft: true}
	cases := []struct {
		name string
		b    balance
		m    accountMeta
		amt  int64
		pend int64
		mcc  string
		want error
	}{
		{"covered", balance{cPost: 1000}, noOverdraft, 1000, 0, "", nil},
		{"one unit short", balance{cPost: 1000}, noOverdraft, 1001, 0, "", ErrInsufficientFunds},
		{"pending debits count", balance{cPost: 1000, dPend: 500}, noOverdraft, 501, 0, "", ErrInsufficientFunds},
		{"reserve needs funds", balance{cPost: 1000}, noOverdraft, 0, 1001, "", ErrInsufficientFunds},
		{"overdraft limit", balance{cPost: 0, minBalance: -2000}, noOverdraft, 2000, 0, "", nil},
		{"beyond overdraft limit", balance{cPost: 0, minBalance: -2000}, noOverdraft, 2001, 0, "", ErrInsufficientFunds},
		{"minimum above zero", balance{cPost: 1000, minBalance: 100}, noOverdraft, 901, 0, "", ErrInsufficientFunds},
		{"other shards count", balance{cPost: 0, others: 700}, noOverdraft, 700, 0, "", nil},
		{"allow mode overdraws", balance{}, accountMeta{}, 5000, 0, "", nil},
		{"release below minimum is fine", balance{cPost: 0, dPend: 500, minBalance: 100}, noOverdraft, 0, -500, "", nil},
		{"capture of reserved funds", balance{cPost: 500, dPend: 500}, noOverdraft, 500, -500, "", nil},
		{"release more than pending", balance{dPend: 10}, accountMeta{}, 0, -11, "", ErrInvalid},
		{"closed", balance{cPost: 1000, closed: true}, noOverdraft, 1, 0, "", ErrAccountClosed},
		{"closed still releases", balance{dPend: 10, closed: true}, noOverdraft, 0, -10, "", nil},
		{"frozen", balance{cPost: 1000, frozen: true}, noOverdraft, 1, 0, "", ErrAccountFrozen},
		{"credit only", balance{cPost: 1000}, accountMeta{creditOnly: true}, 1, 0, "", ErrCreditOnly},
		{"mcc allowed", balance{cPost: 1000, allowedMCC: []string{"5411"}}, noOverdraft, 1, 0, "5411", nil},
		{"mcc refused", balance{cPost: 1000, allowedMCC: []string{"5411"}}, noOverdraft, 1, 0, "5812", ErrMCCNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := &leg{debit: 1, amt: c.amt, pend: c.pend, mcc: c.mcc}
			if err := checkDebit(&c.b, c.m, l); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestCheckCredit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		b         balance
		amt, pend int64
		want      error
	}{
		{"open", balance{}, 10, 0, nil},
		{"closed", balance{closed: true}, 10, 0, ErrAccountClosed},
		{"closed still releases", balance{closed: true, cPend: 10}, 0, -10, nil},
		{"frozen receives", balance{frozen: true}, 10, 0, nil},
		{"release more than pending", balance{cPend: 5}, 0, -6, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := checkCredit(&c.b, &leg{credit: 2, amt: c.amt, pend: c.pend}); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestShardFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		m         accountMeta
		debit     bool
		partition int
		want      int16
	}{
		{"cold account", accountMeta{}, false, 7, 0},
		{"hot credit spreads", accountMeta{shards: 4}, false, 7, 4},
		{"hot credit partition 0", accountMeta{shards: 4}, false, 0, 1},
		{"hot debit with a rule stays on 0", accountMeta{shards: 4, noOverdraft: true}, true, 7, 0},
		{"hot debit without a rule spreads", accountMeta{shards: 4}, true, 5, 2},
		{"negative partition", accountMeta{shards: 4}, false, -3, 4},
		{"shard-checked debit spreads", accountMeta{shards: 4, noOverdraft: true, shardDebits: true}, true, 6, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := shardFor(c.m, c.debit, c.partition); got != c.want {
				t.Fatalf("shard %d, want %d", got, c.want)
			}
		})
	}
}

func TestToUnits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		amount string
		exp    int32
		want   int64
		ok     bool
	}{
		{"12.34", 2, 1234, true},
		{"12.3", 2, 1230, true},
		{"12.300", 2, 1230, true},
		{"5", 0, 5, true},
		{"0", 2, 0, true},
		{"-0.5", 3, -500, true},
		{"1.234", 3, 1234, true},
		{"999999999999999.99", 2, 99999999999999999, true},
		{"1000000000000000", 2, 0, false},
		{"123456789012345678901", 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.amount, func(t *testing.T) {
			got, ok := toUnits(decimal.RequireFromString(c.amount), c.exp)
			if got != c.want || ok != c.ok {
				t.Fatalf("toUnits(%s, %d) = %d, %v; want %d, %v", c.amount, c.exp, got, ok, c.want, c.ok)
			}
			if ok && !fromUnits(got, c.exp).Equal(decimal.RequireFromString(c.amount)) {
				t.Fatalf("round trip of %s gives %s", c.amount, fromUnits(got, c.exp))
			}
		})
	}
}

func TestCheckAmount(t *testing.T) {
	t.Parallel()
	cs := currencies{"USD": {Code: "USD", Exponent: 2}, "JPY": {Code: "JPY", Exponent: 0}, "BHD": {Code: "BHD", Exponent: 3}}
	cases := []struct {
		amount, currency string
		want             error
	}{
		{"10.25", "USD", nil},
		{"10.250", "USD", nil}, // trailing zeros are not extra digits
		{"10.255", "USD", ErrTooManyDecimals},
		{"100", "JPY", nil},
		{"100.5", "JPY", ErrTooManyDecimals},
		{"1.005", "BHD", nil},
		{"0", "USD", ErrNotPositive},
		{"-1", "USD", ErrNotPositive},
		{"1", "XXX", ErrUnknownCurrency},
		{"1e20", "USD", ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.amount+" "+c.currency, func(t *testing.T) {
			err := cs.checkAmount("amount", decimal.RequireFromString(c.amount), c.currency)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestParseUnits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		s    string
		exp  int32
		want int64
		ok   bool
	}{
		{"0", 2, 0, true},
		{"12.34", 2, 1234, true},
		{"12.3", 2, 1230, true},
		{"12.3400", 2, 1234, true},
		{"-20", 2, -2000, true},
		{"5", 0, 5, true},
		{"12.345", 2, 0, false},
		{"1.5", 0, 0, false},
		{"abc", 2, 0, false},
		{"", 2, 0, false},
		{"99999999999999999999", 2, 0, false},
	}
	for _, c := range cases {
		t.Run(c.s, func(t *testing.T) {
			got, ok := parseUnits([]byte(c.s), c.exp)
			if got != c.want || ok != c.ok {
				t.Fatalf("parseUnits(%q, %d) = %d, %v; want %d, %v", c.s, c.exp, got, ok, c.want, c.ok)
			}
		})
	}
	if got := ceilUnits([]byte("-0.005"), 2); got != 0 {
		t.Fatalf("ceil(-0.005) = %d, want 0", got)
	}
	if got := floorUnits([]byte("0.019"), 2); got != 1 {
		t.Fatalf("floor(0.019) = %d, want 1", got)
	}
}
