package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// Hold is a reservation of funds on an account in favour of a counter account (a
// merchant, a connector's clearing account).
type Hold struct {
	ID               int64
	Owner            string
	PaymentID        string
	Account          AccountID
	Counter          AccountID
	Currency         string
	Held             decimal.Decimal // current total reservation, including over-capture
	Captured         decimal.Decimal
	Released         decimal.Decimal
	Refunded         decimal.Decimal
	OverCaptureLimit decimal.Decimal
	ExpiresAt        time.Time // zero: never

	shard int16           // the counter account's balance row holding the pending credit
	over  decimal.Decimal // over-captured so far
}

// Remaining is what is still reserved.
func (h Hold) Remaining() decimal.Decimal { return h.Held.Sub(h.Captured).Sub(h.Released) }

// OpKind names a balance-transaction operation.
type OpKind string

// Operation kinds.
const (
	OpReserve   OpKind = "reserve"
	OpAdjust    OpKind = "adjust"
	OpCapture   OpKind = "capture"
	OpVoid      OpKind = "void"
	OpRefund    OpKind = "refund"
	OpCancel    OpKind = "cancel"
	OpCredit    OpKind = "credit"
	OpAuthorize OpKind = "authorize"
	OpExpire    OpKind = "expire"
)

// Op is a stored operation. Its (owner, external id) is unique: a retry returns the
// stored Op with Replayed set and changes nothing.
type Op struct {
	ID         int64
	Kind       OpKind
	HoldID     int64
	RefOpID    int64
	PaymentID  string
	Amount     decimal.Decimal
	TransferID int64
	Replayed   bool
}

// CaptureMode says what happens to the rest of a hold after a capture.
type CaptureMode int

// Capture modes.
const (
	// ReleaseFullReservation releases whatever the capture leaves of the hold.
	ReleaseFullReservation CaptureMode = iota
	// KeepRemainingReservation keeps the rest reserved for further captures.
	KeepRemainingReservation
)

// OpKey identifies an operation for idempotency.
type OpKey struct {
	Owner      string // the merchant, channel or stage the external id belongs to
	ExternalID string
}

// ReserveRequest places a hold.
type ReserveRequest struct {
	OpKey
	PaymentID        string
	Account          AccountID // reserved on
	Counter          AccountID // credited on capture
	Amount           decimal.Decimal
	Currency         string
	ExpiresAt        time.Time       // zero: never; VoidExpired releases it after
	OverCaptureLimit decimal.Decimal // how much a capture may exceed the hold
	MCC              string
	Partition        int
}

// Reserve places a hold: the amount becomes a pending debit, unavailable for spending. It
// is a HoldBatch of one, so a hold placed alone and one placed in a batch are the same.
func (l *Ledger) Reserve(ctx context.Context, r ReserveRequest) (Op, error) {
	rs, err := l.HoldBatch(ctx, []HoldOp{{Reserve: &r}})
	if err != nil {
		return Op{}, err
	}
	return rs[0].Op, rs[0].Err
}

// checkReserve refuses a malformed hold request before the database is asked.
func (l *Ledger) checkReserve(r ReserveRequest) error {
	if err := l.checkKey(r.OpKey); err != nil {
		return err
	}
	if r.PaymentID == "" {
		return fieldError("payment_id", ErrInvalid, "")
	}
	if err := l.currencies.checkAmount("amount", r.Amount, r.Currency); err != nil {
		return err
	}
	if r.OverCaptureLimit.IsNegative() {
		return fieldError("over_capture_limit", ErrNotPositive, r.OverCaptureLimit)
	}
	return nil
}

// leg reserves the amount on the account, pending in favour of the counter account's shard.
func (r ReserveRequest) leg(shard int16, holdID int64) leg {
	return leg{code: CodeReserve, debit: r.Account, credit: r.Counter, creditShard: shard,
		amount: zero, pending: r.Amount, currency: r.Currency, mcc: r.MCC, paymentID: r.PaymentID, holdID: holdID}
}

func (r ReserveRequest) digest() []byte {
	return opDigest(OpReserve, r.PaymentID, r.Account, r.Counter, r.Amount, r.Currency, r.ExpiresAt.UnixMicro(), r.OverCaptureLimit, r.MCC)
}

// AdjustRequest raises (positive Delta) or lowers (negative) a hold.
type AdjustRequest struct {
	OpKey
	HoldID int64
	Delta  decimal.Decimal
}

// AdjustReservation changes the reserved amount of an open hold; an increase needs funds.
func (l *Ledger) AdjustReservation(ctx context.Context, r AdjustRequest) (Op, error) {
	return l.holdOp(ctx, r.OpKey, r.HoldID, opDigest(OpAdjust, r.HoldID, r.Delta), func(tx pgx.Tx, h Hold) (Op, error) {
		if r.Delta.IsZero() {
			return Op{}, fieldError("delta", ErrNotPositive, r.Delta)
		}
		if err := l.currencies.checkAmount("delta", r.Delta.Abs(), h.Currency); err != nil {
			return Op{}, err
		}
		if r.Delta.IsNegative() && r.Delta.Neg().GreaterThan(h.Remaining()) {
			return Op{}, fieldError("delta", ErrHoldExceeded, r.Delta)
		}
		ids, err := l.applyLegs(ctx, tx, 0, h.leg(CodeReserve, zero, r.Delta))
		if err != nil {
			return Op{}, err
		}
		if _, err := tx.Exec(ctx, `UPDATE holds SET held = held + $2 WHERE id = $1`, h.ID, r.Delta); err != nil {
			return Op{}, fmt.Errorf("adjusting hold: %w", err)
		}
		return Op{Kind: OpAdjust, HoldID: h.ID, PaymentID: h.PaymentID, Amount: r.Delta, TransferID: ids[0]}, nil
	})
}

// CaptureRequest captures part or all of a hold.
type CaptureRequest struct {
	OpKey
	HoldID int64
	Amount decimal.Decimal
	Mode   CaptureMode
}

// Capture moves Amount from the held account to the counter account. Beyond what remains
// reserved it may take up to the hold's over-capture limit from the available balance.
func (l *Ledger) Capture(ctx context.Context, r CaptureRequest) (Op, error) {
	return l.holdOp(ctx, r.OpKey, r.HoldID, captureDigest(r.HoldID, r.Amount, r.Mode), func(tx pgx.Tx, h Hold) (Op, error) {
		c, err := l.planCapture(h, r.Amount, r.Mode)
		if err != nil {
			return Op{}, err
		}
		ids, err := l.applyLegs(ctx, tx, 0, c.leg)
		if err != nil {
			return Op{}, err
		}
		if _, err := tx.Exec(ctx, `UPDATE holds SET held = held + $2, overcaptured = overcaptured + $2,
			captured = captured + $3, released = released + $4 WHERE id = $1`, h.ID, c.excess, r.Amount, c.release); err != nil {
			return Op{}, fmt.Errorf("capturing hold: %w", err)
		}
		return Op{Kind: OpCapture, HoldID: h.ID, PaymentID: h.PaymentID, Amount: r.Amount, TransferID: ids[0]}, nil
	})
}

func captureDigest(holdID int64, amount decimal.Decimal, mode CaptureMode) []byte {
	return opDigest(OpCapture, holdID, amount, int(mode))
}

// capturePlan is what a capture does to its hold: the leg, the part beyond the hold
// (excess, taken from the available balance) and the part released.
type capturePlan struct {
	leg             leg
	excess, release decimal.Decimal
}

func (l *Ledger) planCapture(h Hold, amount decimal.Decimal, mode CaptureMode) (capturePlan, error) {
	if err := l.currencies.checkAmount("amount", amount, h.Currency); err != nil {
		return capturePlan{}, err
	}
	remaining := h.Remaining()
	fromHold, excess := decimal.Min(amount, remaining), decimal.Max(amount.Sub(remaining), zero)
	if h.overcaptured().Add(excess).GreaterThan(h.OverCaptureLimit) {
		return capturePlan{}, fieldError("amount", ErrHoldExceeded, amount)
	}
	release := zero
	if mode == ReleaseFullReservation {
		release = remaining.Sub(fromHold)
	}
	return capturePlan{leg: h.leg(CodeCapture, amount, fromHold.Add(release).Neg()), excess: excess, release: release}, nil
}

// VoidRequest releases what remains of a hold.
type VoidRequest struct {
	OpKey
	HoldID int64
}

// Void releases the rest of a hold.
func (l *Ledger) Void(ctx context.Context, r VoidRequest) (Op, error) {
	return l.holdOp(ctx, r.OpKey, r.HoldID, opDigest(OpVoid, r.HoldID), func(tx pgx.Tx, h Hold) (Op, error) {
		return l.release(ctx, tx, h, OpVoid)
	})
}

func (l *Ledger) release(ctx context.Context, tx pgx.Tx, h Hold, kind OpKind) (Op, error) {
	rest := h.Remaining()
	if !rest.IsPositive() {
		return Op{}, fieldError("hold", ErrHoldExceeded, h.ID)
	}
	ids, err := l.applyLegs(ctx, tx, 0, h.leg(CodeRelease, zero, rest.Neg()))
	if err != nil {
		return Op{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE holds SET released = released + $2 WHERE id = $1`, h.ID, rest); err != nil {
		return Op{}, fmt.Errorf("releasing hold: %w", err)
	}
	return Op{Kind: kind, HoldID: h.ID, PaymentID: h.PaymentID, Amount: rest, TransferID: ids[0]}, nil
}

// RefundRequest gives back part of a capture or an authorization.
type RefundRequest struct {
	OpKey
	OpID   int64 // the capture or authorize operation
	Amount decimal.Decimal
}

// Refund moves Amount back from the counter account; refunds of one capture never exceed
// it in total.
func (l *Ledger) Refund(ctx context.Context, r RefundRequest) (Op, error) {
	return l.refOp(ctx, r.OpKey, r.OpID, opDigest(OpRefund, r.OpID, r.Amount), func(tx pgx.Tx, ref refTarget) (Op, error) {
		if ref.kind != OpCapture && ref.kind != OpAuthorize {
			return Op{}, fieldError("op_id", ErrInvalid, r.OpID)
		}
		if ref.cancelled {
			return Op{}, fieldError("op_id", ErrAlreadyCancelled, r.OpID)
		}
		if err := l.currencies.checkAmount("amount", r.Amount, ref.currency); err != nil {
			return Op{}, err
		}
		if ref.refunded.Add(r.Amount).GreaterThan(ref.amount) {
			return Op{}, fieldError("amount", ErrRefundExceeded, r.Amount)
		}
		ids, err := l.applyLegs(ctx, tx, 0, leg{code: CodeRefund, debit: ref.counter, credit: ref.account, debitShard: -1, creditShard: -1,
			amount: r.Amount, pending: zero, currency: ref.currency, paymentID: ref.paymentID, holdID: ref.holdID})
		if err != nil {
			return Op{}, err
		}
		if err := ref.addRefunded(ctx, tx, r.Amount); err != nil {
			return Op{}, err
		}
		return Op{Kind: OpRefund, HoldID: ref.holdID, RefOpID: r.OpID, PaymentID: ref.paymentID, Amount: r.Amount, TransferID: ids[0]}, nil
	})
}

// CancelRequest cancels a refund, a capture or authorization, or a hold's reservation.
type CancelRequest struct {
	OpKey
	OpID int64
}

// Cancel reverses an operation. A capture or authorization is refused while it has
// refunds that are not cancelled; a reservation is refused once anything was captured.
func (l *Ledger) Cancel(ctx context.Context, r CancelRequest) (Op, error) {
	return l.refOp(ctx, r.OpKey, r.OpID, opDigest(OpCancel, r.OpID), func(tx pgx.Tx, ref refTarget) (Op, error) {
		if ref.cancelled {
			return Op{}, fieldError("op_id", ErrAlreadyCancelled, r.OpID)
		}
		var lg leg
		switch ref.kind {
		case OpRefund:
			lg = leg{code: CodeReversal, debit: ref.account, credit: ref.counter}
		case OpCapture, OpAuthorize:
			if ref.refunded.IsPositive() {
				return Op{}, fieldError("op_id", ErrRefundsOutstanding, r.OpID)
			}
			lg = leg{code: CodeReversal, debit: ref.counter, credit: ref.account}
		case OpReserve:
			h, err := lockHold(ctx, tx, ref.holdID, r.Owner)
			if err != nil {
				return Op{}, err
			}
			if h.Captured.IsPositive() {
				return Op{}, fieldError("op_id", ErrInvalid, r.OpID)
			}
			op, err := l.release(ctx, tx, h, OpCancel)
			if err != nil {
				return Op{}, err
			}
			op.RefOpID = r.OpID
			return op, ref.markCancelled(ctx, tx)
		default:
			return Op{}, fieldError("op_id", ErrInvalid, r.OpID)
		}
		lg.debitShard, lg.creditShard, lg.amount, lg.pending = -1, -1, ref.amount, zero
		lg.currency, lg.paymentID, lg.holdID = ref.currency, ref.paymentID, ref.holdID
		ids, err := l.applyLegs(ctx, tx, 0, lg)
		if err != nil {
			return Op{}, err
		}
		if err := ref.markCancelled(ctx, tx); err != nil {
			return Op{}, err
		}
		return Op{Kind: OpCancel, HoldID: ref.holdID, RefOpID: r.OpID, PaymentID: ref.paymentID, Amount: ref.amount, TransferID: ids[0]}, nil
	})
}

// DirectRequest is a Credit or an Authorize: a posted transfer with no hold.
type DirectRequest struct {
	OpKey
	PaymentID string
	Account   AccountID // credited by Credit, debited by Authorize
	Counter   AccountID
	Amount    decimal.Decimal
	Currency  string
	MCC       string
	Partition int
}

// Credit credits Account from Counter.
func (l *Ledger) Credit(ctx context.Context, r DirectRequest) (Op, error) {
	return l.direct(ctx, OpCredit, r)
}

// Authorize debits Account at once (a direct debit) in favour of Counter; it can be
// refunded and cancelled like a capture.
func (l *Ledger) Authorize(ctx context.Context, r DirectRequest) (Op, error) {
	return l.direct(ctx, OpAuthorize, r)
}

func (l *Ledger) direct(ctx context.Context, kind OpKind, r DirectRequest) (Op, error) {
	if err := l.checkKey(r.OpKey); err != nil {
		return Op{}, err
	}
	if r.PaymentID == "" {
		return Op{}, fieldError("payment_id", ErrInvalid, "")
	}
	if err := l.currencies.checkAmount("amount", r.Amount, r.Currency); err != nil {
		return Op{}, err
	}
	lg := leg{code: CodePrincipal, debit: r.Counter, credit: r.Account, debitShard: -1, creditShard: -1, amount: r.Amount,
		pending: zero, currency: r.Currency, mcc: r.MCC, paymentID: r.PaymentID}
	if kind == OpAuthorize {
		lg.debit, lg.credit = r.Account, r.Counter
	}
	dg := opDigest(kind, r.PaymentID, r.Account, r.Counter, r.Amount, r.Currency, r.MCC)
	return l.runOp(ctx, r.OpKey, dg, func(tx pgx.Tx) (Op, error) {
		ids, err := l.applyLegs(ctx, tx, r.Partition, lg)
		if err != nil {
			return Op{}, err
		}
		return Op{Kind: kind, PaymentID: r.PaymentID, Amount: r.Amount, TransferID: ids[0]}, nil
	})
}

// VoidExpired releases holds whose expiry is at or before now, at most limit of them,
// and returns how many it released. Batch jobs call it on a schedule.
func (l *Ledger) VoidExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	rows, err := l.pool.Query(ctx, `SELECT id, owner FROM holds WHERE expires_at <= $1 AND held > captured + released
		ORDER BY expires_at LIMIT $2`, now, limit)
	if err != nil {
		return 0, fmt.Errorf("finding expired holds: %w", err)
	}
	type due struct {
		id    int64
		owner string
	}
	var dues []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.owner); err != nil {
			rows.Close()
			return 0, fmt.Errorf("finding expired holds: %w", err)
		}
		dues = append(dues, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("finding expired holds: %w", err)
	}
	n := 0
	for _, d := range dues {
		key := OpKey{Owner: d.owner, ExternalID: fmt.Sprintf("expire:%d", d.id)}
		op, err := l.holdOp(ctx, key, d.id, opDigest(OpExpire, d.id), func(tx pgx.Tx, h Hold) (Op, error) {
			return l.release(ctx, tx, h, OpExpire)
		})
		switch {
		case errors.Is(err, ErrHoldExceeded): // captured or voided meanwhile
		case err != nil:
			return n, err
		case !op.Replayed:
			n++
		}
	}
	return n, nil
}

// GetHold reads a hold.
func (l *Ledger) GetHold(ctx context.Context, id int64) (Hold, error) {
	return scanHold(l.pool.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1`, id))
}

const holdColumns = `id, owner, payment_id, account_id, counter_account_id, currency, held, captured, released, refunded,
	overcapture_limit, coalesce(expires_at, 'epoch'::timestamptz), credit_shard, overcaptured`

func scanHold(row pgx.Row) (Hold, error) {
	var h Hold
	var shard int16
	err := row.Scan(&h.ID, &h.Owner, &h.PaymentID, &h.Account, &h.Counter, &h.Currency, &h.Held, &h.Captured, &h.Released,
		&h.Refunded, &h.OverCaptureLimit, &h.ExpiresAt, &shard, &h.over)
	if err != nil {
		return Hold{}, fmt.Errorf("reading hold: %w", notFound(err))
	}
	if h.ExpiresAt.Unix() == 0 {
		h.ExpiresAt = time.Time{}
	}
	h.shard = shard
	return h, nil
}

func lockHold(ctx context.Context, tx pgx.Tx, id int64, owner string) (Hold, error) {
	h, err := scanHold(tx.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1 AND owner = $2 FOR UPDATE`, id, owner))
	if errors.Is(err, ErrNotFound) {
		return Hold{}, fieldError("hold_id", ErrUnknownHold, id)
	}
	return h, err
}

// leg moves amount posted and changes pending on the hold's accounts and balance rows.
func (h Hold) leg(code Code, amount, pending decimal.Decimal) leg {
	return leg{code: code, debit: h.Account, credit: h.Counter, debitShard: 0, creditShard: h.shard, amount: amount,
		pending: pending, currency: h.Currency, paymentID: h.PaymentID, holdID: h.ID}
}

func (h Hold) overcaptured() decimal.Decimal { return h.over }
