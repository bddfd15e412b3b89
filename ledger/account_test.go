package ledger

import (
	"errors"
	"testing"
	"time"
)

func TestAccountLookups(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.wallet("5", withPurpose(Restricted, Rules{NoOverdraft: true, AllowedMCC: []string{"5411"}}))
	got, err := f.l.GetAccount(f.ctx, a.ID)
	if err != nil || got.Purpose != Restricted || got.Wallet == 0 || got.Rules.AllowedMCC[0] != "5411" || !got.Rules.NoOverdraft {
		t.Fatalf("GetAccount: %+v %v", got, err)
	}
	byWallet, err := f.l.WalletAccount(f.ctx, got.Wallet, "USD", Restricted)
	if err != nil || byWallet.ID != a.ID {
		t.Fatalf("WalletAccount: %+v %v", byWallet, err)
	}
	if _, err := f.l.WalletAccount(f.ctx, got.Wallet, "EUR", Restricted); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing wallet account: %v", err)
	}
	sys, err := f.l.SystemAccount(f.ctx, f.sub, ConnectorClearing, "USD", "bank1")
	if err != nil || sys.ID != f.clear.ID {
		t.Fatalf("SystemAccount: %+v %v", sys, err)
	}
	if _, err := f.l.OpenSystemAccount(f.ctx, f.sub, ConnectorClearing, "USD", "bank1", Rules{}); err == nil {
		t.Fatal("second clearing account for the same connector accepted")
	}
	if _, err := f.l.OpenSystemAccount(f.ctx, f.sub, FeeRevenue, "XXX", "", Rules{}); !errors.Is(err, ErrUnknownCurrency) {
		t.Fatalf("unknown currency: %v", err)
	}
	rate, err := f.l.VATRateAt(f.ctx, f.sub, "standard", time.Now())
	if err != nil || !rate.Equal(d("0.09")) {
		t.Fatalf("VAT rate %s %v", rate, err)
	}
	if _, err := f.l.VATRateAt(f.ctx, f.sub, "standard", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("VAT before its start: %v", err)
	}
	if _, err := f.l.CreateUser(f.ctx, User{Kind: "alien"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown user kind: %v", err)
	}
	if err := f.l.SetWalletStatus(f.ctx, got.Wallet, WalletClosed); err != nil {
		t.Fatal(err)
	}
	if closed, _ := f.l.GetAccount(f.ctx, a.ID); !closed.Closed {
		t.Fatal("closing the wallet left its account open")
	}
	if w, _ := f.l.GetWallet(f.ctx, got.Wallet); w.Status != WalletClosed {
		t.Fatalf("wallet status %s", w.Status)
	}
}
