package ledger

import (
	"errors"
	"sync"
	"testing"
)

// holdRun is a sequence of hold operations on one payer and merchant, run one by one
// or as one HoldBatch.
type holdRun struct{ *holdFixture }

func (r *holdRun) reserveOp(pid, amount string) HoldOp {
	return HoldOp{Reserve: &ReserveRequest{OpKey: OpKey{Owner: "shop", ExternalID: "r-" + pid}, PaymentID: pid,
		Account: r.payer.ID, Counter: r.merchant.ID, Amount: d(amount), Currency: r.cur, OverCaptureLimit: d("5")}}
}

func (r *holdRun) captureOp(key, target, amount string, mode CaptureMode) HoldOp {
	return HoldOp{Capture: &PaymentCapture{OpKey: OpKey{Owner: "shop", ExternalID: key}, TargetPaymentID: target,
		Amount: d(amount), Mode: mode}}
}

// alone runs an operation as the posting stage does without a batch.
func (r *holdRun) alone(o HoldOp) (Op, error) {
	if o.Reserve != nil {
		return r.l.Reserve(r.ctx, *o.Reserve)
	}
	h, err := r.l.HoldByPayment(r.ctx, o.Capture.TargetPaymentID)
	if err != nil {
		return Op{}, err
	}
	c := o.Capture
	return r.l.Capture(r.ctx, CaptureRequest{OpKey: c.OpKey, HoldID: h.ID, Amount: c.Amount, Mode: c.Mode})
}

func TestHoldBatchDecidesAsOneByOne(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// The same history for two payers: placed and captured one by one, or in batches.
	runs := [2]*holdRun{}
	for i := range runs {
		runs[i] = &holdRun{holdFixture: &holdFixture{fixture: f, payer: f.wallet("100"), merchant: f.wallet("0", asMerchant)}}
	}
	pid := func(i int, name string) string { return f.id(name) + "-" + string(rune('a'+i)) }
	type step struct {
		ops   func(r *holdRun, i int) []HoldOp
		check func(t *testing.T, res []OpResult)
	}
	var a, b, c [2]string
	for i := range runs {
		a[i], b[i], c[i] = pid(i, "a"), pid(i, "b"), pid(i, "c")
	}
	steps := []step{
		{ // three holds, the second beyond the funds the first leaves
			ops: func(r *holdRun, i int) []HoldOp {
				return []HoldOp{r.reserveOp(a[i], "60"), r.reserveOp(b[i], "45"), r.reserveOp(c[i], "30")}
			},
			check: func(t *testing.T, res []OpResult) {
				if res[0].Err != nil || !errors.Is(res[1].Err, ErrInsufficientFunds) || res[2].Err != nil {
					t.Fatalf("results %+v", res)
				}
				if res[0].Op.HoldID == 0 || res[0].Op.TransferID == 0 || res[0].Op.ID == 0 || res[0].Op.Kind != OpReserve {
					t.Fatalf("placed %+v", res[0].Op)
				}
			},
		},
		{ // a capture keeping the rest, one over the limit, one of a payment without a hold
			ops: func(r *holdRun, i int) []HoldOp {
				return []HoldOp{r.captureOp("c1-"+a[i], a[i], "20", KeepRemainingReservation),
					r.captureOp("c2-"+c[i], c[i], "35.01", ReleaseFullReservation)}
			},
			check: func(t *testing.T, res []OpResult) {
				if res[0].Err != nil || res[0].Op.Kind != OpCapture || !res[0].Op.Amount.Equal(d("20")) ||
					!errors.Is(res[1].Err, ErrHoldExceeded) {
					t.Fatalf("results %+v", res)
				}
			},
		},
		{ // over-capture within the limit, releasing nothing as nothing is left
			ops: func(r *holdRun, i int) []HoldOp {
				return []HoldOp{r.captureOp("c3-"+c[i], c[i], "34", ReleaseFullReservation),
					r.captureOp("c4-"+a[i], a[i], "30", ReleaseFullReservation)}
			},
			check: func(t *testing.T, res []OpResult) {
				if res[0].Err != nil || res[1].Err != nil {
					t.Fatalf("results %+v", res)
				}
			},
		},
	}
	for n, s := range steps {
		for i, r := range runs {
			ops := s.ops(r, i)
			var res []OpResult
			if i == 0 {
				for _, o := range ops {
					op, err := r.alone(o)
					res = append(res, OpResult{Op: op, Err: err})
				}
			} else {
				var err error
				if res, err = r.l.HoldBatch(r.ctx, ops); err != nil {
					t.Fatalf("step %d: %v", n, err)
				}
			}
			s.check(t, res)
		}
	}
	for i, r := range runs {
		// 100 - captured 20 + 30 + 34, nothing pending: the hold of a was released in full.
		r.expect(r.payer, "16", "0")
		r.expect(r.merchant, "84", "0")
		for _, p := range []string{a[i], c[i]} {
			h, err := r.l.HoldByPayment(r.ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if !h.Remaining().IsZero() {
				t.Fatalf("run %d: hold of %s still has %s", i, p, h.Remaining())
			}
		}
		if h, err := r.l.HoldByPayment(r.ctx, b[i]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("run %d: refused hold was stored: %+v %v", i, h, err)
		}
	}
	x, _ := runs[0].l.HoldByPayment(f.ctx, c[0])
	y, _ := runs[1].l.HoldByPayment(f.ctx, c[1])
	if !x.Held.Equal(y.Held) || !x.Captured.Equal(y.Captured) || !x.Released.Equal(y.Released) || !x.over.Equal(y.over) || !y.over.Equal(d("4")) {
		t.Fatalf("over-captured hold one by one %+v, in a batch %+v", x, y)
	}
	runs[0].verify()
}

func TestHoldBatchReplaysAndDefers(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	r := &holdRun{holdFixture: h}
	early := h.reserve("10") // placed one by one
	ops := []HoldOp{
		r.reserveOp("p1", "20"),
		r.captureOp("cap-early", early.PaymentID, "10", ReleaseFullReservation),
		r.captureOp("cap-early-2", early.PaymentID, "1", KeepRemainingReservation), // the same hold again
		r.captureOp("cap-p1", "p1", "5", ReleaseFullReservation),                   // its hold is placed by this batch
		r.reserveOp("p1", "20"), // the same key again
		{},
	}
	res, err := h.l.HoldBatch(h.ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[1].Err != nil || !res[2].Alone || !res[3].Alone || !res[4].Alone || !errors.Is(res[5].Err, ErrInvalid) {
		t.Fatalf("results %+v", res)
	}
	h.expect(h.payer, "70", "-20")
	h.expect(h.merchant, "10", "20")

	// Run again: the decided operations are replayed, nothing moves.
	again, err := h.l.HoldBatch(h.ctx, ops[:2])
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range again {
		if x.Err != nil || !x.Op.Replayed || x.Op.ID != res[i].Op.ID || x.Op.TransferID != res[i].Op.TransferID || x.Op.HoldID != res[i].Op.HoldID {
			t.Fatalf("replay %d: %+v, first %+v", i, x, res[i])
		}
	}
	// One by one, the same keys replay what the batch stored.
	op, err := r.alone(ops[0])
	if err != nil || !op.Replayed || op.ID != res[0].Op.ID {
		t.Fatalf("reserve replayed alone: %+v %v", op, err)
	}
	// A stored key with other content is a conflict.
	other := r.reserveOp("p1", "21")
	if again, err = h.l.HoldBatch(h.ctx, []HoldOp{other}); err != nil || !errors.Is(again[0].Err, ErrIdempotencyConflict) {
		t.Fatalf("conflict: %+v %v", again, err)
	}
	// A hold of another owner is unknown to this one.
	stranger := r.captureOp("cap-stranger", "p1", "1", ReleaseFullReservation)
	stranger.Capture.Owner = "another shop"
	if again, err = h.l.HoldBatch(h.ctx, []HoldOp{stranger}); err != nil || !errors.Is(again[0].Err, ErrUnknownHold) {
		t.Fatalf("another owner's hold: %+v %v", again, err)
	}
	h.expect(h.payer, "70", "-20")
	h.verify()
}

// Two concurrent holds under one key: one places it, the other replays it (the loser's
// batch fails on the stored key and is decided again).
func TestReserveConcurrentSameKey(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	r := ReserveRequest{OpKey: h.key(), PaymentID: h.id("pay"), Account: h.payer.ID, Counter: h.merchant.ID, Amount: d("30"), Currency: h.cur}
	ops, errs := make([]Op, 8), make([]error, 8)
	var wg sync.WaitGroup
	for i := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops[i], errs[i] = h.l.Reserve(h.ctx, r)
		}()
	}
	wg.Wait()
	placed := 0
	for i, op := range ops {
		if errs[i] != nil || op.HoldID != ops[0].HoldID || op.TransferID != ops[0].TransferID {
			t.Fatalf("reserve %d: %+v %v, first %+v", i, op, errs[i], ops[0])
		}
		if !op.Replayed {
			placed++
		}
	}
	if placed != 1 {
		t.Fatalf("%d of the reserves placed the hold, want 1", placed)
	}
	h.expect(h.payer, "70", "-30")
	h.verify()
}
