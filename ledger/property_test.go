package ledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/shopspring/decimal"
)

// model is the ledger computed in Go from the operations the ledger accepted.
type model struct {
	mu      sync.Mutex
	posted  map[AccountID]decimal.Decimal // credits - debits
	applied map[string]bool               // payment ids or op keys applied
}

func (m *model) apply(key string, ts []Transfer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.applied[key] {
		return fmt.Errorf("%s accepted twice", key)
	}
	m.applied[key] = true
	for _, t := range ts {
		m.posted[t.Debit] = m.posted[t.Debit].Sub(t.Amount)
		m.posted[t.Credit] = m.posted[t.Credit].Add(t.Amount)
	}
	return nil
}

// Thousands of random postings and hold operations from 8 goroutines over a few hot and
// many cold accounts, with retries of the same ids: afterwards every invariant holds and
// every balance equals the model.
func TestPropertyConcurrentRandomOperations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const workers, batches = 8, 30
	var customers []Account
	for range 40 {
		customers = append(customers, f.wallet("50"))
	}
	merchants := []Account{f.wallet("0", asMerchant), f.wallet("0", asMerchant)}
	m := &model{posted: map[AccountID]decimal.Decimal{}, applied: map[string]bool{}}
	for _, c := range customers {
		m.posted[c.ID] = d("50")
	}
	m.posted[f.safe.ID] = d("-2000")

	var wg sync.WaitGroup
	errs := make(chan error, workers*batches*20)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			amount := func(max int) decimal.Decimal { return decimal.New(int64(1+rng.IntN(max*100)), -2) }
			var sent [][]Posting
			var sentResults [][]Result
			for b := range batches {
				// A retry of an earlier batch must change nothing and answer the same.
				if len(sent) > 0 && rng.IntN(5) == 0 {
					i := rng.IntN(len(sent))
					rs, err := f.l.PostBatch(f.ctx, sent[i], BatchOptions{Partition: w})
					if err != nil {
						errs <- err
						return
					}
					for j, r := range rs {
						o := sentResults[i][j]
						if !r.Replayed || r.Status != o.Status || fmt.Sprint(r.TransferIDs) != fmt.Sprint(o.TransferIDs) || Reason(r.Err) != Reason(o.Err) {
							errs <- fmt.Errorf("retry of %s: %+v, first %+v", r.PaymentID, r, o)
						}
					}
				}
				var ps []Posting
				for i := range 8 + rng.IntN(8) {
					id := fmt.Sprintf("w%d-b%d-%d", w, b, i)
					from, to := customers[rng.IntN(len(customers))], customers[rng.IntN(len(customers))]
					merchant := merchants[rng.IntN(len(merchants))]
					fee := Fee{Amount: amount(1), VAT: d("0.01"), Revenue: f.fees.ID, VATPayable: f.vat.ID}
					switch rng.IntN(3) {
					case 0:
						if from.ID == to.ID {
							continue
						}
						ps = append(ps, P2P(id, from.ID, to.ID, amount(20), "USD", fee))
					case 1:
						ps = append(ps, MerchantPayment(id, from.ID, merchant.ID, amount(30), "USD", "5411", fee, Discount{}))
					case 2:
						ps = append(ps, RefundPayment(id, merchant.ID, to.ID, amount(10), "USD"))
					}
				}
				rs, err := f.l.PostBatch(f.ctx, ps, BatchOptions{Partition: w})
				if err != nil {
					errs <- err
					return
				}
				for j, r := range rs {
					switch {
					case r.Status == Posted && !r.Replayed:
						if err := m.apply(r.PaymentID, ps[j].Transfers); err != nil {
							errs <- err
						}
					case r.Status == Rejected && errors.Is(r.Err, ErrInsufficientFunds):
					default:
						errs <- fmt.Errorf("posting %s: %+v", r.PaymentID, r)
					}
				}
				sent, sentResults = append(sent, ps), append(sentResults, rs)

				// A hold on a random customer, captured in part (retried) or voided.
				payer, merchant := customers[rng.IntN(len(customers))], merchants[rng.IntN(len(merchants))]
				key := OpKey{Owner: fmt.Sprintf("w%d", w), ExternalID: fmt.Sprintf("b%d", b)}
				res, err := f.l.Reserve(f.ctx, ReserveRequest{OpKey: key, PaymentID: "hold-" + key.Owner + key.ExternalID,
					Account: payer.ID, Counter: merchant.ID, Amount: amount(20), Currency: "USD", Partition: w})
				if errors.Is(err, ErrInsufficientFunds) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if rng.IntN(3) == 0 {
					if _, err := f.l.Void(f.ctx, VoidRequest{OpKey: OpKey{key.Owner, key.ExternalID + "-void"}, HoldID: res.HoldID}); err != nil {
						errs <- err
					}
					continue
				}
				capture := CaptureRequest{OpKey: OpKey{key.Owner, key.ExternalID + "-cap"}, HoldID: res.HoldID,
					Amount: decimal.Min(res.Amount, amount(15)), Mode: ReleaseFullReservation}
				for range 1 + rng.IntN(2) {
					op, err := f.l.Capture(f.ctx, capture)
					if err != nil {
						errs <- err
						break
					}
					if !op.Replayed {
						if err := m.apply(key.Owner+capture.ExternalID, []Transfer{{Debit: payer.ID, Credit: merchant.ID, Amount: capture.Amount}}); err != nil {
							errs <- err
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	accounts := append(append([]Account{f.safe, f.fees, f.vat}, customers...), merchants...)
	for _, a := range accounts {
		b, err := f.l.Balance(f.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !b.Posted.Equal(m.posted[a.ID]) || !b.DebitsPending.IsZero() {
			t.Errorf("account %d: posted %s pending debits %s, model %s", a.ID, b.Posted, b.DebitsPending, m.posted[a.ID])
		}
		if a.Rules.NoOverdraft && b.Available.IsNegative() {
			t.Errorf("account %d overdrawn: %s", a.ID, b.Available)
		}
	}
	var n int
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT count(*) FROM postings WHERE status = 'posted'`).Scan(&n); err != nil || n < workers*batches*4 {
		t.Errorf("only %d postings posted (%v): the test exercised too little", n, err)
	}
	var rejected, ops int
	_ = f.db.Pool.QueryRow(f.ctx, `SELECT (SELECT count(*) FROM postings WHERE status = 'rejected'), (SELECT count(*) FROM hold_ops)`).Scan(&rejected, &ops)
	t.Logf("%d postings posted, %d rejected, %d hold operations", n, rejected, ops)
	f.verify()
}
