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
	leader   *Parties // see Follow

	mu    sync.Mutex
	batch uint64                                      // processors.Input.Batch of the last read
	read  map[string]map[ledger.WalletID]ledger.Party // by currency, for the current batch
	asked map[string]map[ledger.WalletID]bool         // read, found or not
}

// Follow makes ps take what leader read for the same batch instead of reading it again:
// in a fused hop, risk screens the wallets validation has just read for the same records.
// Leader's read of any currency answers a lookup without an account ("" ), since a wallet
// and its user do not depend on the currency; anything leader did not read is read as
// usual, and so is everything when the batches differ (separate hops).
func (ps *Parties) Follow(leader *Parties) { ps.leader = leader }

// shared returns what ps read for batch, if that is its last read.
func (ps *Parties) shared(batch uint64) (map[string]map[ledger.WalletID]ledger.Party, map[string]map[ledger.WalletID]bool, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if batch == 0 || ps.batch != batch {
		return nil, nil, false
	}
	return ps.read, ps.asked, true
}

// fromLeader answers (currency, id) from leader's read of the same batch.
func fromLeader(read map[string]map[ledger.WalletID]ledger.Party, asked map[string]map[ledger.WalletID]bool,
	currency string, id ledger.WalletID) (p ledger.Party, found, known bool) {
	if currency != "" {
		p, found = read[currency][id]
		return p, found, asked[currency][id]
	}
	for cur := range asked {
		if asked[cur][id] {
			p, found = read[cur][id]
			p.Account = nil // a lookup without currency reads no account
			return p, found, true
		}
	}
	return ledger.Party{}, false, false
}

// NewParties returns a batch reader; currency picks the account each payment needs.
func NewParties(l *ledger.Ledger, currency func(*schemas.Payment) string) *Parties {
	return &Parties{ledger: l, currency: currency}
}

// Prepare reads the parties of every payment in the batch.
func (ps *Parties) Prepare(ctx context.Context, ins []*processors.Input) error {
	var batch uint64
	if len(ins) > 0 {
		batch = ins[0].Batch
	}
	var lread map[string]map[ledger.WalletID]ledger.Party
	var lasked map[string]map[ledger.WalletID]bool
	shared := false
	if ps.leader != nil {
		lread, lasked, shared = ps.leader.shared(batch)
	}
	read := map[string]map[ledger.WalletID]ledger.Party{}
	asked := map[string]map[ledger.WalletID]bool{}
	want := map[string][]ledger.WalletID{}
	for _, in := range ins {
		p, ok := in.Value.(*schemas.Payment)
		if !ok {
			continue
		}
		cur := ps.currency(p)
		for _, ref := range []string{p.PayerWallet, p.PayeeWallet} {
			id, ok := ledger.ParseWalletRef(ref)
			if !ok {
				continue
			}
			if shared && in.Batch == batch {
				if party, found, known := fromLeader(lread, lasked, cur, id); known {
					if asked[cur] == nil {
						read[cur], asked[cur] = map[ledger.WalletID]ledger.Party{}, map[ledger.WalletID]bool{}
					}
					asked[cur][id] = true
					if found {
						read[cur][id] = party
					}
					continue
				}
			}
			want[cur] = append(want[cur], id)
		}
	}
	for cur, ids := range want {
		got, err := ps.ledger.Parties(ctx, cur, ids...)
		if err != nil {
			return err
		}
		if asked[cur] == nil {
			read[cur], asked[cur] = map[ledger.WalletID]ledger.Party{}, map[ledger.WalletID]bool{}
		}
		for _, id := range ids {
			asked[cur][id] = true
			if party, ok := got[id]; ok {
				read[cur][id] = party
			}
		}
	}
	ps.mu.Lock()
	ps.batch, ps.read, ps.asked = batch, read, asked
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
