package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
)

// PaymentCapture captures the hold a payment placed (its first one), as Capture does
// given that hold's id.
type PaymentCapture struct {
	OpKey
	TargetPaymentID string
	Amount          decimal.Decimal
	Mode            CaptureMode
}

// HoldOp is one operation of a HoldBatch: a hold to place or a hold to capture.
type HoldOp struct {
	Reserve *ReserveRequest
	Capture *PaymentCapture
}

// OpResult answers one operation of a HoldBatch.
type OpResult struct {
	Op  Op
	Err error // a refusal, the error Reserve or Capture would return; nothing was stored
	// Alone: the batch left the operation undecided, for Reserve or Capture to run after
	// it. So it does with a capture whose hold was not there before the batch, and with
	// an operation whose key or hold an earlier one of the batch already has: deciding
	// those in the batch would need the earlier one's writes.
	Alone bool
}

// HoldBatch places and captures holds in one database transaction, in the order given,
// with the effects Capture has one by one (Reserve is a HoldBatch of one): each operation on its own (a
// refused one does not fail the others), idempotent by its key, and stored with its
// transfer. One by one, an operation costs about eight round trips and a commit; here
// the whole batch takes three round trips and one commit. The error is for the batch as
// a whole: nothing was written, and retrying is safe.
func (l *Ledger) HoldBatch(ctx context.Context, ops []HoldOp) ([]OpResult, error) {
	for attempt := 0; ; attempt++ {
		rs, err := l.holdBatch(ctx, ops)
		if errors.Is(err, errRace) && attempt < 5 {
			continue
		}
		return rs, err
	}
}

// batchOp is an operation of the batch that reached the database.
type batchOp struct {
	i      int // its index in the batch
	key    OpKey
	digest []byte
	g      *group
	hold   Hold // the hold placed or captured
	kind   OpKind
	amount decimal.Decimal // the operation's: held or captured
	plan   *capturePlan    // a capture's
}

func (l *Ledger) holdBatch(ctx context.Context, ops []HoldOp) ([]OpResult, error) {
	results := make([]OpResult, len(ops))
	keys := map[OpKey]bool{}
	var owners, extIDs, targets []string
	var counters []AccountID
	reserves := 0
	for i, o := range ops {
		var key OpKey
		switch {
		case o.Reserve != nil:
			key = o.Reserve.OpKey
			results[i].Err = l.checkReserve(*o.Reserve)
			counters = append(counters, o.Reserve.Counter)
			reserves++
		case o.Capture != nil:
			key = o.Capture.OpKey
			results[i].Err = l.checkKey(key)
			targets = append(targets, o.Capture.TargetPaymentID)
		default:
			results[i].Err = fieldError("operation", ErrInvalid, i)
		}
		if results[i].Err != nil {
			continue
		}
		if keys[key] {
			results[i].Alone = true
			continue
		}
		keys[key] = true
		owners, extIDs = append(owners, key.Owner), append(extIDs, key.ExternalID)
	}
	if len(owners) == 0 {
		return results, nil
	}

	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("holding batch: %w", err)
	}
	defer release(ctx, conn)
	// Account facts never change, so they may be read before the transaction begins.
	meta, err := l.meta(ctx, conn, counters)
	if err != nil {
		return nil, fmt.Errorf("holding batch: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	// The lookups below are by key too: the transaction's settings apply from here.
	b.Queue(postingSettings)
	b.Queue(`SELECT owner, external_id, id, kind, hold_id, ref_op_id, payment_id, amount, transfer_id, digest FROM hold_ops
		WHERE (owner, external_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, textArray(owners), textArray(extIDs))
	// Holds are locked in id order, before any balance row, as a capture alone does.
	b.Queue(`SELECT `+holdColumns+` FROM holds WHERE payment_id = ANY($1) ORDER BY id FOR UPDATE`, textArray(targets))
	b.Queue(`SELECT array(SELECT nextval(pg_get_serial_sequence('holds', 'id')) FROM generate_series(1, $1::int))`, reserves)
	br := conn.SendBatch(ctx, b)
	found, holds, holdIDs, err := readHoldBatch(br)
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("holding batch: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("holding batch: %w", err)
	}

	var todo []*batchOp
	var groups []*group
	captured := map[int64]bool{}
	for i, o := range ops {
		if results[i].Err != nil || results[i].Alone {
			continue
		}
		op := &batchOp{i: i}
		switch {
		case o.Reserve != nil:
			r := *o.Reserve
			op.key, op.digest, op.kind, op.amount = r.OpKey, r.digest(), OpReserve, r.Amount
			if l.replayed(&results[i], found, op) {
				continue
			}
			m, ok := meta[r.Counter]
			if !ok {
				results[i].Err = fieldError("counter", ErrUnknownAccount, r.Counter)
				continue
			}
			shard := shardFor(m, false, r.Partition)
			op.hold = Hold{ID: holdIDs[0], Owner: r.Owner, PaymentID: r.PaymentID, Account: r.Account, Counter: r.Counter,
				Currency: r.Currency, Held: r.Amount, OverCaptureLimit: r.OverCaptureLimit, ExpiresAt: r.ExpiresAt, shard: shard}
			holdIDs = holdIDs[1:]
			op.g = &group{legs: []leg{r.leg(shard, op.hold.ID)}}
		default:
			c := *o.Capture
			h, ok := holds[c.TargetPaymentID]
			if !ok || captured[h.ID] {
				results[i].Alone = true
				continue
			}
			op.key, op.digest, op.hold, op.kind, op.amount = c.OpKey, captureDigest(h.ID, c.Amount, c.Mode), h, OpCapture, c.Amount
			if l.replayed(&results[i], found, op) {
				continue
			}
			if h.Owner != c.Owner {
				results[i].Err = fieldError("hold_id", ErrUnknownHold, h.ID)
				continue
			}
			plan, err := l.planCapture(h, c.Amount, c.Mode)
			if err != nil {
				results[i].Err = err
				continue
			}
			captured[h.ID] = true
			op.plan = &plan
			op.g = &group{legs: []leg{plan.leg}}
		}
		todo = append(todo, op)
		groups = append(groups, op.g)
	}

	// Every leg names its shards, so the engine's partition picks none.
	e := l.newEngine(0, groups)
	if err := e.prepare(ctx, conn); err != nil {
		return nil, fmt.Errorf("holding batch: %w", err)
	}
	if len(e.keys) > 0 {
		b = &pgx.Batch{}
		e.queue(b)
		br = conn.SendBatch(ctx, b)
		if err := e.read(br); err != nil {
			br.Close()
			return nil, fmt.Errorf("holding batch: %w", err)
		}
		if err := br.Close(); err != nil {
			return nil, fmt.Errorf("holding batch: %w", err)
		}
		e.applyAll()
	}

	var placed, taken, stored []*batchOp
	for _, op := range todo {
		if op.g.err != nil {
			results[op.i].Err = op.g.err
			continue
		}
		if op.plan == nil {
			placed = append(placed, op)
		} else {
			taken = append(taken, op)
		}
		stored = append(stored, op)
	}
	b = &pgx.Batch{}
	if len(placed) > 0 {
		queuePlaced(b, placed)
	}
	e.queueWrites(b)
	if len(taken) > 0 {
		queueTaken(b, taken)
	}
	if len(stored) > 0 {
		queueStored(b, stored)
	}
	b.Queue(`COMMIT`)
	br = conn.SendBatch(ctx, b)
	ids, err := readHoldWrites(br, e, len(placed) > 0, len(taken) > 0, len(stored) > 0)
	if err != nil {
		br.Close()
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("committing hold batch: %w", err)
	}
	for _, op := range stored {
		results[op.i].Op = Op{ID: ids[op.key], Kind: op.kind, HoldID: op.hold.ID, PaymentID: op.hold.PaymentID, Amount: op.amount,
			TransferID: op.g.ids[0]}
	}
	return results, nil
}

// replayed answers an operation whose key is stored: the stored operation if it is the
// same, a conflict if not.
func (l *Ledger) replayed(r *OpResult, found map[OpKey]storedOp, op *batchOp) bool {
	s, ok := found[op.key]
	if !ok {
		return false
	}
	if !bytes.Equal(s.digest, op.digest) {
		r.Err = fieldError("external_id", ErrIdempotencyConflict, op.key.ExternalID)
		return true
	}
	r.Op = s.op
	r.Op.Replayed = true
	return true
}

type storedOp struct {
	op     Op
	digest []byte
}

// readHoldBatch takes the stored operations, the locked holds (the first of each
// payment) and the new hold ids.
func readHoldBatch(br pgx.BatchResults) (map[OpKey]storedOp, map[string]Hold, []int64, error) {
	for range 2 { // BEGIN, postingSettings
		if _, err := br.Exec(); err != nil {
			return nil, nil, nil, fmt.Errorf("beginning: %w", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading operations: %w", err)
	}
	found := map[OpKey]storedOp{}
	for rows.Next() {
		var k OpKey
		var s storedOp
		var holdID, refOp, transfer *int64
		if err := rows.Scan(&k.Owner, &k.ExternalID, &s.op.ID, &s.op.Kind, &holdID, &refOp, &s.op.PaymentID, &s.op.Amount,
			&transfer, &s.digest); err != nil {
			rows.Close()
			return nil, nil, nil, fmt.Errorf("reading operations: %w", err)
		}
		s.op.HoldID, s.op.RefOpID, s.op.TransferID = deref(holdID), deref(refOp), deref(transfer)
		found[k] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("reading operations: %w", err)
	}
	if rows, err = br.Query(); err != nil {
		return nil, nil, nil, fmt.Errorf("locking holds: %w", err)
	}
	holds := map[string]Hold{}
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			rows.Close()
			return nil, nil, nil, fmt.Errorf("locking holds: %w", err)
		}
		if _, ok := holds[h.PaymentID]; !ok {
			holds[h.PaymentID] = h
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("locking holds: %w", err)
	}
	var ids []int64
	if err := br.QueryRow().Scan(&ids); err != nil {
		return nil, nil, nil, fmt.Errorf("allocating hold ids: %w", err)
	}
	return found, holds, ids, nil
}

func queuePlaced(b *pgx.Batch, placed []*batchOp) {
	n := len(placed)
	ids, accts, counters := make([]int64, n), make([]int64, n), make([]int64, n)
	shards := make([]int16, n)
	owners, pids, curs, held, limits, expires := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for j, op := range placed {
		h := op.hold
		ids[j], accts[j], counters[j], shards[j] = h.ID, int64(h.Account), int64(h.Counter), h.shard
		owners[j], pids[j], curs[j], held[j], limits[j] = h.Owner, h.PaymentID, h.Currency, h.Held.String(), h.OverCaptureLimit.String()
		if !h.ExpiresAt.IsZero() {
			expires[j] = h.ExpiresAt.Format(time.RFC3339Nano)
		}
	}
	b.Queue(`INSERT INTO holds (id, owner, payment_id, account_id, counter_account_id, credit_shard, currency, held,
			overcapture_limit, expires_at) OVERRIDING SYSTEM VALUE
		SELECT id, o, p, a, c, s, cur, h::numeric, lim::numeric, nullif(x, '')::timestamptz
		  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::smallint[], $7::text[], $8::text[],
		              $9::text[], $10::text[]) v(id, o, p, a, c, s, cur, h, lim, x)`,
		intArray(ids), textArray(owners), textArray(pids), intArray(accts), intArray(counters), intArray(shards),
		textArray(curs), textArray(held), textArray(limits), textArray(expires))
}

func queueTaken(b *pgx.Batch, taken []*batchOp) {
	n := len(taken)
	ids := make([]int64, n)
	excess, amounts, released := make([]string, n), make([]string, n), make([]string, n)
	for j, op := range taken {
		ids[j], excess[j], amounts[j], released[j] = op.hold.ID, op.plan.excess.String(), op.amount.String(), op.plan.release.String()
	}
	b.Queue(`UPDATE holds h SET held = h.held + v.x::numeric, overcaptured = h.overcaptured + v.x::numeric,
			captured = h.captured + v.a::numeric, released = h.released + v.r::numeric
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) v(id, x, a, r) WHERE h.id = v.id`,
		intArray(ids), textArray(excess), textArray(amounts), textArray(released))
}

func queueStored(b *pgx.Batch, stored []*batchOp) {
	n := len(stored)
	owners, extIDs, kinds, pids, amounts := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	holdIDs, transfers := make([]int64, n), make([]int64, n)
	digests := make([][]byte, n)
	for j, op := range stored {
		owners[j], extIDs[j], pids[j], digests[j] = op.key.Owner, op.key.ExternalID, op.hold.PaymentID, op.digest
		holdIDs[j], transfers[j], kinds[j], amounts[j] = op.hold.ID, op.g.ids[0], string(op.kind), op.amount.String()
	}
	b.Queue(`INSERT INTO hold_ops (owner, external_id, kind, hold_id, payment_id, amount, digest, transfer_id)
		SELECT o, x, k, h, p, a::numeric, d, t
		  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bytea[], $8::bigint[])
		       v(o, x, k, h, p, a, d, t)
		RETURNING owner, external_id, id`,
		textArray(owners), textArray(extIDs), textArray(kinds), intArray(holdIDs), textArray(pids), textArray(amounts),
		byteaArray(digests), intArray(transfers))
}

// readHoldWrites takes the results of the writes and the COMMIT, and the ids of the
// stored operations. A key stored meanwhile by another transaction is a race: the batch
// was rolled back and is decided again.
func readHoldWrites(br pgx.BatchResults, e *engine, placed, taken, stored bool) (map[OpKey]int64, error) {
	if placed {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("placing holds: %w", err)
		}
	}
	if err := e.readWrites(br); err != nil {
		return nil, fmt.Errorf("holding batch: %w", err)
	}
	if taken {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("capturing holds: %w", err)
		}
	}
	ids := map[OpKey]int64{}
	if stored {
		rows, err := br.Query()
		for err == nil && rows.Next() {
			var k OpKey
			var id int64
			if err = rows.Scan(&k.Owner, &k.ExternalID, &id); err == nil {
				ids[k] = id
			}
		}
		if rows != nil {
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "hold_ops_owner_external_id_key" {
			return nil, errRace
		}
		if err != nil {
			return nil, fmt.Errorf("storing operations: %w", err)
		}
	}
	tag, err := br.Exec()
	if err == nil && tag.String() != "COMMIT" {
		// COMMIT in a failed transaction answers ROLLBACK rather than an error.
		err = pgx.ErrTxCommitRollback
	}
	if err != nil {
		return nil, fmt.Errorf("committing hold batch: %w", err)
	}
	return ids, nil
}
