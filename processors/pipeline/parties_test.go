package pipeline

import (
	"context"
	"testing"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testLedger is a ledger on a private database with one subsidiary, and a function that
// opens a USD wallet for a new customer at the given KYC level.
func testLedger(t *testing.T) (*ledger.Ledger, func(kyc int) ledger.WalletID) {
	t.Helper()
	ctx := context.Background()
	l, err := ledger.New(ctx, testenv.Postgres(t).Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateSubsidiary(ctx, ledger.Subsidiary{ID: "T1", Name: "t", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	return l, func(kyc int) ledger.WalletID {
		u, err := l.CreateUser(ctx, ledger.User{Kind: ledger.Customer, DisplayName: "x", KYCLevel: kyc})
		if err != nil {
			t.Fatal(err)
		}
		w, err := l.CreateWallet(ctx, ledger.Wallet{UserID: u.ID, Subsidiary: "T1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.OpenWalletAccount(ctx, w.ID, "USD", ledger.Main, ledger.WalletRules); err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
}

func TestPartiesAnswersABatchFromOneRead(t *testing.T) {
	ctx := context.Background()
	l, wallet := testLedger(t)
	var refs []string
	for range 3 {
		refs = append(refs, ledger.WalletRef(wallet(2)))
	}
	ps := NewParties(l, func(p *schemas.Payment) string { return p.Amount.Currency })
	pay := func(from, to string) *processors.Input {
		return &processors.Input{Value: &schemas.Payment{PayerWallet: from, PayeeWallet: to, Amount: schemas.Money{Currency: "USD"}}}
	}
	if err := ps.Prepare(ctx, []*processors.Input{pay(refs[0], refs[1]), pay(refs[1], "wal_999999")}); err != nil {
		t.Fatal(err)
	}
	id0, _ := ledger.ParseWalletRef(refs[0])
	id1, _ := ledger.ParseWalletRef(refs[1])
	id2, _ := ledger.ParseWalletRef(refs[2])
	missing, _ := ledger.ParseWalletRef("wal_999999")

	// Freeze a wallet after the read: a covered lookup answers from the read, an
	// uncovered one goes to the ledger and sees the change.
	if err := l.SetWalletStatus(ctx, id1, ledger.WalletFrozen); err != nil {
		t.Fatal(err)
	}
	got, err := ps.Get(ctx, "USD", id0, id1, missing)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[id1].Wallet.Status != ledger.WalletActive || got[id0].Account == nil || got[id0].User.KYCLevel != 2 {
		t.Errorf("batch read %+v: want the two wallets as read, the missing one absent", got)
	}
	got, err = ps.Get(ctx, "USD", id1, id2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[id1].Wallet.Status != ledger.WalletFrozen {
		t.Errorf("uncovered lookup %+v: want it read from the ledger now", got)
	}
}

// A follower takes its leader's read of the same batch instead of reading again, reads
// only what the leader did not, and reads everything itself for another batch.
func TestPartiesFollowsItsLeadersReadOfTheSameBatch(t *testing.T) {
	ctx := context.Background()
	l, wallet := testLedger(t)
	ids := []ledger.WalletID{wallet(1), wallet(1), wallet(1)}
	missing, _ := ledger.ParseWalletRef("wal_999999")
	pay := func(batch uint64, from, to ledger.WalletID) *processors.Input {
		return &processors.Input{Batch: batch, Value: &schemas.Payment{PayerWallet: ledger.WalletRef(from),
			PayeeWallet: ledger.WalletRef(to), Amount: schemas.Money{Currency: "USD"}}}
	}
	leader := NewParties(l, func(p *schemas.Payment) string { return p.Amount.Currency })
	follower := NewParties(l, func(*schemas.Payment) string { return "" })
	follower.Follow(leader)

	if err := leader.Prepare(ctx, []*processors.Input{pay(7, ids[0], ids[1]), pay(7, ids[1], missing)}); err != nil {
		t.Fatal(err)
	}
	// Changed after the leader's read: a follower that read again would see it.
	if err := l.SetWalletStatus(ctx, ids[1], ledger.WalletFrozen); err != nil {
		t.Fatal(err)
	}
	if err := l.SetWalletStatus(ctx, ids[2], ledger.WalletFrozen); err != nil {
		t.Fatal(err)
	}
	if err := follower.Prepare(ctx, []*processors.Input{pay(7, ids[0], ids[1]), pay(7, missing, ids[2])}); err != nil {
		t.Fatal(err)
	}
	got, err := follower.Get(ctx, "", ids[0], ids[1], ids[2], missing)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case len(got) != 3:
		t.Errorf("follower found %d wallets, want 3 (the missing one absent)", len(got))
	case got[ids[1]].Wallet.Status != ledger.WalletActive:
		t.Error("the follower read a wallet its leader had read for the same batch")
	case got[ids[2]].Wallet.Status != ledger.WalletFrozen:
		t.Error("the follower did not read the wallet its leader had not read")
	case got[ids[0]].Account != nil || got[ids[0]].User.KYCLevel != 1:
		t.Errorf("a lookup without currency answered %+v: want the user and no account", got[ids[0]])
	}
}

func TestPartiesReadsItselfForAnotherBatch(t *testing.T) {
	ctx := context.Background()
	l, wallet := testLedger(t)
	id := wallet(1)
	in := func(batch uint64) []*processors.Input {
		return []*processors.Input{{Batch: batch, Value: &schemas.Payment{PayerWallet: ledger.WalletRef(id), Amount: schemas.Money{Currency: "USD"}}}}
	}
	leader := NewParties(l, func(p *schemas.Payment) string { return p.Amount.Currency })
	follower := NewParties(l, func(*schemas.Payment) string { return "" })
	follower.Follow(leader)
	if err := leader.Prepare(ctx, in(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.SetWalletStatus(ctx, id, ledger.WalletFrozen); err != nil {
		t.Fatal(err)
	}
	if err := follower.Prepare(ctx, in(2)); err != nil {
		t.Fatal(err)
	}
	got, err := follower.Get(ctx, "", id)
	if err != nil {
		t.Fatal(err)
	}
	if got[id].Wallet.Status != ledger.WalletFrozen {
		t.Error("the follower took its leader's read of another batch")
	}
}
