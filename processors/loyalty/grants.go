package loyalty

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
)

// A batch's budget grants are decided in memory and written once, so a batch costs the
// database two reads and one transaction whatever its number of rewarded payments.
// Prepare reads what each cash campaign the batch may reward has left, and what the
// batch's payments were granted before (a retried batch gets the same grants back);
// Process spends from that; Finish writes the new grants and the campaigns' totals.
//
// Several loyalty workers may grant from one campaign. Finish locks the campaigns in id
// order and writes only if every campaign's total stays within what was funded; when
// another worker has promised the money this batch counted on, it writes nothing and the
// batch is decided again on fresh figures (ErrBudgetRaced).

// ErrBudgetRaced is returned by Finish when another worker promised, between this batch's
// Prepare and Finish, budget the batch had counted on; the runner retries the batch.
var ErrBudgetRaced = errors.New("campaign budget promised by another worker meanwhile")

// grantBatch is what the stage knows of the budgets while it decides one batch.
type grantBatch struct {
	batch    uint64
	snap     *snapshot // the campaigns of the whole batch, even if a refresh comes between
	payments map[string]bool
	account  map[string]ledger.AccountID  // budget account by cash campaign; unfunded ones absent
	left     map[string]decimal.Decimal   // by campaign: funded, less granted, less this batch's grants
	known    map[grantKey]decimal.Decimal // grants stored before, and this batch's
	made     []grant                      // this batch's new grants, in order
}

type grantKey struct{ campaign, payment string }

// grant is the promise of a cash reward from a campaign's budget for a payment.
type grant struct {
	campaign, payment, payer string
	kind                     Kind
	amount                   decimal.Decimal
}

// Prepare reads the budgets and prior grants of the batch's cash rewards.
func (s *Stage) Prepare(ctx context.Context, ins []*processors.Input) error {
	snap, err := s.current(ctx)
	if err != nil {
		return err
	}
	b := &grantBatch{snap: snap, payments: map[string]bool{}, account: map[string]ledger.AccountID{},
		left: map[string]decimal.Decimal{}, known: map[grantKey]decimal.Decimal{}}
	if len(ins) > 0 {
		b.batch = ins[0].Batch
	}
	s.batch = nil
	var campaigns, payments []string
	var accounts []int64
	for _, in := range ins {
		p, ok := in.Value.(*schemas.Payment)
		if !ok {
			continue
		}
		b.payments[p.PaymentID] = true
		eligible := false
		for _, c := range snap.bySub[p.Subsidiary] {
			if !c.Kind.Cash() || !c.Eligible(p) {
				continue
			}
			eligible = true
			if _, seen := b.account[c.ID]; seen {
				continue
			}
			acc, funded, err := s.budgetAccount(ctx, snap, c)
			if err != nil {
				return err
			}
			if funded {
				b.account[c.ID] = acc
				campaigns, accounts = append(campaigns, c.ID), append(accounts, int64(acc))
			}
		}
		if eligible {
			payments = append(payments, p.PaymentID)
		}
	}
	if len(campaigns) > 0 && len(payments) > 0 {
		if err := s.rules.readBudgets(ctx, b, campaigns, accounts, payments); err != nil {
			return err
		}
	}
	s.batch = b
	return nil
}

// budgetAccount returns c's budget account; funded is false for a campaign whose account
// was never opened.
func (s *Stage) budgetAccount(ctx context.Context, snap *snapshot, c Campaign) (ledger.AccountID, bool, error) {
	if v, ok := snap.budgets.Load(c.ID); ok {
		return v.(ledger.AccountID), true, nil
	}
	a, err := s.led.SystemAccount(ctx, c.Subsidiary, ledger.CampaignBudget, c.Currency, c.ID)
	if errors.Is(err, ledger.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("finding the budget of campaign %s: %w", c.ID, err)
	}
	snap.budgets.Store(c.ID, a.ID)
	return a.ID, true, nil
}

// batchOf returns the grants of in's batch. A stage driven without Prepare (a direct
// call) prepares the one input; the runner always prepares whole batches.
func (s *Stage) batchOf(ctx context.Context, in *processors.Input, p *schemas.Payment) (*grantBatch, error) {
	if b := s.batch; b != nil && b.batch == in.Batch && b.payments[p.PaymentID] {
		return b, nil
	}
	if b := s.batch; b != nil && len(b.made) > 0 {
		return nil, fmt.Errorf("rewarding payment %s: the grants of the batch before it are not written yet (Finish)", p.PaymentID)
	}
	if err := s.Prepare(ctx, []*processors.Input{in}); err != nil {
		return nil, err
	}
	return s.batch, nil
}

// take promises amount from c's budget for payment, unless that would take what was
// promised past what was funded. A payment granted before gets that grant back.
func (b *grantBatch) take(c Campaign, payment, payer string, amount decimal.Decimal) (decimal.Decimal, bool) {
	k := grantKey{c.ID, payment}
	if a, ok := b.known[k]; ok {
		return a, true
	}
	left, ok := b.left[c.ID]
	if !ok || amount.GreaterThan(left) {
		return decimal.Decimal{}, false
	}
	b.left[c.ID] = left.Sub(amount)
	b.known[k] = amount
	b.made = append(b.made, grant{campaign: c.ID, payment: payment, payer: payer, kind: c.Kind, amount: amount})
	return amount, true
}

// undo takes back the grants made since mark, those of a payment the stage did not
// decide (it failed, or its record goes to the dead-letter topic).
func (b *grantBatch) undo(mark int) {
	for _, g := range b.made[mark:] {
		b.left[g.campaign] = b.left[g.campaign].Add(g.amount)
		delete(b.known, grantKey{g.campaign, g.payment})
	}
	b.made = b.made[:mark]
}

// Finish writes the batch's grants. Its commit waits for the disk, so the grants are
// durable before the batch's records are: a database crash cannot lose grants whose
// rewards the stream has passed on.
func (s *Stage) Finish(ctx context.Context) error {
	b := s.batch
	s.batch = nil
	if b == nil || len(b.made) == 0 {
		return nil
	}
	return s.rules.writeGrants(ctx, b)
}

// readBudgets reads, in one round trip, what each campaign has left (funded less
// granted) and the batch's payments' grants stored before.
func (r *Rules) readBudgets(ctx context.Context, b *grantBatch, campaigns []string, accounts []int64, payments []string) error {
	var q pgx.Batch
	q.Queue(`SELECT c.id, (SELECT coalesce(sum(a.credits_posted), 0) FROM account_balances a WHERE a.account_id = u.account_id) - c.granted
		   FROM unnest($1::text[], $2::bigint[]) AS u(id, account_id) JOIN campaigns c ON c.id = u.id`,
		campaigns, accounts).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var left decimal.Decimal
			if err := rows.Scan(&id, &left); err != nil {
				return err
			}
			b.left[id] = left
		}
		return rows.Err()
	})
	q.Queue(`SELECT campaign_id, payment_id, amount FROM campaign_grants WHERE payment_id = ANY($1) AND campaign_id = ANY($2)`,
		payments, campaigns).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k grantKey
			var amount decimal.Decimal
			if err := rows.Scan(&k.campaign, &k.payment, &amount); err != nil {
				return err
			}
			b.known[k] = amount
		}
		return rows.Err()
	})
	if err := r.pool.SendBatch(ctx, &q).Close(); err != nil {
		return fmt.Errorf("reading campaign budgets: %w", err)
	}
	return nil
}

// writeGrants stores a batch's grants and adds them to their campaigns' totals, all or
// nothing: every campaign's total must stay within what was funded. The campaign rows are
// locked in id order first, so writers of several campaigns, and Release, cannot
// deadlock, and the check that follows sees every total as committed. Two round trips:
// the locks and the writes, then COMMIT or ROLLBACK.
func (r *Rules) writeGrants(ctx context.Context, b *grantBatch) error {
	total := map[string]decimal.Decimal{}
	var campaigns, payments, payers, kinds, amounts []string
	for _, g := range b.made {
		total[g.campaign] = total[g.campaign].Add(g.amount)
		campaigns, payments, payers = append(campaigns, g.campaign), append(payments, g.payment), append(payers, g.payer)
		kinds, amounts = append(kinds, string(g.kind)), append(amounts, g.amount.String())
	}
	ids := slices.Sorted(maps.Keys(total))
	sums, accounts := make([]string, len(ids)), make([]int64, len(ids))
	for i, id := range ids {
		sums[i], accounts[i] = total[id].String(), int64(b.account[id])
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("writing %d budget grants: %w", len(b.made), err)
	}
	// A connection left inside the transaction by an error is closed, not reused.
	defer conn.Release()
	var q pgx.Batch
	q.Queue(`BEGIN`)
	q.Queue(`SELECT id FROM campaigns WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	var fit int
	q.Queue(`WITH per AS (
		     SELECT * FROM unnest($1::text[], $2::numeric[], $3::bigint[]) AS per(id, amount, account_id)),
		 upd AS (
		     UPDATE campaigns c SET granted = c.granted + per.amount FROM per
		      WHERE c.id = per.id
		        AND c.granted + per.amount <= (SELECT coalesce(sum(a.credits_posted), 0) FROM account_balances a WHERE a.account_id = per.account_id)
		     RETURNING c.id),
		 ins AS (
		     INSERT INTO campaign_grants (campaign_id, payment_id, payer, kind, amount)
		     SELECT g.campaign_id, g.payment_id, g.payer, g.kind, g.amount
		       FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::numeric[]) AS g(campaign_id, payment_id, payer, kind, amount)
		      WHERE g.campaign_id IN (SELECT id FROM upd)
		     RETURNING 1)
		 SELECT count(*) FROM upd`,
		ids, sums, accounts, campaigns, payments, payers, kinds, amounts).QueryRow(func(row pgx.Row) error { return row.Scan(&fit) })
	if err := conn.SendBatch(ctx, &q).Close(); err != nil {
		return fmt.Errorf("writing %d budget grants: %w", len(b.made), err)
	}
	end := "COMMIT"
	if fit < len(ids) {
		end = "ROLLBACK"
	}
	if _, err := conn.Exec(ctx, end); err != nil {
		return fmt.Errorf("writing %d budget grants: %w", len(b.made), err)
	}
	if fit < len(ids) {
		return fmt.Errorf("writing budget grants: %d of %d campaigns would exceed their funding: %w", len(ids)-fit, len(ids), ErrBudgetRaced)
	}
	return nil
}
