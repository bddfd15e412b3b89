package ingress

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/schemas"
)

// claims writes the status rows of concurrent payment requests, which hold their
// Idempotency-Keys, together: one statement and one synchronous commit per group (see
// groups).
type claims struct {
	pool   *pgxpool.Pool
	groups *groups[*claimReq]
}

type claimReq struct {
	ch, key string
	hash    []byte
	rec     *schemas.Payment
	derive  bool // the answer will be the 202 (no Prefer: wait)
	done    chan claimResult
}

type claimResult struct {
	claimed bool
	derived bool // the row's answer_derived: the answer may be held
	err     error
}

// claimPaymentsSQL claims a group's keys: a payment's status row holds its key, since
// the payment id is derived from the channel and the key (migration 00013). A row a
// payment claim let go after a server error (request_hash NULL, claimed_at set) is
// claimed again, with the new request's details unless the payment has an outcome (an
// earlier request did reach Kafka, and the row keeps what was posted). A key that
// idempotency_keys holds (another route's, or a payment's or an operation's from before
// that migration) is not claimed here, nor is a status row no payment claim wrote (an
// operation's, or one from before the migration): the request then finds the key and
// is refused as its reuse.
const claimPaymentsSQL = `INSERT INTO payment_status AS p (payment_id, channel_key, type, amount, currency,
	     source_wallet_id, destination_wallet_id, reference, created_at, request_hash, claimed_at, answer_derived)
	 SELECT i.payment_id, i.channel_key, i.type, i.amount::numeric, i.currency,
	        nullif(i.src, ''), nullif(i.dst, ''), nullif(i.ref, ''), i.created_at, i.request_hash, now(), i.derive
	 FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[],
	             $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::bool[])
	      AS i(channel_key, idem_key, request_hash, payment_id, type, amount, currency, src, dst, ref, created_at, derive)
	 WHERE NOT EXISTS (SELECT FROM idempotency_keys k WHERE k.channel_key = i.channel_key AND k.idem_key = i.idem_key OFFSET 0)
	 ON CONFLICT (payment_id) DO UPDATE
	     SET (type, amount, currency, source_wallet_id, destination_wallet_id, reference, created_at) =
	         (SELECT * FROM (
	              SELECT excluded.type, excluded.amount, excluded.currency, excluded.source_wallet_id,
	                     excluded.destination_wallet_id, excluded.reference, excluded.created_at
	              WHERE NOT EXISTS (SELECT FROM payment_outcomes o WHERE o.payment_id = p.payment_id)
	              UNION ALL
	              SELECT p.type, p.amount, p.currency, p.source_wallet_id, p.destination_wallet_id, p.reference, p.created_at
	          ) d LIMIT 1),
	         request_hash = excluded.request_hash, claimed_at = excluded.claimed_at, answer_derived = false
	     WHERE p.request_hash IS NULL AND p.claimed_at IS NOT NULL
	 RETURNING p.payment_id, p.answer_derived`

// maxClaimGroup bounds one statement's rows.
const maxClaimGroup = 256

func newClaims(pool *pgxpool.Pool, writers int) *claims {
	c := &claims{pool: pool}
	c.groups = newGroups(writers, maxClaimGroup, 0, c.write)
	return c
}

// claim records one request's key and status row, reporting whether this request owns
// the key (false: the key was there already).
func (c *claims) claim(ctx context.Context, ch, key string, hash []byte, rec *schemas.Payment, derive bool) (claimResult, error) {
	r := &claimReq{ch: ch, key: key, hash: hash, rec: rec, derive: derive, done: make(chan claimResult, 1)}
	c.groups.add(r)
	select {
	case res := <-r.done:
		return res, res.err
	case <-ctx.Done():
		// The group may still write the key; a retry then finds it and waits or replays.
		return claimResult{}, ctx.Err()
	}
}

func (c *claims) write(group []*claimReq) {
	// One key twice in a group: the first request claims it, the others see it taken.
	seen := map[[2]string]bool{}
	var rows []*claimReq
	for _, r := range group {
		k := [2]string{r.ch, r.key}
		if seen[k] {
			continue
		}
		seen[k] = true
		rows = append(rows, r)
	}
	n := len(rows)
	ids, types, currencies := make([]string, n), make([]string, n), make([]string, n)
	srcs, dsts, refs := make([]string, n), make([]string, n), make([]string, n)
	chs, keys := make([]string, n), make([]string, n)
	hashes := make([][]byte, n)
	derive := make([]bool, n)
	amounts := make([]string, n) // as text: pgx encodes a []decimal.Decimal by reflection
	created := make([]time.Time, n)
	for i, r := range rows {
		chs[i], keys[i], hashes[i], ids[i], types[i] = r.ch, r.key, r.hash, r.rec.PaymentID, statusType(r.rec)
		amounts[i], currencies[i], srcs[i], dsts[i] = r.rec.Amount.Amount.String(), r.rec.Amount.Currency, r.rec.PayerWallet, r.rec.PayeeWallet
		refs[i], created[i], derive[i] = r.rec.Reference, r.rec.CreatedAt, r.derive
	}
	// The group is written even if a request in it gave up: its retry will find the key.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	claimed := map[string]bool{} // payment id: its answer_derived
	locks := make([]int64, n)
	for i := range rows {
		locks[i] = keyLock(chs[i], keys[i])
	}
	slices.Sort(locks)
	b := &pgx.Batch{} // one implicit transaction (see lockKeysSQL)
	b.Queue(lockKeysSQL, locks)
	b.Queue(claimPaymentsSQL, chs, keys, hashes, ids, types, amounts, currencies, srcs, dsts, refs, created, derive).
		Query(func(q pgx.Rows) error {
			for q.Next() {
				var id string
				var derived bool
				if err := q.Scan(&id, &derived); err != nil {
					return err
				}
				claimed[id] = derived
			}
			return q.Err()
		})
	err := c.pool.SendBatch(ctx, b).Close()
	if err != nil {
		err = fmt.Errorf("recording payment keys: %w", err)
	}
	owner := map[[2]string]*claimReq{}
	for _, r := range rows {
		owner[[2]string{r.ch, r.key}] = r
	}
	for _, r := range group {
		k := [2]string{r.ch, r.key}
		derived, ok := claimed[r.rec.PaymentID]
		mine := err == nil && ok && owner[k] == r
		r.done <- claimResult{claimed: mine, derived: mine && derived, err: err}
	}
}
