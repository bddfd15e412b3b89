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
	batch uint64    // processors.Input.Batch of the last read
	last  batchRead // for the current batch
}

// batchRead is what one Prepare read, by currency: the parties found, and every wallet
// asked for, found or not.
type batchRead struct {
	read  map[string]map[ledger.WalletID]ledger.Party
	asked map[string]map[ledger.WalletID]bool
}

func newBatchRead() batchRead {
	return batchRead{read: map[string]map[ledger.WalletID]ledger.Party{}, asked: map[string]map[ledger.WalletID]bool{}}
}

func (b batchRead) note(currency string, id ledger.WalletID, p ledger.Party, found bool) {
	if b.asked[currency] == nil {
		b.read[currency], b.asked[currency] = map[ledger.WalletID]ledger.Party{}, map[ledger.WalletID]bool{}
	}
	b.asked[currency][id] = true
	if found {
		b.read[currency][id] = p
	}
}

// answer looks (currency, id) up for a follower; known is false when it was not read.
// Any currency answers a lookup without one (""), whose party carries no account.
func (b batchRead) answer(currency string, id ledger.WalletID) (p ledger.Party, found, known bool) {
	if currency != "" {
		p, found = b.read[currency][id]
		return p, found, b.asked[currency][id]
	}
	for cur := range b.asked {
		if b.asked[cur][id] {
			p, found = b.read[cur][id]
			p.Account = nil
			return p, found, true
		}
	}
	return ledger.Party{}, false, false
}

// Follow makes ps take what leader read for the same batch instead of reading it again:
// in a fused hop, risk screens the wallets validation has just read for the same records.
// Leader's read of any currency answers a lookup without an account (""), since a wallet
// and its user do not depend on the currency; anything leader did not read is read as
// usual, and so is everything when the batches differ (separate hops).
func (ps *Parties) Follow(leader *Parties) { ps.leader = leader }

// shared returns what ps read for batch, if that is its last read.
func (ps *Parties) shared(batch uint64) (batchRead, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.last, batch != 0 && ps.batch == batch
}

// NewParties returns a batch reader; currency picks the account each payment needs.
func NewParties(l *ledger.Ledger, currency func(*schemas.Payment) string) *Parties {
	return &Parties{ledger: l, currency: currency}
}

// Prepare reads the parties of every payment in the batch, but for those its leader read.
func (ps *Parties) Prepare(ctx context.Context, ins []*processors.Input) error {
	var batch uint64
	if len(ins) > 0 {
		batch = ins[0].Batch // one batch per call
	}
	var lead batchRead
	shared := false
	if ps.leader != nil {
		lead, shared = ps.leader.shared(batch)
	}
	now := newBatchRead()
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
			if shared {
				if party, found, known := lead.answer(cur, id); known {
					now.note(cur, id, party, found)
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
		for _, id := range ids {
			party, found := got[id]
			now.note(cur, id, party, found)
		}
	}
	ps.mu.Lock()
	ps.batch, ps.last = batch, now
	ps.mu.Unlock()
	return nil
}

// Get returns the parties of the wallets, from the batch's read when it covered them all.
func (ps *Parties) Get(ctx context.Context, currency string, ids ...ledger.WalletID) (map[ledger.WalletID]ledger.Party, error) {
	ps.mu.Lock()
	covered := ps.last.asked[currency] != nil
	out := make(map[ledger.WalletID]ledger.Party, len(ids))
	for _, id := range ids {
		if !ps.last.asked[currency][id] {
			covered = false
			break
		}
		if p, ok := ps.last.read[currency][id]; ok {
			out[id] = p
		}
	}
	ps.mu.Unlock()
	if covered {
		return out, nil
	}
	return ps.ledger.Parties(ctx, currency, ids...)
}
