package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
)

func (l *Ledger) checkKey(k OpKey) error {
	if k.Owner == "" {
		return fieldError("owner", ErrInvalid, "")
	}
	if k.ExternalID == "" {
		return fieldError("external_id", ErrInvalid, "")
	}
	return nil
}

func opDigest(parts ...any) []byte {
	h := sha256.New()
	for _, p := range parts {
		if d, ok := p.(decimal.Decimal); ok {
			p = d.String()
		}
		fmt.Fprintf(h, "%v\x00", p)
	}
	return h.Sum(nil)
}

// runOp runs one operation in a transaction, idempotent by its key: a stored operation
// with the same key is returned instead (or refused if its content differs). A refused
// operation is not stored, so it may be retried once the cause is gone.
func (l *Ledger) runOp(ctx context.Context, key OpKey, digest []byte, fn func(pgx.Tx) (Op, error)) (Op, error) {
	for attempt := 0; ; attempt++ {
		op, err := l.runOpOnce(ctx, key, digest, fn)
		var pgErr *pgconn.PgError
		// Two concurrent calls with one key: the loser sees the winner's row on retry.
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "hold_ops_owner_external_id_key" && attempt == 0 {
			continue
		}
		return op, err
	}
}

func (l *Ledger) runOpOnce(ctx context.Context, key OpKey, digest []byte, fn func(pgx.Tx) (Op, error)) (Op, error) {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return Op{}, fmt.Errorf("running operation: %w", err)
	}
	defer tx.Rollback(ctx)
	var op Op
	var stored []byte
	var holdID, refOp, transfer *int64
	err = tx.QueryRow(ctx, `SELECT id, kind, hold_id, ref_op_id, payment_id, amount, transfer_id, digest FROM hold_ops
		WHERE owner = $1 AND external_id = $2`, key.Owner, key.ExternalID).
		Scan(&op.ID, &op.Kind, &holdID, &refOp, &op.PaymentID, &op.Amount, &transfer, &stored)
	switch {
	case err == nil:
		if string(stored) != string(digest) {
			return Op{}, fieldError("external_id", ErrIdempotencyConflict, key.ExternalID)
		}
		op.HoldID, op.RefOpID, op.TransferID, op.Replayed = deref(holdID), deref(refOp), deref(transfer), true
		return op, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return Op{}, fmt.Errorf("reading operation: %w", err)
	}
	if op, err = fn(tx); err != nil {
		return Op{}, err
	}
	err = tx.QueryRow(ctx, `INSERT INTO hold_ops (owner, external_id, kind, hold_id, ref_op_id, payment_id, amount, digest, transfer_id)
		VALUES ($1, $2, $3, nullif($4, 0), nullif($5, 0), $6, $7, $8, $9) RETURNING id`,
		key.Owner, key.ExternalID, op.Kind, op.HoldID, op.RefOpID, op.PaymentID, op.Amount, digest, op.TransferID).Scan(&op.ID)
	if err != nil {
		return Op{}, fmt.Errorf("storing operation: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Op{}, fmt.Errorf("committing operation: %w", err)
	}
	return op, nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// holdOp runs an operation on a hold, locked for its duration.
func (l *Ledger) holdOp(ctx context.Context, key OpKey, holdID int64, digest []byte, fn func(pgx.Tx, Hold) (Op, error)) (Op, error) {
	if err := l.checkKey(key); err != nil {
		return Op{}, err
	}
	return l.runOp(ctx, key, digest, func(tx pgx.Tx) (Op, error) {
		h, err := lockHold(ctx, tx, holdID, key.Owner)
		if err != nil {
			return Op{}, err
		}
		return fn(tx, h)
	})
}

// refTarget is the operation a refund or cancel refers to, locked.
type refTarget struct {
	id        int64
	kind      OpKind
	holdID    int64
	paymentID string
	amount    decimal.Decimal
	refunded  decimal.Decimal
	cancelled bool
	refOpID   int64 // for a refund: its capture
	account   AccountID
	counter   AccountID
	currency  string
}

func (l *Ledger) refOp(ctx context.Context, key OpKey, opID int64, digest []byte, fn func(pgx.Tx, refTarget) (Op, error)) (Op, error) {
	if err := l.checkKey(key); err != nil {
		return Op{}, err
	}
	return l.runOp(ctx, key, digest, func(tx pgx.Tx) (Op, error) {
		r := refTarget{id: opID}
		var hold, ref *int64
		// The operation's accounts come from its transfer: the payer is debited by a capture
		// or an authorization and credited by a refund.
		err := tx.QueryRow(ctx, `SELECT o.kind, o.hold_id, o.ref_op_id, o.payment_id, o.amount, o.refunded, o.cancelled,
				CASE WHEN o.kind = 'refund' THEN t.credit_account_id ELSE t.debit_account_id END,
				CASE WHEN o.kind = 'refund' THEN t.debit_account_id ELSE t.credit_account_id END, t.currency
			FROM hold_ops o JOIN transfers t ON t.id = o.transfer_id
			WHERE o.id = $1 AND o.owner = $2 FOR UPDATE OF o`, opID, key.Owner).
			Scan(&r.kind, &hold, &ref, &r.paymentID, &r.amount, &r.refunded, &r.cancelled, &r.account, &r.counter, &r.currency)
		if errors.Is(err, pgx.ErrNoRows) {
			return Op{}, fieldError("op_id", ErrUnknownHold, opID)
		}
		if err != nil {
			return Op{}, fmt.Errorf("reading operation %d: %w", opID, err)
		}
		r.holdID, r.refOpID = deref(hold), deref(ref)
		return fn(tx, r)
	})
}

// addRefunded records a refund against its capture (and hold).
func (r refTarget) addRefunded(ctx context.Context, tx pgx.Tx, amount decimal.Decimal) error {
	if _, err := tx.Exec(ctx, `UPDATE hold_ops SET refunded = refunded + $2 WHERE id = $1`, r.id, amount); err != nil {
		return fmt.Errorf("recording refund: %w", err)
	}
	if r.holdID != 0 && r.kind == OpCapture {
		if _, err := tx.Exec(ctx, `UPDATE holds SET refunded = refunded + $2 WHERE id = $1`, r.holdID, amount); err != nil {
			return fmt.Errorf("recording refund: %w", err)
		}
	}
	return nil
}

// markCancelled flags the operation and undoes its effect on the aggregates.
func (r refTarget) markCancelled(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE hold_ops SET cancelled = true WHERE id = $1`, r.id); err != nil {
		return fmt.Errorf("cancelling operation: %w", err)
	}
	switch r.kind {
	case OpRefund:
		if _, err := tx.Exec(ctx, `UPDATE hold_ops SET refunded = refunded - $2 WHERE id = $1`, r.refOpID, r.amount); err != nil {
			return fmt.Errorf("cancelling refund: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE holds SET refunded = refunded - $2
			WHERE id = (SELECT hold_id FROM hold_ops WHERE id = $1 AND kind = 'capture')`, r.refOpID, r.amount); err != nil {
			return fmt.Errorf("cancelling refund: %w", err)
		}
	case OpCapture:
		// The captured amount leaves the hold entirely, so what remains reserved is unchanged.
		if _, err := tx.Exec(ctx, `UPDATE holds SET captured = captured - $2, held = held - $2 WHERE id = $1`, r.holdID, r.amount); err != nil {
			return fmt.Errorf("cancelling capture: %w", err)
		}
	}
	return nil
}

// applyLegs applies legs as one all-or-nothing group inside tx.
func (l *Ledger) applyLegs(ctx context.Context, tx pgx.Tx, partition int, legs ...leg) ([]int64, error) {
	g := &group{legs: legs}
	e := l.newEngine(partition, []*group{g})
	if err := e.prepare(ctx, tx); err != nil {
		return nil, err
	}
	if g.err != nil {
		return nil, g.err
	}
	b := &pgx.Batch{}
	e.queue(b)
	br := tx.SendBatch(ctx, b)
	if err := e.read(br); err != nil {
		br.Close()
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("locking balances: %w", err)
	}
	e.applyAll()
	if g.err != nil {
		return nil, g.err
	}
	if err := e.write(ctx, tx); err != nil {
		return nil, err
	}
	return g.ids, nil
}
