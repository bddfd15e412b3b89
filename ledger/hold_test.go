package ledger

import (
	"errors"
	"testing"
	"time"
)

// holdFixture is a customer wallet and a merchant, with helpers for operations keyed by
// a fresh external id.
type holdFixture struct {
	*fixture
	payer, merchant Account
}

func newHoldFixture(t *testing.T, balance string) *holdFixture {
	f := newFixture(t)
	return &holdFixture{fixture: f, payer: f.wallet(balance), merchant: f.wallet("0", asMerchant)}
}

func (h *holdFixture) key() OpKey { return OpKey{Owner: "shop", ExternalID: h.id("ext")} }

func (h *holdFixture) reserve(amount string, opts ...func(*ReserveRequest)) Op {
	h.t.Helper()
	r := ReserveRequest{OpKey: h.key(), PaymentID: h.id("pay"), Account: h.payer.ID, Counter: h.merchant.ID,
		Amount: d(amount), Currency: h.cur}
	for _, o := range opts {
		o(&r)
	}
	op, err := h.l.Reserve(h.ctx, r)
	if err != nil {
		h.t.Fatalf("reserving %s: %v", amount, err)
	}
	return op
}

func (h *holdFixture) capture(hold int64, amount string, mode CaptureMode) (Op, error) {
	return h.l.Capture(h.ctx, CaptureRequest{OpKey: h.key(), HoldID: hold, Amount: d(amount), Mode: mode})
}

func (h *holdFixture) expect(a Account, available, pending string) {
	h.t.Helper()
	b, err := h.l.Balance(h.ctx, a.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	if !b.Available.Equal(d(available)) || !b.Pending.Equal(d(pending)) {
		h.t.Fatalf("account %d: available %s pending %s, want %s and %s", a.ID, b.Available, b.Pending, available, pending)
	}
}

func (h *holdFixture) hold(id int64) Hold {
	h.t.Helper()
	x, err := h.l.GetHold(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return x
}

func TestHoldCaptureKeepRemainingThenVoid(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	res := h.reserve("60")
	h.expect(h.payer, "40", "-60")
	h.expect(h.merchant, "0", "60")
	if _, err := h.capture(res.HoldID, "20", KeepRemainingReservation); err != nil {
		t.Fatal(err)
	}
	h.expect(h.payer, "40", "-40")
	h.expect(h.merchant, "20", "40")
	if _, err := h.capture(res.HoldID, "15", KeepRemainingReservation); err != nil {
		t.Fatal(err)
	}
	if _, err := h.l.Void(h.ctx, VoidRequest{OpKey: h.key(), HoldID: res.HoldID}); err != nil {
		t.Fatal(err)
	}
	h.expect(h.payer, "65", "0")
	h.expect(h.merchant, "35", "0")
	if x := h.hold(res.HoldID); !x.Captured.Equal(d("35")) || !x.Released.Equal(d("25")) || !x.Remaining().IsZero() {
		t.Fatalf("hold %+v", x)
	}
	ts, err := h.l.PaymentTransfers(h.ctx, res.PaymentID)
	if err != nil || len(ts) != 4 || ts[0].Code != CodeReserve || ts[3].Code != CodeRelease || !ts[3].Pending.Equal(d("-25")) {
		t.Fatalf("transfers of the held payment: %+v %v", ts, err)
	}
	// Nothing left to void or capture.
	if _, err := h.l.Void(h.ctx, VoidRequest{OpKey: h.key(), HoldID: res.HoldID}); !errors.Is(err, ErrHoldExceeded) {
		t.Fatalf("second void: %v", err)
	}
	if _, err := h.capture(res.HoldID, "1", KeepRemainingReservation); !errors.Is(err, ErrHoldExceeded) {
		t.Fatalf("capture after void: %v", err)
	}
	h.verify()
}

func TestHoldCaptureReleaseFullReservation(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	res := h.reserve("60")
	if _, err := h.capture(res.HoldID, "25", ReleaseFullReservation); err != nil {
		t.Fatal(err)
	}
	h.expect(h.payer, "75", "0")
	h.expect(h.merchant, "25", "0")
	h.verify()
}

func TestHoldOverCapture(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	limit := func(r *ReserveRequest) { r.OverCaptureLimit = d("10") }
	res := h.reserve("50", limit)
	if _, err := h.capture(res.HoldID, "60.01", ReleaseFullReservation); !errors.Is(err, ErrHoldExceeded) {
		t.Fatalf("over-capture beyond the bound: %v", err)
	}
	if _, err := h.capture(res.HoldID, "58", ReleaseFullReservation); err != nil {
		t.Fatal(err)
	}
	h.expect(h.payer, "42", "0")
	if x := h.hold(res.HoldID); !x.Held.Equal(d("58")) || !x.Captured.Equal(d("58")) {
		t.Fatalf("hold %+v", x)
	}
	// Over-capture still needs the funds.
	poor := newHoldFixture(t, "50")
	res = poor.reserve("50", limit)
	if _, err := poor.capture(res.HoldID, "55", ReleaseFullReservation); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("over-capture without funds: %v", err)
	}
	h.verify()
	poor.verify()
}

func TestHoldReserveAndAdjustNeedFunds(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	_, err := h.l.Reserve(h.ctx, ReserveRequest{OpKey: h.key(), PaymentID: "p", Account: h.payer.ID, Counter: h.merchant.ID,
		Amount: d("100.01"), Currency: "USD"})
	if !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("reserve beyond balance: %v", err)
	}
	res := h.reserve("70")
	adjust := func(delta string) error {
		_, err := h.l.AdjustReservation(h.ctx, AdjustRequest{OpKey: h.key(), HoldID: res.HoldID, Delta: d(delta)})
		return err
	}
	if err := adjust("30.01"); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("increase beyond balance: %v", err)
	}
	if err := adjust("30"); err != nil {
		t.Fatal(err)
	}
	h.expect(h.payer, "0", "-100")
	if err := adjust("-100.01"); !errors.Is(err, ErrHoldExceeded) {
		t.Fatalf("decrease beyond hold: %v", err)
	}
	if err := adjust("-40"); err != nil {
		t.Fatal(err)
	}
	h.expect(h.payer, "40", "-60")
	if err := adjust("0.001"); !errors.Is(err, ErrTooManyDecimals) {
		t.Fatalf("adjust with 3 decimals: %v", err)
	}
	h.verify()
}

func TestHoldRefundsAndCancel(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	res := h.reserve("50")
	capt, err := h.capture(res.HoldID, "50", ReleaseFullReservation)
	if err != nil {
		t.Fatal(err)
	}
	refund := func(amount string) (Op, error) {
		return h.l.Refund(h.ctx, RefundRequest{OpKey: h.key(), OpID: capt.ID, Amount: d(amount)})
	}
	r1, err := refund("20")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := refund("30"); err != nil {
		t.Fatal(err)
	}
	if _, err := refund("0.01"); !errors.Is(err, ErrRefundExceeded) {
		t.Fatalf("refund over captured: %v", err)
	}
	h.expect(h.payer, "100", "0")
	cancel := func(id int64) error {
		_, err := h.l.Cancel(h.ctx, CancelRequest{OpKey: h.key(), OpID: id})
		return err
	}
	if err := cancel(capt.ID); !errors.Is(err, ErrRefundsOutstanding) {
		t.Fatalf("cancel with refunds: %v", err)
	}
	if err := cancel(r1.ID); err != nil {
		t.Fatal(err)
	}
	if err := cancel(r1.ID); !errors.Is(err, ErrAlreadyCancelled) {
		t.Fatalf("second cancel: %v", err)
	}
	h.expect(h.payer, "80", "0")
	if x := h.hold(res.HoldID); !x.Refunded.Equal(d("30")) {
		t.Fatalf("hold refunded %s, want 30", x.Refunded)
	}
	// Still one refund outstanding; cancel it, then the capture.
	ops, err := h.l.pool.Query(h.ctx, `SELECT id FROM hold_ops WHERE kind = 'refund' AND NOT cancelled`)
	if err != nil {
		t.Fatal(err)
	}
	var open []int64
	for ops.Next() {
		var id int64
		_ = ops.Scan(&id)
		open = append(open, id)
	}
	ops.Close()
	if len(open) != 1 {
		t.Fatalf("%d open refunds, want 1", len(open))
	}
	if err := cancel(open[0]); err != nil {
		t.Fatal(err)
	}
	if err := cancel(capt.ID); err != nil {
		t.Fatal(err)
	}
	h.expect(h.payer, "100", "0")
	h.expect(h.merchant, "0", "0")
	h.verify()
}

func TestHoldOperationsAreIdempotentByExternalID(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	res := h.reserve("50")
	key := h.key()
	c1, err := h.l.Capture(h.ctx, CaptureRequest{OpKey: key, HoldID: res.HoldID, Amount: d("10"), Mode: KeepRemainingReservation})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := h.l.Capture(h.ctx, CaptureRequest{OpKey: key, HoldID: res.HoldID, Amount: d("10"), Mode: KeepRemainingReservation})
	if err != nil || !c2.Replayed || c2.ID != c1.ID || c2.TransferID != c1.TransferID {
		t.Fatalf("retry: %+v %v", c2, err)
	}
	if _, err := h.l.Capture(h.ctx, CaptureRequest{OpKey: key, HoldID: res.HoldID, Amount: d("11"), Mode: KeepRemainingReservation}); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("same key, other amount: %v", err)
	}
	rkey := h.key()
	for range 3 {
		if _, err := h.l.Refund(h.ctx, RefundRequest{OpKey: rkey, OpID: c1.ID, Amount: d("4")}); err != nil {
			t.Fatal(err)
		}
	}
	if x := h.hold(res.HoldID); !x.Captured.Equal(d("10")) || !x.Refunded.Equal(d("4")) {
		t.Fatalf("hold %+v after retries", x)
	}
	// Another owner has its own external ids, and cannot touch this hold.
	other := OpKey{Owner: "other", ExternalID: key.ExternalID}
	if _, err := h.l.Capture(h.ctx, CaptureRequest{OpKey: other, HoldID: res.HoldID, Amount: d("1")}); !errors.Is(err, ErrUnknownHold) {
		t.Fatalf("foreign owner: %v", err)
	}
	h.verify()
}

func TestHoldExpiry(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	now := time.Now()
	past := h.reserve("30", func(r *ReserveRequest) { r.ExpiresAt = now.Add(-time.Minute) })
	h.reserve("20", func(r *ReserveRequest) { r.ExpiresAt = now.Add(time.Hour) })
	h.reserve("10")
	n, err := h.l.VoidExpired(h.ctx, now, 100)
	if err != nil || n != 1 {
		t.Fatalf("voided %d, %v; want 1", n, err)
	}
	if n, _ := h.l.VoidExpired(h.ctx, now, 100); n != 0 {
		t.Fatalf("second run voided %d", n)
	}
	if x := h.hold(past.HoldID); !x.Released.Equal(d("30")) {
		t.Fatalf("expired hold %+v", x)
	}
	h.expect(h.payer, "70", "-30")
	h.verify()
}

func TestAuthorizeAndCredit(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "30")
	dr := DirectRequest{OpKey: h.key(), PaymentID: h.id("dd"), Account: h.payer.ID, Counter: h.merchant.ID, Amount: d("25"), Currency: "USD"}
	auth, err := h.l.Authorize(h.ctx, dr)
	if err != nil {
		t.Fatal(err)
	}
	dr.OpKey, dr.PaymentID = h.key(), h.id("dd")
	if _, err := h.l.Authorize(h.ctx, dr); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("second direct debit: %v", err)
	}
	if _, err := h.l.Refund(h.ctx, RefundRequest{OpKey: h.key(), OpID: auth.ID, Amount: d("25.01")}); !errors.Is(err, ErrRefundExceeded) {
		t.Fatalf("refund over authorized: %v", err)
	}
	if _, err := h.l.Credit(h.ctx, DirectRequest{OpKey: h.key(), PaymentID: h.id("cr"), Account: h.payer.ID, Counter: h.safe.ID,
		Amount: d("5"), Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	h.expect(h.payer, "10", "0")
	h.expect(h.merchant, "25", "0")
	h.verify()
}

func TestHoldOnClosedOrMismatchedAccount(t *testing.T) {
	t.Parallel()
	h := newHoldFixture(t, "100")
	eur := h.wallet("0", func(s *walletSpec) { s.currency = "EUR" })
	req := func(counter AccountID, amount string) ReserveRequest {
		return ReserveRequest{OpKey: h.key(), PaymentID: h.id("p"), Account: h.payer.ID, Counter: counter, Amount: d(amount), Currency: "USD"}
	}
	if _, err := h.l.Reserve(h.ctx, req(eur.ID, "1")); !errors.Is(err, ErrCurrencyMismatch) {
		t.Fatalf("currency mismatch: %v", err)
	}
	if _, err := h.l.Reserve(h.ctx, req(h.merchant.ID, "1.005")); !errors.Is(err, ErrTooManyDecimals) {
		t.Fatalf("decimals: %v", err)
	}
	if err := h.l.CloseAccount(h.ctx, h.payer.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.l.Reserve(h.ctx, req(h.merchant.ID, "1")); !errors.Is(err, ErrAccountClosed) {
		t.Fatalf("closed: %v", err)
	}
	h.verify()
}
