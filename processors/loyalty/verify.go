package loyalty

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/ledger"
)

// VerifyBudgets checks every campaign's budget bookkeeping: what it has granted equals the
// sum of its stored grants, and stays within what was ever credited to its budget
// account. Grants and their totals are written together (one transaction, or Release's
// transaction), so any snapshot of a live database agrees; `paystream verify` reports it
// after the ledger's invariants.
func VerifyBudgets(ctx context.Context, pool *pgxpool.Pool) (ledger.Check, error) {
	start := time.Now()
	c := ledger.Check{Name: "campaign_budgets",
		Invariant: "every campaign's granted total equals its stored grants and stays within what its budget account was funded"}
	err := pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE bad),
		coalesce(string_agg(id || ': granted ' || granted || ', grants ' || grants || ', funded ' || funded, '; ') FILTER (WHERE bad), '')
		FROM (SELECT c.id, c.granted, coalesce(g.total, 0) grants, coalesce(f.funded, 0) funded,
			c.granted <> coalesce(g.total, 0) OR c.granted > coalesce(f.funded, 0) AS bad
			FROM campaigns c
			LEFT JOIN (SELECT campaign_id, sum(amount) total FROM campaign_grants GROUP BY campaign_id) g ON g.campaign_id = c.id
			LEFT JOIN LATERAL (SELECT sum(b.credits_posted) funded FROM accounts a JOIN account_balances b ON b.account_id = a.id
				WHERE a.subsidiary_id = c.subsidiary_id AND a.purpose = $1 AND a.currency = c.currency AND a.ref = c.id) f ON true) x`,
		string(ledger.CampaignBudget)).Scan(&c.Checked, &c.Violations, &c.Detail)
	if err != nil {
		return ledger.Check{}, fmt.Errorf("verifying campaign budgets: %w", err)
	}
	if len(c.Detail) > 300 {
		c.Detail = c.Detail[:300] + "…"
	}
	c.Pass, c.Took = c.Violations == 0, time.Since(start)
	return c, nil
}
