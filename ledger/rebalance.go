package ledger

import (
	"context"
	"fmt"
)

// Rebalance evens out the available balance of a ShardDebits account over its shards
// with transfers between them (code rebalance), so no shard runs dry while others hold
// funds. The loyalty stage or a batch job calls it when a shard refuses a debit that the
// account as a whole covers. It returns the ids of the transfers it wrote.
func (l *Ledger) Rebalance(ctx context.Context, id AccountID) ([]int64, error) {
	meta, err := l.meta(ctx, l.pool, []AccountID{id})
	if err != nil {
		return nil, err
	}
	m, ok := meta[id]
	if !ok || !m.shardDebits {
		return nil, fieldError("account", ErrInvalid, id)
	}
	exp := l.currencies[m.currency].Exponent
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebalancing account %d: %w", id, err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT shard, ((credits_posted - debits_posted - debits_pending) * $2)::bigint
		FROM account_balances WHERE account_id = $1 AND shard > 0 ORDER BY shard FOR UPDATE`, id, pow10[exp])
	if err != nil {
		return nil, fmt.Errorf("rebalancing account %d: %w", id, err)
	}
	var shards []int16
	var avail []int64
	var total int64
	for rows.Next() {
		var s int16
		var a int64
		if err := rows.Scan(&s, &a); err != nil {
			rows.Close()
			return nil, fmt.Errorf("rebalancing account %d: %w", id, err)
		}
		shards, avail, total = append(shards, s), append(avail, a), total+a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rebalancing account %d: %w", id, err)
	}
	// Target: total / n each, the remainder on the first shards; move from surplus to
	// deficit shards, largest first is unnecessary: any pairing conserves the total.
	n := int64(len(shards))
	target := make([]int64, n)
	for i := range target {
		target[i] = total / n
		if int64(i) < total%n {
			target[i]++
		}
	}
	var legs []leg
	from, to := 0, 0
	for {
		for from < len(avail) && avail[from] <= target[from] {
			from++
		}
		for to < len(avail) && avail[to] >= target[to] {
			to++
		}
		if from == len(avail) || to == len(avail) {
			break
		}
		move := min(avail[from]-target[from], target[to]-avail[to])
		avail[from] -= move
		avail[to] += move
		legs = append(legs, leg{code: CodeRebalance, debit: id, credit: id, debitShard: shards[from], creditShard: shards[to],
			amount: fromUnits(move, exp), pending: zero, currency: m.currency, paymentID: fmt.Sprintf("rebalance:%d", id)})
	}
	if len(legs) == 0 {
		return nil, nil
	}
	ids, err := l.applyLegs(ctx, tx, 0, legs...)
	if err != nil {
		return nil, fmt.Errorf("rebalancing account %d: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("rebalancing account %d: %w", id, err)
	}
	return ids, nil
}
