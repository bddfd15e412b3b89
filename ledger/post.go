package ledger

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Status is the stored outcome of a posting.
type Status string

// Posting outcomes.
const (
	Posted   Status = "posted"
	Rejected Status = "rejected"
)

// Result is the outcome of one posting. A rejection is final and stored: replaying the
// payment id returns it again.
type Result struct {
	PaymentID   string
	Status      Status // empty when the posting was not stored (malformed, or a conflict)
	Err         error  // why it was rejected; wraps a sentinel
	Replayed    bool   // the payment id had been posted before; nothing was written
	TransferIDs []int64
}

// BatchOptions tune PostBatch.
type BatchOptions struct {
	// Partition is the Kafka partition the batch comes from; it picks the balance rows of
	// hot accounts, so batches of different partitions do not wait for each other.
	// Default 0.
	Partition int
}

// Post applies one posting all-or-nothing. The error is non-nil when the posting was
// rejected (Result.Err) or could not be decided (a database failure: retry).
func (l *Ledger) Post(ctx context.Context, p Posting) (Result, error) {
	rs, err := l.PostBatch(ctx, []Posting{p}, BatchOptions{})
	if err != nil {
		return Result{}, err
	}
	return rs[0], rs[0].Err
}

// PostBatch applies postings in one database transaction, each on its own: a rejected
// posting does not fail the others, and postings see the balances left by the ones
// before them. The error is for the batch as a whole (nothing was written; retrying
// with the same postings is safe, as every payment id posts at most once).
func (l *Ledger) PostBatch(ctx context.Context, ps []Posting, opts BatchOptions) ([]Result, error) {
	results := make([]Result, len(ps))
	groups := make([]*group, len(ps))
	digests := make([][]byte, len(ps))
	first := map[string]int{} // payment id -> index of its first occurrence in the batch
	var claimIDs []string
	var claimDigests [][]byte
	for i, p := range ps {
		results[i].PaymentID = p.PaymentID
		groups[i] = &group{}
		if err := l.validate(p); err != nil {
			if p.PaymentID == "" || len(p.Transfers) == 0 {
				results[i].Err = err
				groups[i].err = err
				continue
			}
			groups[i].err = err // stored as a rejection
		}
		digests[i] = p.digest()
		if j, dup := first[p.PaymentID]; dup {
			groups[i].err = errDuplicateInBatch{j}
			continue
		}
		first[p.PaymentID] = i
		claimIDs = append(claimIDs, p.PaymentID)
		claimDigests = append(claimDigests, digests[i])
		if groups[i].err == nil {
			groups[i].legs = legsOf(p)
		}
	}
	// Claims go in id order so two batches sharing ids cannot deadlock on them.
	order := make([]int, len(claimIDs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmpString(claimIDs[a], claimIDs[b]) })
	sortedIDs := make([]string, len(order))
	sortedDigests := make([][]byte, len(order))
	for i, o := range order {
		sortedIDs[i], sortedDigests[i] = claimIDs[o], claimDigests[o]
	}

	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("posting batch: %w", err)
	}
	defer tx.Rollback(ctx)
	e := l.newEngine(opts.Partition, groups)
	if err := e.prepare(ctx, tx); err != nil {
		return nil, fmt.Errorf("posting batch: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO postings (payment_id, digest, status)
		SELECT id, d, 'posted' FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY v(id, d, n) ORDER BY n
		ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id`, sortedIDs, sortedDigests)
	e.queue(b)
	br := tx.SendBatch(ctx, b)
	claimed := map[string]bool{}
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			var id string
			if err = rows.Scan(&id); err != nil {
				break
			}
			claimed[id] = true
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("claiming payment ids: %w", err)
	}
	if err := e.read(br); err != nil {
		br.Close()
		return nil, fmt.Errorf("posting batch: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("posting batch: %w", err)
	}

	var replays []string
	for i, p := range ps {
		if _, dup := groups[i].err.(errDuplicateInBatch); dup || results[i].Err != nil {
			continue
		}
		if !claimed[p.PaymentID] {
			replays = append(replays, p.PaymentID)
			results[i].Replayed = true
			groups[i].legs, groups[i].err = nil, errReplay
		}
	}
	// Only ids held by this batch are applied; the engine skips groups with an error.
	e.applyAll()
	if err := e.write(ctx, tx); err != nil {
		return nil, fmt.Errorf("posting batch: %w", err)
	}
	var rejIDs, rejReasons, rejDetails []string
	for i, g := range groups {
		if results[i].Err != nil || results[i].Replayed {
			continue
		}
		if _, dup := g.err.(errDuplicateInBatch); dup {
			continue
		}
		if g.err != nil {
			results[i].Status, results[i].Err = Rejected, g.err
			rejIDs = append(rejIDs, ps[i].PaymentID)
			rejReasons = append(rejReasons, Reason(g.err))
			rejDetails = append(rejDetails, g.err.Error())
			continue
		}
		results[i].Status, results[i].TransferIDs = Posted, g.ids
	}
	if len(rejIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE postings p SET status = 'rejected', reason = v.r, detail = v.d
			FROM unnest($1::text[], $2::text[], $3::text[]) v(id, r, d) WHERE p.payment_id = v.id`,
			rejIDs, rejReasons, rejDetails); err != nil {
			return nil, fmt.Errorf("storing rejections: %w", err)
		}
	}
	if len(replays) > 0 {
		if err := l.readStored(ctx, tx, replays, ps, digests, results); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("committing batch: %w", err)
	}
	for i, g := range groups {
		if d, dup := g.err.(errDuplicateInBatch); dup {
			results[i] = results[d.first]
			results[i].Replayed = true
			if !bytes.Equal(digests[i], digests[d.first]) {
				results[i] = Result{PaymentID: ps[i].PaymentID, Err: fieldError("payment_id", ErrIdempotencyConflict, ps[i].PaymentID)}
			}
		}
	}
	return results, nil
}

type errDuplicateInBatch struct{ first int }

func (errDuplicateInBatch) Error() string { return "payment id repeated in batch" }

var errReplay = fmt.Errorf("replay")

// readStored fills the results of replayed payment ids from what was stored.
func (l *Ledger) readStored(ctx context.Context, q querier, ids []string, ps []Posting, digests [][]byte, results []Result) error {
	type stored struct {
		digest         []byte
		status         Status
		reason, detail string
		transfers      []int64
	}
	m := map[string]*stored{}
	rows, err := q.Query(ctx, `SELECT payment_id, digest, status, reason, detail,
		array(SELECT t.id FROM transfers t WHERE t.payment_id = p.payment_id ORDER BY t.id)
		FROM postings p WHERE payment_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("reading stored postings: %w", err)
	}
	for rows.Next() {
		var id string
		s := &stored{}
		if err := rows.Scan(&id, &s.digest, &s.status, &s.reason, &s.detail, &s.transfers); err != nil {
			rows.Close()
			return fmt.Errorf("reading stored postings: %w", err)
		}
		m[id] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading stored postings: %w", err)
	}
	for i, p := range ps {
		if !results[i].Replayed {
			continue
		}
		s := m[p.PaymentID]
		switch {
		case s == nil:
			return fmt.Errorf("reading stored posting %s: %w", p.PaymentID, ErrNotFound)
		case !bytes.Equal(s.digest, digests[i]):
			results[i].Err = fieldError("payment_id", ErrIdempotencyConflict, p.PaymentID)
		case s.status == Rejected:
			results[i].Status, results[i].Err = Rejected, &storedError{s.reason, s.detail}
		default:
			results[i].Status, results[i].TransferIDs = Posted, s.transfers
		}
	}
	return nil
}

// validate checks a posting's shape and amounts; it never rounds.
func (l *Ledger) validate(p Posting) error {
	if p.PaymentID == "" {
		return fieldError("payment_id", ErrInvalid, "")
	}
	if len(p.Transfers) == 0 {
		return fieldError("transfers", ErrInvalid, 0)
	}
	for i, t := range p.Transfers {
		if err := l.currencies.checkAmount(fmt.Sprintf("transfers[%d].amount", i), t.Amount, t.Currency); err != nil {
			return err
		}
		if t.Code == "" {
			return fieldError(fmt.Sprintf("transfers[%d].code", i), ErrInvalid, "")
		}
	}
	return nil
}

func legsOf(p Posting) []leg {
	legs := make([]leg, len(p.Transfers))
	for i, t := range p.Transfers {
		legs[i] = leg{code: t.Code, debit: t.Debit, credit: t.Credit, debitShard: -1, creditShard: -1,
			amount: t.Amount, pending: zero, currency: t.Currency, mcc: t.MCC, paymentID: p.PaymentID}
	}
	return legs
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
