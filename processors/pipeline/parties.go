package pipeline

import (
	"context"
	"sync"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
)

// Parties reads the wallets, users and accounts a stage decides by for a whole Kafka
// batch in one query per currency (the stage's Prepare), instead of one query per
// payment, and answers each payment's lookup from that read. A lookup of a wallet the
// batch did not name falls back to the ledger.
type Parties struct {
	ledger *ledger.Ledger
	// currency says which account to read with a payment's wallets ("" reads none).
	currency func(*schemas.Payment) string

	mu    sync.Mutex
	read  map[string]map[ledger.WalletID]ledger.Party // by currency, for the current batch
	asked map[string]map[ledger.WalletID]bool         // read, found or not
}

// NewParties returns a batch reader; currency picks the account each payment needs.
func NewParties(l *ledger.Ledger, currency func(*schemas.Payment) string) *Parties {
	return &Parties{ledger: l, currency: currency}
}

// Prepare reads the parties of every payment in the batch.
func (ps *Parties) Prepare(ctx context.Context, ins []*processors.Input) error {
	want := map[string][]ledger.WalletID{}
	for _, in := range ins {
		p, ok := in.Value.(*schemas.Payment)
		if !ok {
			continue
		}
		cur := ps.currency(p)
		for _, ref := range []string{p.PayerWallet, p.PayeeWallet} {
			if id, ok := ledger.ParseWalletRef(ref); ok {
				want[cur] = append(want[cur], id)
			}
		}
	}
	read := map[string]map[ledger.WalletID]ledger.Party{}
	asked := map[string]map[ledger.WalletID]bool{}
	for cur, ids := range want {
		got, err := ps.ledger.Parties(ctx, cur, ids...)
		if err != nil {
			return err
		}
		read[cur], asked[cur] = got, map[ledger.WalletID]bool{}
		for _, id := range ids {
			asked[cur][id] = true
		}
	}
	ps.mu.Lock()
	ps.read, ps.asked = read, asked
	ps.mu.Unlock()
	return nil
}

// Get returns the parties of the wallets, from the batch's read when it covered them all.
func (ps *Parties) Get(ctx context.Context, currency string, ids ...ledger.WalletID) (map[ledger.WalletID]ledger.Party, error) {
	ps.mu.Lock()
	covered := ps.asked[currency] != nil
	out := make(map[ledger.WalletID]ledger.Party, len(ids))
	for _, id := range ids {
		if !ps.asked[currency][id] {
			covered = false
			break
		}
		if p, ok := ps.read[currency][id]; ok {
			out[id] = p
		}
	}
	ps.mu.Unlock()
	if covered {
		return out, nil
	}
	return ps.ledger.Parties(ctx, currency, ids...)
}
