package ledger

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// StatementLine is one side of a transfer on an account.
type StatementLine struct {
	TransferID int64
	At         time.Time
	PaymentID  string
	Code       Code
	Shard      int
	Posted     decimal.Decimal // signed: credits positive
	Pending    decimal.Decimal
	// Balance is the running posted balance of the line's balance row; for accounts
	// without shards it is the account's balance.
	Balance decimal.Decimal
}

// StatementQuery selects a page of a statement.
type StatementQuery struct {
	From, To time.Time // To zero means open-ended
	Cursor   string    // from the previous page; empty starts at From
	Limit    int       // default 100, at most 1000
}

// StatementPage is a page of lines in time order; Next is empty on the last page.
type StatementPage struct {
	Lines []StatementLine
	Next  string
}

// Statement returns an account's lines with cursor pagination (keyset on time and
// transfer id and shard, so pages stay stable while new transfers arrive).
func (l *Ledger) Statement(ctx context.Context, id AccountID, q StatementQuery) (StatementPage, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > 1000 {
		q.Limit = 1000
	}
	after, afterID, afterShard := q.From.Add(-time.Microsecond), int64(1<<63-1), 0
	if q.Cursor != "" {
		var err error
		if after, afterID, afterShard, err = decodeCursor(q.Cursor); err != nil {
			return StatementPage{}, fieldError("cursor", ErrInvalid, q.Cursor)
		}
	}
	to := q.To
	if to.IsZero() {
		to = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	// An account's items are the debit and the credit sides of its transfers, each side
	// read through its own index in statement order; each branch stops at the page size,
	// so a page reads at most twice its lines.
	rows, err := l.pool.Query(ctx, `SELECT id, created_at, payment_id, code, shard, posted, pending, balance FROM (
		(SELECT id, created_at, payment_id, code, debit_shard AS shard, -amount AS posted, -pending_amount AS pending,
				debit_balance AS balance
			FROM transfers WHERE debit_account_id = $1 AND (created_at, id, debit_shard) > ($2, $3, $4) AND created_at < $5
			ORDER BY created_at, id, debit_shard LIMIT $6)
		UNION ALL
		(SELECT id, created_at, payment_id, code, credit_shard, amount, pending_amount, credit_balance
			FROM transfers WHERE credit_account_id = $1 AND (created_at, id, credit_shard) > ($2, $3, $4) AND created_at < $5
			ORDER BY created_at, id, credit_shard LIMIT $6)) s
		ORDER BY created_at, id, shard LIMIT $6`, id, after, afterID, afterShard, to, q.Limit+1)
	if err != nil {
		return StatementPage{}, fmt.Errorf("reading statement of %d: %w", id, err)
	}
	defer rows.Close()
	var p StatementPage
	for rows.Next() {
		var s StatementLine
		if err := rows.Scan(&s.TransferID, &s.At, &s.PaymentID, &s.Code, &s.Shard, &s.Posted, &s.Pending, &s.Balance); err != nil {
			return StatementPage{}, fmt.Errorf("reading statement of %d: %w", id, err)
		}
		p.Lines = append(p.Lines, s)
	}
	if err := rows.Err(); err != nil {
		return StatementPage{}, fmt.Errorf("reading statement of %d: %w", id, err)
	}
	if len(p.Lines) > q.Limit {
		p.Lines = p.Lines[:q.Limit]
		last := p.Lines[q.Limit-1]
		p.Next = encodeCursor(last.At, last.TransferID, last.Shard)
	}
	return p, nil
}

func encodeCursor(at time.Time, id int64, shard int) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d:%d:%d", at.UnixMicro(), id, shard))
}

// decodeCursor takes only what encodeCursor gives out. A cursor is the client's to send
// back, and one it made up (a shard no smallint holds, a time outside PostgreSQL's range)
// would otherwise reach the query and fail there as a server error rather than as a bad
// request.
func decodeCursor(c string) (time.Time, int64, int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, 0, 0, err
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 {
		return time.Time{}, 0, 0, errors.New("malformed cursor")
	}
	var n [3]int64
	for i, p := range parts {
		if n[i], err = strconv.ParseInt(p, 10, 64); err != nil {
			return time.Time{}, 0, 0, err
		}
	}
	at, id, shard := time.UnixMicro(n[0]).UTC(), n[1], n[2]
	if shard < 0 || shard > math.MaxInt16 || at.Year() < 1 || at.Year() > 9999 || encodeCursor(at, id, int(shard)) != c {
		return time.Time{}, 0, 0, errors.New("not a cursor this API gave out")
	}
	return at, id, int(shard), nil
}

// PaymentTransfers returns the transfers of a payment in id order: its posting's and
// those of its holds and direct operations.
func (l *Ledger) PaymentTransfers(ctx context.Context, paymentID string) ([]StoredTransfer, error) {
	rows, err := l.pool.Query(ctx, `SELECT id, payment_id, code, debit_account_id, credit_account_id, amount, pending_amount,
		currency, coalesce(hold_id, 0), created_at FROM transfers WHERE id IN (
			SELECT unnest(transfer_ids) FROM postings WHERE payment_id = $1
			UNION ALL SELECT t.id FROM holds h JOIN transfers t ON t.hold_id = h.id WHERE h.payment_id = $1
			UNION ALL SELECT transfer_id FROM hold_ops WHERE payment_id = $1 AND hold_id IS NULL)
		ORDER BY id`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("reading transfers of %s: %w", paymentID, err)
	}
	defer rows.Close()
	var out []StoredTransfer
	for rows.Next() {
		var t StoredTransfer
		if err := rows.Scan(&t.ID, &t.PaymentID, &t.Code, &t.Debit, &t.Credit, &t.Amount, &t.Pending, &t.Currency, &t.HoldID, &t.CreatedAt); err != nil {
			return nil, fmt.Errorf("reading transfers of %s: %w", paymentID, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
