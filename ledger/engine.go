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
// against the locked balances in Go, then writes transfers (carrying each side's account item) and balances with set
// statements (INSERT ... SELECT FROM unnest).
type engine struct {
	l         *Ledger
	partition int
	groups    []*group
	meta      map[AccountID]accountMeta
	keys      []balKey
	bals      map[balKey]*balance
	ids       []int64
	at        time.Time
	hot       bool // the batch debits a hot account with a balance rule
	transfers transferRows
}

// transferRows are the columns of the transfers, with the running balances of each side
// (the side's account item).
type transferRows struct {
	id, debit, credit, amt, pend, hold []int64
	debitBal, debitPend                []int64 // balances of the debit side's row after the transfer
	creditBal, creditPend              []int64
	paymentID, code, currency          []string
	debitShard, creditShard            []int16
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
	seen := make(map[balKey]bool, len(ids)/2)
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
	if lg.debit == lg.credit && (lg.code != CodeRebalance || lg.debitShard == lg.creditShard) {
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
	exp := e.l.currencies[lg.currency].Exponent
	var ok1, ok2 bool
	if lg.amt, ok1 = toUnits(lg.amount, exp); !ok1 {
		return fieldError("amount", ErrTooLarge, lg.amount)
	}
	if lg.pend, ok2 = toUnits(lg.pending, exp); !ok2 {
		return fieldError("pending", ErrTooLarge, lg.pending)
	}
	if lg.debitShard < 0 {
		lg.debitShard = shardFor(e.meta[lg.debit], true, e.partition)
	}
	if lg.creditShard < 0 {
		lg.creditShard = shardFor(e.meta[lg.credit], false, e.partition)
	}
	return nil
}

// The balance rows are locked in key order (no deadlock between batches) through the
// primary key: account_id = ANY drives an index scan, the packed key filters out the
// shards the batch does not write before they are locked. Amounts come back in minor
// units. Account flags are read by the next statement, after the locks: whoever changes
// them locks the balance rows first (SetWalletStatus, CloseAccount).
// Values come back as text and are parsed into minor units in Go (parseUnits): exact,
// cheap on both sides, and free of per-currency joins.
const (
	lockBalances = `
SELECT account_id, shard, debits_pending::text, debits_posted::text, credits_pending::text, credits_posted::text, ctid::text
  FROM account_balances
 WHERE (account_id = ANY($1) AND shard = 0) OR (account_id = ANY($2) AND account_id * 128 + shard = ANY($3))
 ORDER BY account_id, shard
   FOR UPDATE`
	readFlags = `
SELECT id, min_balance::text, frozen, closed, allowed_mcc FROM accounts WHERE id = ANY($1)`
	// The other shards of hot accounts with a balance rule only ever gain credits, so a
	// stale read understates the balance and can never let a debit overdraw.
	readOthers = `
SELECT account_id, sum(credits_posted - debits_posted - debits_pending)::text
  FROM account_balances WHERE account_id = ANY($1) AND shard > 0 GROUP BY account_id`
)

// postingSettings opens the statements of a posting transaction, for its duration.
//
// Every statement of the transaction reads or writes a few hundred rows by key, rows that
// are hot in shared buffers, yet the planner, which prices a random page at four
// sequential ones, would rather read a whole table of some thousands of rows than probe
// its index a few hundred times: with 10,000 wallets (the bench's default) the balance
// locks and writes passed over all of account_balances in at least 170 and 193 posting
// transactions of a 30-second run (auto_explain, statements over 2 ms), while the
// transaction held its locks. Sequential scans, hash and merge joins are ruled out, so
// each statement probes the primary key whatever the statistics say.
//
// That leaves the planner nothing to choose by the parameters, so the statements run on
// generic plans, made once a connection: planned afresh for every batch they cost 1.6 ms
// of planning a batch of about 90 payments, in the serial part of the posting stage
// (pg_stat_statements at 2,500 payments/s: the balance lock 0.45 ms of planning a batch,
// the balance write 0.28, the stored-postings lookup 0.22). A generic plan searches a key
// array linearly where a custom one hashes it, which matters only in filters over few
// rows here (the packed keys of hot shards).
const postingSettings = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
       set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
       set_config('enable_mergejoin', 'off', true)`

// shardBits packs (account, shard) into one key; shards stay below 128.
const shardBits = 128

// queue adds the locks, the account flags, the transfer ids and the batch time to a
// batch. The time is read after the locks, so it never goes back along a balance row:
// statements order by (time, transfer id), and ids grow within a batch.
func (e *engine) queue(b *pgx.Batch) {
	var accts, zeros, hotShardAccts, packed, hot []int64
	for i, k := range e.keys {
		if k.shard == 0 {
			zeros = append(zeros, int64(k.account))
		} else {
			hotShardAccts = append(hotShardAccts, int64(k.account))
			packed = append(packed, int64(k.account)*shardBits+int64(k.shard))
		}
		if i > 0 && e.keys[i-1].account == k.account {
			continue
		}
		accts = append(accts, int64(k.account))
		if m := e.meta[k.account]; k.shard == 0 && m.shards > 0 && m.noOverdraft && !m.shardDebits {
			hot = append(hot, int64(k.account))
		}
	}
	n := 0
	for _, g := range e.groups {
		if g.err == nil {
			n += len(g.legs)
		}
	}
	e.hot = len(hot) > 0
	b.Queue(postingSettings)
	b.Queue(lockBalances, intArray(zeros), intArray(hotShardAccts), intArray(packed))
	b.Queue(readFlags, intArray(accts))
	if e.hot {
		b.Queue(readOthers, intArray(hot))
	}
	b.Queue(`SELECT clock_timestamp(), array(SELECT nextval('transfer_ids') FROM generate_series(1, $1::int))`, n)
}

// flags are the mutable facts of an account, read after its balance rows are locked.
type flags struct {
	minBalance     int64
	frozen, closed bool
	allowedMCC     []string
}

// read takes the results of what queue added.
func (e *engine) read(br pgx.BatchResults) error {
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("locking balances: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("locking balances: %w", err)
	}
	e.bals = make(map[balKey]*balance, len(e.keys))
	all := make([]balance, 0, len(e.keys))
	// Scan targets live outside the loop, so they are allocated once, not per row; the
	// values are parsed before the next row, so the driver's bytes need no copy.
	var k balKey
	var dp, dpo, cp, cpo, tid pgtype.DriverBytes
	for rows.Next() {
		if err := rows.Scan(&k.account, &k.shard, &dp, &dpo, &cp, &cpo, &tid); err != nil {
			rows.Close()
			return fmt.Errorf("locking balances: %w", err)
		}
		all = append(all, balance{currency: e.meta[k.account].currency, tid: string(tid)})
		b := &all[len(all)-1]
		exp := e.l.currencies[b.currency].Exponent
		var ok [4]bool
		b.dPend, ok[0] = parseUnits(dp, exp)
		b.dPost, ok[1] = parseUnits(dpo, exp)
		b.cPend, ok[2] = parseUnits(cp, exp)
		b.cPost, ok[3] = parseUnits(cpo, exp)
		if ok != [4]bool{true, true, true, true} {
			rows.Close()
			return fmt.Errorf("locking balances: account %d holds a value beyond %d fraction digits or int64", k.account, exp)
		}
		e.bals[k] = b
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("locking balances: %w", err)
	}
	fl := make(map[AccountID]flags, len(e.bals))
	if rows, err = br.Query(); err != nil {
		return fmt.Errorf("reading account flags: %w", err)
	}
	var id AccountID
	var f flags
	var minb pgtype.DriverBytes
	for rows.Next() {
		f = flags{} // a fresh allowedMCC slice per row (the map keeps the previous ones)
		if err := rows.Scan(&id, &minb, &f.frozen, &f.closed, &f.allowedMCC); err != nil {
			rows.Close()
			return fmt.Errorf("reading account flags: %w", err)
		}
		f.minBalance = ceilUnits(minb, e.l.currencies[e.meta[id].currency].Exponent)
		fl[id] = f
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading account flags: %w", err)
	}
	for k, b := range e.bals {
		f := fl[k.account]
		b.minBalance, b.frozen, b.closed, b.allowedMCC = f.minBalance, f.frozen, f.closed, f.allowedMCC
	}
	if e.hot {
		if rows, err = br.Query(); err != nil {
			return fmt.Errorf("reading hot shards: %w", err)
		}
		for rows.Next() {
			var id AccountID
			var others pgtype.DriverBytes
			if err := rows.Scan(&id, &others); err != nil {
				rows.Close()
				return fmt.Errorf("reading hot shards: %w", err)
			}
			// Floor: an understated balance is the safe side.
			if b := e.bals[balKey{id, 0}]; b != nil {
				b.others = floorUnits(others, e.l.currencies[b.currency].Exponent)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading hot shards: %w", err)
		}
	}
	if err := br.QueryRow().Scan(&e.at, &e.ids); err != nil {
		return fmt.Errorf("allocating transfer ids: %w", err)
	}
	return nil
}

// applyAll decides the groups in order against the locked balances.
func (e *engine) applyAll() {
	e.transfers.grow(len(e.ids))
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
	var undoBuf [8]undo
	undos := undoBuf[:0]
	save := func(b *balance) {
		for _, u := range undos {
			if u.b == b {
				return
			}
		}
		undos = append(undos, undo{b, *b})
	}
	mark := e.mark()
	fail := func(err error) error {
		for i := len(undos) - 1; i >= 0; i-- {
			*undos[i].b = undos[i].old
		}
		e.truncate(mark)
		return err
	}
	for i := range g.legs {
		lg := &g.legs[i]
		db, cb := e.bals[balKey{lg.debit, lg.debitShard}], e.bals[balKey{lg.credit, lg.creditShard}]
		if db == nil || cb == nil {
			return fail(fieldError("account", ErrUnknownAccount, lg.debit))
		}
		if err := checkDebit(db, e.meta[lg.debit], lg); err != nil {
			return fail(err)
		}
		if err := checkCredit(cb, lg); err != nil {
			return fail(err)
		}
		save(db)
		save(cb)
		db.dPost, db.dPend = db.dPost+lg.amt, db.dPend+lg.pend
		cb.cPost, cb.cPend = cb.cPost+lg.amt, cb.cPend+lg.pend
		db.dirty, cb.dirty = true, true
		// A credit on a hot account's shard is spendable by a later debit of this batch,
		// which is checked on shard 0.
		if lg.creditShard > 0 && !e.meta[lg.credit].shardDebits {
			if b0 := e.bals[balKey{lg.credit, 0}]; b0 != nil {
				save(b0)
				b0.others += lg.amt
			}
		}
		id := ids[i]
		t := &e.transfers
		t.id, t.paymentID, t.code = append(t.id, id), append(t.paymentID, lg.paymentID), append(t.code, string(lg.code))
		t.debit, t.credit = append(t.debit, int64(lg.debit)), append(t.credit, int64(lg.credit))
		t.debitShard, t.creditShard = append(t.debitShard, lg.debitShard), append(t.creditShard, lg.creditShard)
		t.amt, t.pend, t.currency, t.hold = append(t.amt, lg.amt), append(t.pend, lg.pend), append(t.currency, lg.currency), append(t.hold, lg.holdID)
		t.debitBal, t.debitPend = append(t.debitBal, db.cPost-db.dPost), append(t.debitPend, db.cPend-db.dPend)
		t.creditBal, t.creditPend = append(t.creditBal, cb.cPost-cb.dPost), append(t.creditPend, cb.cPend-cb.dPend)
	}
	g.ids = ids
	return nil
}

func (e *engine) mark() int { return len(e.transfers.id) }

// grow sizes the columns for n rows at once rather than by doubling as groups append.
func (t *transferRows) grow(n int) {
	for _, c := range []*[]int64{&t.id, &t.debit, &t.credit, &t.amt, &t.pend, &t.hold, &t.debitBal, &t.debitPend, &t.creditBal, &t.creditPend} {
		*c = slices.Grow(*c, n)
	}
	t.paymentID, t.code, t.currency = slices.Grow(t.paymentID, n), slices.Grow(t.code, n), slices.Grow(t.currency, n)
	t.debitShard, t.creditShard = slices.Grow(t.debitShard, n), slices.Grow(t.creditShard, n)
}

// truncate drops the rows of a refused group.
func (e *engine) truncate(n int) {
	t := &e.transfers
	t.id, t.paymentID, t.code, t.debit, t.credit = t.id[:n], t.paymentID[:n], t.code[:n], t.debit[:n], t.credit[:n]
	t.debitShard, t.creditShard, t.amt, t.pend, t.currency, t.hold = t.debitShard[:n], t.creditShard[:n], t.amt[:n], t.pend[:n], t.currency[:n], t.hold[:n]
	t.debitBal, t.debitPend, t.creditBal, t.creditPend = t.debitBal[:n], t.debitPend[:n], t.creditBal[:n], t.creditPend[:n]
}

// Amounts are computed in int64 minor units and travel as NUMERIC literals with the
// currency's fraction digits (appendUnits), which keeps big-number work out of the
// posting path on both sides: the database parses each value once, with no join to
// currencies nor multiplication per value. A column that is zero in every row (pending
// amounts, holds, shards: most batches have none) goes as NULL, which unnest pads and
// coalesce turns into zeros, so neither side renders and parses thousands of zeros.
const (
	insertTransfers = `
INSERT INTO transfers (id, payment_id, code, debit_account_id, credit_account_id, debit_shard, credit_shard,
                       amount, pending_amount, currency, hold_id, created_at,
                       debit_balance, debit_pending_balance, credit_balance, credit_pending_balance)
SELECT id, pid, code, dr, cr, coalesce(ds, 0), coalesce(cs, 0), amt, coalesce(pend, 0), cur, nullif(hold, 0), $16,
       db, coalesce(dpb, 0), cb, coalesce(cpb, 0)
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::smallint[], $7::smallint[],
              $8::numeric[], $9::numeric[], $10::text[], $11::bigint[], $12::numeric[], $13::numeric[], $14::numeric[], $15::numeric[])
       v(id, pid, code, dr, cr, ds, cs, amt, pend, cur, hold, db, dpb, cb, cpb)`
	// Absolute values are safe: every row written is locked by this transaction. The rows
	// are found by key (one primary-key probe each, under postingSettings) and must still
	// be at the ctid they were locked at; the statement counts the rows it updated, so a
	// row that had moved fails it. The count is checked in SQL, not in Go: a COMMIT may
	// be queued behind it, and only a failed statement keeps that COMMIT from running.
	updateBalances = `
WITH u AS (
UPDATE account_balances b
   SET debits_pending = coalesce(v.dp, 0), debits_posted = v.dpo, credits_pending = coalesce(v.cp, 0), credits_posted = v.cpo
  FROM unnest($1::tid[], $2::bigint[], $3::smallint[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[]) v(t, a, s, dp, dpo, cp, cpo)
 WHERE b.ctid = v.t AND b.account_id = v.a AND b.shard = v.s
RETURNING 1)
SELECT ledger_expect_rows('locked balance rows updated', count(*), $8) FROM u`
)

// queueWrites adds what applyAll decided to a batch.
func (e *engine) queueWrites(b *pgx.Batch) {
	if len(e.transfers.id) == 0 {
		return
	}
	t := &e.transfers
	exps := make([]int32, len(t.id))
	for i, cur := range t.currency {
		exps[i] = e.l.currencies[cur].Exponent
	}
	exp := func(i int) int32 { return exps[i] }
	numExp := func(xs []int64) string { return numericArray(xs, exp) }
	b.Queue(insertTransfers, intArray(t.id), textArray(t.paymentID), textArray(t.code), intArray(t.debit), intArray(t.credit),
		nonZero(t.debitShard, intArray), nonZero(t.creditShard, intArray), numericArray(t.amt, exp), nonZero(t.pend, numExp),
		textArray(t.currency), nonZero(t.hold, intArray), numericArray(t.debitBal, exp), nonZero(t.debitPend, numExp),
		numericArray(t.creditBal, exp), nonZero(t.creditPend, numExp), e.at)
	var accts, dp, dpo, cp, cpo []int64
	var shards []int16
	var tids []string
	exps = exps[:0]
	for _, k := range e.keys {
		x := e.bals[k]
		if x == nil || !x.dirty {
			continue
		}
		accts, shards, exps = append(accts, int64(k.account)), append(shards, k.shard), append(exps, e.l.currencies[x.currency].Exponent)
		tids = append(tids, x.tid)
		dp, dpo, cp, cpo = append(dp, x.dPend), append(dpo, x.dPost), append(cp, x.cPend), append(cpo, x.cPost)
	}
	b.Queue(updateBalances, textArray(tids), intArray(accts), intArray(shards), nonZero(dp, numExp), numericArray(dpo, exp), nonZero(cp, numExp),
		numericArray(cpo, exp), len(accts))
}

// write stores what applyAll decided.
func (e *engine) write(ctx context.Context, tx pgx.Tx) error {
	b := &pgx.Batch{}
	e.queueWrites(b)
	if b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	if err := e.readWrites(br); err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("writing transfers: %w", err)
	}
	return nil
}

// readWrites takes the results of what queueWrites added.
func (e *engine) readWrites(br pgx.BatchResults) error {
	if len(e.transfers.id) == 0 {
		return nil
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("writing transfers: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("writing balances: %w", err)
	}
	return nil
}

// zero is the pending change of a plain posted transfer.
var zero = decimal.Zero
