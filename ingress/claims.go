package ingress

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/schemas"
)

// claims writes the Idempotency-Keys and status rows of concurrent payment requests
// together: one statement and one synchronous commit per group (see groups).
type claims struct {
	pool   *pgxpool.Pool
	groups *groups[*claimReq]
}

type claimReq struct {
	ch, key string
	hash    []byte
	rec     *schemas.Payment
	done    chan claimResult
}

type claimResult struct {
	claimed bool
	err     error
}

// maxClaimGroup bounds one statement's rows.
const maxClaimGroup = 256

func newClaims(pool *pgxpool.Pool, writers int) *claims {
	c := &claims{pool: pool}
	c.groups = newGroups(writers, maxClaimGroup, c.write)
	return c
}

// claim records one request's key and status row, reporting whether this request owns
// the key (false: the key was there already).
func (c *claims) claim(ctx context.Context, ch, key string, hash []byte, rec *schemas.Payment) (bool, error) {
	r := &claimReq{ch: ch, key: key, hash: hash, rec: rec, done: make(chan claimResult, 1)}
	c.groups.add(r)
	select {
	case res := <-r.done:
		return res.claimed, res.err
	case <-ctx.Done():
		// The group may still write the key; a retry then finds it and waits or replays.
		return false, ctx.Err()
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
	chs, keys, ids, types, currencies := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	srcs, dsts, refs := make([]string, n), make([]string, n), make([]string, n)
	hashes := make([][]byte, n)
	amounts := make([]string, n) // as text: pgx encodes a []decimal.Decimal by reflection
	created := make([]time.Time, n)
	for i, r := range rows {
		chs[i], keys[i], hashes[i], ids[i], types[i] = r.ch, r.key, r.hash, r.rec.PaymentID, statusType(r.rec)
		amounts[i], currencies[i], srcs[i], dsts[i] = r.rec.Amount.Amount.String(), r.rec.Amount.Currency, r.rec.PayerWallet, r.rec.PayeeWallet
		refs[i], created[i] = r.rec.Reference, r.rec.CreatedAt
	}
	// The group is written even if a request in it gave up: its retry will find the key.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	claimed := map[[2]string]bool{}
	q, err := c.pool.Query(ctx,
		`WITH input AS (
		     SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[],
		                          $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])
		         AS t(channel_key, idem_key, request_hash, payment_id, type, amount, currency, src, dst, ref, created_at)),
		 k AS (
		     INSERT INTO idempotency_keys (channel_key, idem_key, request_hash)
		     SELECT channel_key, idem_key, request_hash FROM input
		     ON CONFLICT DO NOTHING RETURNING channel_key, idem_key),
		 st AS (
		     INSERT INTO payment_status (payment_id, channel_key, type, amount, currency,
		         source_wallet_id, destination_wallet_id, reference, created_at)
		     SELECT i.payment_id, i.channel_key, i.type, i.amount::numeric, i.currency,
		            nullif(i.src, ''), nullif(i.dst, ''), nullif(i.ref, ''), i.created_at
		     FROM input i JOIN k USING (channel_key, idem_key)
		     ON CONFLICT (payment_id) DO NOTHING)
		 SELECT channel_key, idem_key FROM k`,
		chs, keys, hashes, ids, types, amounts, currencies, srcs, dsts, refs, created)
	if err == nil {
		for q.Next() {
			var k [2]string
			if err = q.Scan(&k[0], &k[1]); err != nil {
				break
			}
			claimed[k] = true
		}
		q.Close()
		if err == nil {
			err = q.Err()
		}
	}
	if err != nil {
		err = fmt.Errorf("recording payment keys: %w", err)
	}
	owner := map[[2]string]*claimReq{}
	for _, r := range rows {
		owner[[2]string{r.ch, r.key}] = r
	}
	for _, r := range group {
		k := [2]string{r.ch, r.key}
		r.done <- claimResult{claimed: err == nil && claimed[k] && owner[k] == r, err: err}
	}
}
