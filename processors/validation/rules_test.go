package validation

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ledger"
)

// TestEachRule checks every reason code, and the payments each rule must let through, on
// the demo rule set (level 0 transfers at most 200 USD, withdrawals refused at level 0,
// every minimum 0.01).
func TestEachRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	usd := func() string { return f.wallet() }
	cases := []struct {
		name string
		pay  func() []paymentOpt
		want string
	}{
		{"transfer accepted", func() []paymentOpt { return []paymentOpt{from(usd()), to(usd())} }, ""},
		{"topup has no payer", func() []paymentOpt { return []paymentOpt{typ("topup"), to(usd())} }, ""},
		{"withdrawal has no payee", func() []paymentOpt { return []paymentOpt{typ("withdrawal"), from(usd())} }, ""},
		{"merchant payment to a merchant", func() []paymentOpt {
			return []paymentOpt{typ("merchant_payment"), from(usd()), to(f.wallet(merchant()))}
		}, ""},
		{"frozen payee may receive by default", func() []paymentOpt {
			w := usd()
			f.setStatus(w, ledger.WalletFrozen)
			return []paymentOpt{from(usd()), to(w)}
		}, ""},
		{"payee unknown", func() []paymentOpt { return []paymentOpt{from(usd()), to("wal_999999")} }, ReasonWalletNotFound},
		{"payer unknown", func() []paymentOpt { return []paymentOpt{from("wal_999998"), to(usd())} }, ReasonWalletNotFound},
		{"payer frozen", func() []paymentOpt {
			w := usd()
			f.setStatus(w, ledger.WalletFrozen)
			return []paymentOpt{from(w), to(usd())}
		}, ReasonWalletFrozen},
		{"payee closed", func() []paymentOpt {
			w := usd()
			f.setStatus(w, ledger.WalletClosed)
			return []paymentOpt{from(usd()), to(w)}
		}, ReasonWalletClosed},
		{"payer's user suspended", func() []paymentOpt {
			return []paymentOpt{from(f.wallet(userStatus("suspended"))), to(usd())}
		}, ReasonUserNotActive},
		{"payee has no account in the currency", func() []paymentOpt {
			return []paymentOpt{from(f.wallet(currencies("USD", "EUR"))), to(usd()), amount("5", "EUR")}
		}, ReasonAccountNotFound},
		{"payee account closed", func() []paymentOpt {
			w := usd()
			f.closeAccount(w, "USD")
			return []paymentOpt{from(usd()), to(w)}
		}, ReasonAccountClosed},
		{"at the level 0 maximum", func() []paymentOpt {
			return []paymentOpt{from(f.wallet(kyc(0))), to(usd()), amount("200", "USD")}
		}, ""},
		{"above the level 0 maximum", func() []paymentOpt {
			return []paymentOpt{from(f.wallet(kyc(0))), to(usd()), amount("200.01", "USD")}
		}, ReasonKYCLimitExceeded},
		{"level 3 has no maximum", func() []paymentOpt {
			return []paymentOpt{from(f.wallet(kyc(3))), to(usd()), amount("123456789", "USD")}
		}, ""},
		{"top-up limit is the payee's level", func() []paymentOpt {
			return []paymentOpt{typ("topup"), to(f.wallet(kyc(0))), amount("600", "USD")}
		}, ReasonKYCLimitExceeded},
		{"withdrawal refused at level 0", func() []paymentOpt {
			return []paymentOpt{typ("withdrawal"), from(f.wallet(kyc(0)))}
		}, ReasonTypeNotPermitted},
		{"merchant payment to a customer", func() []paymentOpt {
			return []paymentOpt{typ("merchant_payment"), from(usd()), to(usd())}
		}, ReasonNotAMerchant},
		{"same wallet", func() []paymentOpt { w := usd(); return []paymentOpt{from(w), to(w)} }, ReasonSameWallet},
		{"malformed wallet reference", func() []paymentOpt { return []paymentOpt{from("wal_x"), to(usd())} }, ReasonInvalidWalletRef},
		{"transfer without payee", func() []paymentOpt { return []paymentOpt{from(usd())} }, ReasonMissingWallet},
		{"top-up with a payer", func() []paymentOpt { return []paymentOpt{typ("topup"), from(usd()), to(usd())} }, ReasonInvalidRecord},
		{"unknown type", func() []paymentOpt { return []paymentOpt{typ("p2p"), from(usd()), to(usd())} }, ReasonUnsupportedType},
		{"unknown currency", func() []paymentOpt { return []paymentOpt{from(usd()), to(usd()), amount("1", "XXX")} }, ReasonUnknownCurrency},
		{"too many fraction digits", func() []paymentOpt {
			return []paymentOpt{from(usd()), to(usd()), amount("1.001", "USD")}
		}, ReasonInvalidAmount},
		{"not positive", func() []paymentOpt { return []paymentOpt{from(usd()), to(usd()), amount("0", "USD")} }, ReasonInvalidAmount},
		{"capture skips status and limits", func() []paymentOpt {
			w := f.wallet(kyc(0))
			f.setStatus(w, ledger.WalletFrozen)
			return []paymentOpt{typ("hold"), from(w), to(f.wallet(merchant())), operation("capture", "pay_1"), amount("999999", "USD")}
		}, ""},
		{"operation without target", func() []paymentOpt {
			return []paymentOpt{typ("hold"), from(usd()), to(usd()), operation("void", "")}
		}, ReasonMissingTarget},
		{"unknown operation", func() []paymentOpt {
			return []paymentOpt{typ("hold"), from(usd()), to(usd()), operation("settle", "pay_1")}
		}, ReasonUnsupportedOperation},
		{"operation on an unknown wallet", func() []paymentOpt {
			return []paymentOpt{typ("hold"), from("wal_999997"), to(usd()), operation("void", "pay_1")}
		}, ReasonWalletNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			if got := f.process(newTestPayment(tc.pay()...)); got != tc.want {
				t.Errorf("reason %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSettingsAndLimitsChangeWithoutRestart changes rules under a running stage.
func TestSettingsAndLimitsChangeWithoutRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	frozen, payer := f.wallet(), f.wallet(kyc(0))
	f.setStatus(frozen, ledger.WalletFrozen)
	if got := f.process(newTestPayment(from(payer), to(frozen))); got != "" {
		t.Fatalf("credit to a frozen wallet: %q, want accepted by default", got)
	}
	if err := f.rules.SetSettings(f.ctx, Settings{FrozenMayReceive: false, RequireKYCLimit: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.rules.DeleteKYCLimit(f.ctx, 0, "airtime_topup", "USD"); err != nil {
		t.Fatal(err)
	}
	max := decimal.RequireFromString("5")
	if err := f.rules.SetKYCLimit(f.ctx, KYCLimit{KYCLevel: 0, Type: "transfer", Currency: "USD", Allowed: true,
		Min: decimal.RequireFromString("1"), Max: &max}); err != nil {
		t.Fatal(err)
	}
	// Until the stage reloads, it decides on the rules it has.
	if got := f.process(newTestPayment(from(payer), to(frozen))); got != "" {
		t.Fatalf("before the reload: %q, want accepted", got)
	}
	if err := f.stage.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    []paymentOpt
		want string
	}{
		{[]paymentOpt{from(payer), to(frozen), amount("2", "USD")}, ReasonWalletFrozen},
		{[]paymentOpt{from(payer), to(f.wallet()), amount("6", "USD")}, ReasonKYCLimitExceeded},
		{[]paymentOpt{from(payer), to(f.wallet()), amount("0.5", "USD")}, ReasonBelowMinimum},
		{[]paymentOpt{from(payer), to(f.wallet()), amount("5", "USD")}, ""},
		{[]paymentOpt{typ("airtime_topup"), from(payer)}, ReasonTypeNotPermitted},
	} {
		if got := f.process(newTestPayment(tc.p...)); got != tc.want {
			t.Errorf("%+v: reason %q, want %q", newTestPayment(tc.p...), got, tc.want)
		}
	}

	ls, err := f.rules.ListKYCLimits(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2*8*4 - 1; len(ls) != want {
		t.Errorf("%d limits listed, want %d", len(ls), want)
	}
	if err := f.rules.DeleteKYCLimit(f.ctx, 0, "airtime_topup", "USD"); !errors.Is(err, ErrNoSuchRule) {
		t.Errorf("deleting a deleted limit: %v, want ErrNoSuchRule", err)
	}
	bad := decimal.RequireFromString("1")
	for _, l := range []KYCLimit{
		{KYCLevel: 4, Type: "transfer", Currency: "USD"},
		{KYCLevel: 0, Type: "p2p", Currency: "USD"},
		{KYCLevel: 0, Type: "transfer", Currency: "usd"},
		{KYCLevel: 0, Type: "transfer", Currency: "USD", Min: decimal.RequireFromString("2"), Max: &bad},
	} {
		if err := f.rules.SetKYCLimit(f.ctx, l); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("SetKYCLimit(%+v) = %v, want ErrInvalidRule", l, err)
		}
	}
}

// TestRulesReloadOnUse shows a running stage picking up a change on its own.
func TestRulesReloadOnUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	st, err := New(f.ctx, f.db.Pool, f.l, Config{RefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.stage = st
	payer := f.wallet(kyc(0))
	if got := f.process(newTestPayment(typ("withdrawal"), from(payer))); got != ReasonTypeNotPermitted {
		t.Fatalf("withdrawal at level 0: %q", got)
	}
	if err := f.rules.SetKYCLimit(f.ctx, KYCLimit{KYCLevel: 0, Type: "withdrawal", Currency: "USD", Allowed: true}); err != nil {
		t.Fatal(err)
	}
	// Past the refresh interval a payment starts a reload in the background and is
	// decided on the rules at hand; one after the reload sees the change.
	got := "not tried"
	for deadline := time.Now().Add(10 * time.Second); got != "" && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		got = f.process(newTestPayment(typ("withdrawal"), from(payer)))
	}
	if got != "" {
		t.Fatalf("withdrawal after allowing it: %q, want accepted", got)
	}
}
