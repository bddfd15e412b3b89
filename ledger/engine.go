package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"
)

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

type balKey struct {
	account AccountID
	shard   int16
}

// group is a set of legs applied all-or-nothing.
type group struct {
	legs []leg
	err  error   // why the group was refused; set before or during apply
	ids  []int64 // transfer ids once applied
}

// engine applies groups of legs in one database transaction: it locks every balance row
// it will write in key order (so concurrent engines cannot deadlock), decides each group
// against the locked balances in Go, then writes transfers, items and balances with set
// operations (COPY and unnest).
type engine struct {
	l         *Ledger
	partition int
	groups    []*group
	meta      map[AccountID]accountMeta
	keys      []balKey
	bals      map[balKey]*balance
	ids       []int64
	at        time.Time
	transfers [][]any
	items     [][]any
}

func (l *Ledger) newEngine(partition int, groups []*group) *engine {
	return &engine{l: l, partition: partition, groups: groups}
}

// prepare checks legs against the immutable account facts and picks their shards.
func (e *engine) prepare(ctx context.Context, q querier) error {
	var ids []AccountID
	for _, g := range e.groups {
		for _, lg := range g.legs {
			ids = append(ids, lg.debit, lg.credit)
		}
	}
	meta, err := e.l.meta(ctx, q, ids)
	if err != nil {
		return err
	}
	e.meta = meta
	seen := map[balKey]bool{}
	for _, g := range e.groups {
		if g.err != nil {
			continue
		}
		for i := range g.legs {
			lg := &g.legs[i]
			if g.err = e.checkStatic(lg); g.err != nil {
				break
			}
		}
		if g.err != nil {
			continue
		}
		for _, lg := range g.legs {
			for _, k := range []balKey{{lg.debit, lg.debitShard}, {lg.credit, lg.creditShard}} {
				if !seen[k] {
					seen[k] = true
					e.keys = append(e.keys, k)
				}
			}
		}
	}
	slices.SortFunc(e.keys, func(a, b balKey) int {
		if a.account != b.account {
			return int(a.account - b.account)
		}
		return int(a.shard - b.shard)
	})
	return nil
}

func (e *engine) checkStatic(lg *leg) error {
	if lg.debit == lg.credit {
		return fieldError("credit", ErrInvalid, lg.credit)
	}
	for _, side := range []struct {
		name string
		id   AccountID
	}{{"debit", lg.debit}, {"credit", lg.credit}} {
		m, ok := e.meta[side.id]
		if !ok {
			return fieldError(side.name, ErrUnknownAccount, side.id)
		}
		if m.currency != lg.currency {
			return fieldError(side.name, ErrCurrencyMismatch, lg.currency)
		}
	}
	if lg.debitShard < 0 {
		lg.debitShard = shardFor(e.meta[lg.debit], true, e.partition)
	}
	if lg.creditShard < 0 {
		lg.creditShard = shardFor(e.meta[lg.credit], false, e.partition)
	}
	return nil
}

const lockBalances = `
SELECT b.account_id, b.shard, b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted,
       a.min_balance, a.frozen, a.closed, coalesce(a.allowed_mcc, '{}'),
       CASE WHEN b.shard = 0 AND a.shards > 0 AND a.no_overdraft THEN
           (SELECT coalesce(sum(s.credits_posted - s.debits_posted - s.debits_pending), 0)
              FROM account_balances s WHERE s.account_id = b.account_id AND s.shard > 0)
       ELSE 0 END
  FROM unnest($1::bigint[], $2::smallint[]) k(account_id, shard)
  JOIN account_balances b ON b.account_id = k.account_id AND b.shard = k.shard
  JOIN accounts a ON a.id = b.account_id
 ORDER BY b.account_id, b.shard
   FOR UPDATE OF b`

// queue adds the lock and id allocation to a batch; the ids are drawn after the locks, so
// transfer ids and times grow along every balance row.
func (e *engine) queue(b *pgx.Batch) {
	accts := make([]int64, len(e.keys))
	shards := make([]int16, len(e.keys))
	for i, k := range e.keys {
		accts[i], shards[i] = int64(k.account), k.shard
	}
	n := 0
	for _, g := range e.groups {
		if g.err == nil {
			n += len(g.legs)
		}
	}
	b.Queue(lockBalances, accts, shards)
	b.Queue(`SELECT clock_timestamp(), array(SELECT nextval('transfer_ids') FROM generate_series(1, $1::int))`, n)
}

// read takes the results of what queue added.
func (e *engine) read(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("locking balances: %w", err)
	}
	e.bals = make(map[balKey]*balance, len(e.keys))
	for rows.Next() {
		var k balKey
		var dp, dpo, cp, cpo, minb, others pgtype.Numeric
		b := &balance{}
		if err := rows.Scan(&k.account, &k.shard, &dp, &dpo, &cp, &cpo, &minb, &b.frozen, &b.closed, &b.allowedMCC, &others); err != nil {
			rows.Close()
			return fmt.Errorf("locking balances: %w", err)
		}
		b.dPend, b.dPost, b.cPend, b.cPost, b.minBalance, b.others = dec(dp), dec(dpo), dec(cp), dec(cpo), dec(minb), dec(others)
		e.bals[k] = b
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("locking balances: %w", err)
	}
	if err := br.QueryRow().Scan(&e.at, &e.ids); err != nil {
		return fmt.Errorf("allocating transfer ids: %w", err)
	}
	return nil
}

// applyAll decides the groups in order against the locked balances.
func (e *engine) applyAll() {
	next := 0
	for _, g := range e.groups {
		if g.err != nil {
			continue
		}
		g.err = e.applyGroup(g, e.ids[next:next+len(g.legs)])
		next += len(g.legs)
	}
}

type undo struct {
	b   *balance
	old balance
}

func (e *engine) applyGroup(g *group, ids []int64) error {
	var undos []undo
	var items, transfers [][]any
	save := func(b *balance) {
		for _, u := range undos {
			if u.b == b {
				return
			}
		}
		undos = append(undos, undo{b, *b})
	}
	for i, lg := range g.legs {
		db, cb := e.bals[balKey{lg.debit, lg.debitShard}], e.bals[balKey{lg.credit, lg.creditShard}]
		if db == nil || cb == nil {
			return e.rollback(undos, fieldError("account", ErrUnknownAccount, lg.debit))
		}
		if err := checkDebit(db, e.meta[lg.debit], lg); err != nil {
			return e.rollback(undos, err)
		}
		if err := checkCredit(cb, lg); err != nil {
			return e.rollback(undos, err)
		}
		save(db)
		save(cb)
		db.dPost, db.dPend = db.dPost.Add(lg.amount), db.dPend.Add(lg.pending)
		cb.cPost, cb.cPend = cb.cPost.Add(lg.amount), cb.cPend.Add(lg.pending)
		// A credit on a hot account's shard is spendable by a later debit of this batch,
		// which is checked on shard 0.
		if lg.creditShard > 0 {
			if b0 := e.bals[balKey{lg.credit, 0}]; b0 != nil {
				save(b0)
				b0.others = b0.others.Add(lg.amount)
			}
		}
		db.dirty, cb.dirty = true, true
		id := ids[i]
		var hold pgtype.Int8
		if lg.holdID != 0 {
			hold = pgtype.Int8{Int64: lg.holdID, Valid: true}
		}
		transfers = append(transfers, []any{id, lg.paymentID, string(lg.code), int64(lg.debit), int64(lg.credit),
			lg.debitShard, lg.creditShard, num(lg.amount), num(lg.pending), lg.currency, hold, e.at})
		items = append(items,
			[]any{int64(lg.debit), lg.debitShard, e.at, id, num(lg.amount.Neg()), num(lg.pending.Neg()),
				num(db.cPost.Sub(db.dPost)), num(db.cPend.Sub(db.dPend))},
			[]any{int64(lg.credit), lg.creditShard, e.at, id, num(lg.amount), num(lg.pending),
				num(cb.cPost.Sub(cb.dPost)), num(cb.cPend.Sub(cb.dPend))})
	}
	g.ids = ids
	e.transfers = append(e.transfers, transfers...)
	e.items = append(e.items, items...)
	return nil
}

func (e *engine) rollback(undos []undo, err error) error {
	for i := len(undos) - 1; i >= 0; i-- {
		*undos[i].b = undos[i].old
	}
	return err
}

// write stores what applyAll decided.
func (e *engine) write(ctx context.Context, tx pgx.Tx) error {
	if len(e.transfers) == 0 {
		return nil
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"transfers"}, []string{"id", "payment_id", "code", "debit_account_id",
		"credit_account_id", "debit_shard", "credit_shard", "amount", "pending_amount", "currency", "hold_id", "created_at"},
		pgx.CopyFromRows(e.transfers)); err != nil {
		return fmt.Errorf("writing transfers: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"account_items"}, []string{"account_id", "shard", "at", "transfer_id",
		"posted_delta", "pending_delta", "balance", "pending_balance"}, pgx.CopyFromRows(e.items)); err != nil {
		return fmt.Errorf("writing account items: %w", err)
	}
	var accts []int64
	var shards []int16
	var dp, dpo, cp, cpo []pgtype.Numeric
	for _, k := range e.keys {
		b := e.bals[k]
		if b == nil || !b.dirty {
			continue
		}
		accts, shards = append(accts, int64(k.account)), append(shards, k.shard)
		dp, dpo, cp, cpo = append(dp, num(b.dPend)), append(dpo, num(b.dPost)), append(cp, num(b.cPend)), append(cpo, num(b.cPost))
	}
	// Absolute values are safe: every row written is locked by this transaction.
	if _, err := tx.Exec(ctx, `UPDATE account_balances b
		SET debits_pending = v.dp, debits_posted = v.dpo, credits_pending = v.cp, credits_posted = v.cpo
		FROM unnest($1::bigint[], $2::smallint[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[]) v(a, s, dp, dpo, cp, cpo)
		WHERE b.account_id = v.a AND b.shard = v.s`, accts, shards, dp, dpo, cp, cpo); err != nil {
		return fmt.Errorf("updating balances: %w", err)
	}
	return nil
}

// zero is the pending change of a plain posted transfer.
var zero = decimal.Zero
