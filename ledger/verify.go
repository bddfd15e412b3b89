package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Check is the outcome of one invariant.
type Check struct {
	Name       string // stable, for scripts
	Invariant  string // what is checked, in words
	Pass       bool
	Checked    int64 // rows examined
	Violations int64
	Detail     string // the first offenders, when any
	Took       time.Duration
}

// Report is what `paystream verify` prints.
type Report struct {
	Checks []Check
}

// OK reports whether every invariant holds.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return true
}

// String renders the report one invariant per line.
func (r Report) String() string {
	var b strings.Builder
	for _, c := range r.Checks {
		mark := "PASS"
		if !c.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "%s  %-28s checked=%d violations=%d (%s) %s\n", mark, c.Name, c.Checked, c.Violations,
			c.Took.Round(time.Millisecond), c.Invariant)
		if c.Detail != "" {
			fmt.Fprintf(&b, "      %s\n", c.Detail)
		}
	}
	return b.String()
}

// invariant is one check: its query returns checked, violations and a detail string.
type invariant struct {
	name, text, sql string
}

// invariants are DESIGN.md guarantee 6. Checks over accounts, balance rows and holds are
// index or small-table reads; the two over transfers read only those created since the
// last successful run ($1), the older ones being carried in verify_sums.
var invariants = []invariant{
	{"transfer_one_currency", "every transfer debits and credits the same amount in one currency, within its scale", `
		SELECT count(*), count(*) FILTER (WHERE da.id IS NULL OR ca.id IS NULL OR da.currency <> t.currency
			OR ca.currency <> t.currency OR t.amount < 0 OR scale(t.amount) > c.exponent OR scale(t.pending_amount) > c.exponent),
		coalesce(string_agg(t.id::text, ',') FILTER (WHERE da.id IS NULL OR ca.id IS NULL OR da.currency <> t.currency
			OR ca.currency <> t.currency OR t.amount < 0 OR scale(t.amount) > c.exponent), '')
		FROM transfers t LEFT JOIN accounts da ON da.id = t.debit_account_id
		LEFT JOIN accounts ca ON ca.id = t.credit_account_id LEFT JOIN currencies c ON c.code = t.currency
		WHERE t.created_at >= $1`},
	{"debits_equal_credits", "per currency, total debits equal total credits (posted and pending)", `
		SELECT count(*), count(*) FILTER (WHERE d <> c OR dp <> cp),
		coalesce(string_agg(currency || ' debits ' || d || ' credits ' || c, '; ') FILTER (WHERE d <> c OR dp <> cp), '')
		FROM (SELECT a.currency, sum(b.debits_posted) d, sum(b.credits_posted) c, sum(b.debits_pending) dp, sum(b.credits_pending) cp
			FROM account_balances b JOIN accounts a ON a.id = b.account_id GROUP BY a.currency) x`},
	{"balances_equal_transfers", "cached balances equal the sum of their transfers", `
		WITH sides AS (
			SELECT debit_account_id a, debit_shard s, amount dpo, pending_amount dp, 0::numeric cpo, 0::numeric cp
			  FROM transfers WHERE created_at >= $1
			UNION ALL
			SELECT credit_account_id, credit_shard, 0, 0, amount, pending_amount FROM transfers WHERE created_at >= $1
			UNION ALL
			SELECT account_id, shard, debits_posted, debits_pending, credits_posted, credits_pending FROM verify_sums),
		sums AS (SELECT a, s, sum(dpo) dpo, sum(dp) dp, sum(cpo) cpo, sum(cp) cp FROM sides GROUP BY a, s)
		SELECT (SELECT count(*) FROM transfers WHERE created_at >= $1), count(*) FILTER (WHERE bad),
		coalesce(string_agg(a || '/' || s, ',') FILTER (WHERE bad), '')
		FROM (SELECT coalesce(b.account_id, x.a) a, coalesce(b.shard, x.s) s,
			b.account_id IS NULL OR b.debits_posted <> coalesce(x.dpo, 0) OR b.debits_pending <> coalesce(x.dp, 0)
			OR b.credits_posted <> coalesce(x.cpo, 0) OR b.credits_pending <> coalesce(x.cp, 0) AS bad
			FROM account_balances b FULL JOIN sums x ON x.a = b.account_id AND x.s = b.shard) y`},
	{"running_balances", "each balance row equals the running balance of its last account item", `
		SELECT count(*), count(*) FILTER (WHERE bad), coalesce(string_agg(account_id || '/' || shard, ',') FILTER (WHERE bad), '')
		FROM (SELECT b.account_id, b.shard,
			coalesce(x.balance, 0) <> b.credits_posted - b.debits_posted
			OR coalesce(x.pending_balance, 0) <> b.credits_pending - b.debits_pending AS bad
			FROM account_balances b LEFT JOIN LATERAL (` + lastItem("b.account_id", "b.shard", "'infinity'") + `) x ON true) y`},
	{"no_overdraft", "no account with a no-overdraft flag is below its minimum balance (nor a shard of one that checks shards on their own below zero)", `
		SELECT count(*), count(*) FILTER (WHERE avail < min_balance OR shard_bad),
		coalesce(string_agg(id || ' at ' || avail, ',') FILTER (WHERE avail < min_balance OR shard_bad), '')
		FROM (SELECT a.id, a.min_balance, sum(b.credits_posted - b.debits_posted - b.debits_pending) avail,
			bool_or(a.shard_debits AND b.credits_posted - b.debits_posted - b.debits_pending < 0) shard_bad
			FROM accounts a JOIN account_balances b ON b.account_id = a.id WHERE a.no_overdraft GROUP BY a.id) x`},
	{"holds_within_held", "captured + voided <= held, and refunded <= captured, per hold and per capture", `
		SELECT (SELECT count(*) FROM holds) + (SELECT count(*) FROM hold_ops WHERE kind IN ('capture', 'authorize')),
		(SELECT count(*) FROM holds WHERE captured + released > held OR refunded > captured)
		+ (SELECT count(*) FROM hold_ops WHERE kind IN ('capture', 'authorize') AND refunded > amount),
		coalesce((SELECT string_agg(id::text, ',') FROM holds WHERE captured + released > held OR refunded > captured), '')`},
	{"inter_subsidiary_net_zero", "inter-subsidiary accounts net to zero per pair and currency", `
		SELECT count(*), count(*) FILTER (WHERE net <> 0),
		coalesce(string_agg(s1 || '/' || s2 || ' ' || currency || ' ' || net, ',') FILTER (WHERE net <> 0), '')
		FROM (SELECT least(a.subsidiary_id, a.ref) s1, greatest(a.subsidiary_id, a.ref) s2, a.currency,
			sum(b.credits_posted - b.debits_posted) net
			FROM accounts a JOIN account_balances b ON b.account_id = a.id
			WHERE a.purpose = 'inter_subsidiary' GROUP BY 1, 2, 3) x`},
	{"emoney_safeguarded", "customer and merchant e-money plus the platform's own positions equal the safeguarding account plus funds in flight, per subsidiary and currency", `
		SELECT count(*), count(*) FILTER (WHERE emoney + own <> safeguarded + in_flight),
		coalesce(string_agg(subsidiary_id || ' ' || currency || ': e-money ' || emoney || ' own ' || own || ' safeguarded '
			|| safeguarded || ' in flight ' || in_flight, '; ') FILTER (WHERE emoney + own <> safeguarded + in_flight), '')
		FROM (SELECT a.subsidiary_id, a.currency,
			coalesce(sum(b.credits_posted - b.debits_posted) FILTER (WHERE a.wallet_id IS NOT NULL), 0) emoney,
			coalesce(sum(b.credits_posted - b.debits_posted) FILTER (WHERE a.wallet_id IS NULL
				AND a.purpose NOT IN ('safeguarding', 'connector_clearing')), 0) own,
			coalesce(sum(b.debits_posted - b.credits_posted) FILTER (WHERE a.purpose = 'safeguarding'), 0) safeguarded,
			coalesce(sum(b.debits_posted - b.credits_posted) FILTER (WHERE a.purpose = 'connector_clearing'), 0) in_flight
			FROM accounts a JOIN account_balances b ON b.account_id = a.id JOIN currencies c ON c.code = a.currency
			WHERE NOT c.is_points GROUP BY 1, 2) x`},
}

// verifyMargin is how old a transfer must be before Verify folds it into verify_sums: no
// ledger transaction lasts that long, so nothing older can still commit. Verify also
// never folds past the start of the oldest transaction it can see running.
const verifyMargin = 10 * time.Minute

// Verify checks every ledger invariant of DESIGN.md guarantee 6 on a live database, in
// one repeatable-read snapshot, so the checks agree with each other while postings go on.
// It is incremental: transfers already verified are carried as per-row sums, so a run
// reads only what is new plus one index probe per balance row; a run that passes moves
// the mark forward. The error is for failing to check, not for a failed invariant: see
// Report.OK.
func Verify(ctx context.Context, pool *pgxpool.Pool) (Report, error) {
	return verify(ctx, pool, verifyMargin, false)
}

// VerifyAll is Verify from scratch: it ignores and rebuilds the carried sums.
func VerifyAll(ctx context.Context, pool *pgxpool.Pool) (Report, error) {
	return verify(ctx, pool, verifyMargin, true)
}

func verify(ctx context.Context, pool *pgxpool.Pool, margin time.Duration, full bool) (Report, error) {
	// The fold limit is taken before the snapshot: a transaction older than it had
	// already ended then, so the snapshot sees all it wrote.
	var limit time.Time
	if err := pool.QueryRow(ctx, `SELECT least(now() - make_interval(secs => $1),
			coalesce((SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()), 'infinity'))`,
		margin.Seconds()).Scan(&limit); err != nil {
		return Report{}, fmt.Errorf("verifying ledger: %w", err)
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return Report{}, fmt.Errorf("verifying ledger: %w", err)
	}
	defer tx.Rollback(ctx)
	if full {
		if _, err := tx.Exec(ctx, `DELETE FROM verify_sums`); err != nil {
			return Report{}, fmt.Errorf("verifying ledger: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM verify_marks`); err != nil {
			return Report{}, fmt.Errorf("verifying ledger: %w", err)
		}
	}
	var since time.Time // zero: from the first transfer
	if err := tx.QueryRow(ctx, `SELECT upto FROM verify_marks`).Scan(&since); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Report{}, fmt.Errorf("reading verify mark: %w", err)
	}
	var r Report
	for _, inv := range invariants {
		start := time.Now()
		c := Check{Name: inv.name, Invariant: inv.text}
		var args []any
		if strings.Contains(inv.sql, "$1") {
			args = append(args, since)
		}
		if err := tx.QueryRow(ctx, inv.sql, args...).Scan(&c.Checked, &c.Violations, &c.Detail); err != nil {
			return Report{}, fmt.Errorf("verifying %s: %w", inv.name, err)
		}
		if len(c.Detail) > 300 {
			c.Detail = c.Detail[:300] + "…"
		}
		c.Pass, c.Took = c.Violations == 0, time.Since(start)
		r.Checks = append(r.Checks, c)
	}
	if !r.OK() || !limit.After(since) {
		return r, nil
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO verify_sums AS v (account_id, shard, debits_pending, debits_posted, credits_pending, credits_posted)
		SELECT a, s, sum(dp), sum(dpo), sum(cp), sum(cpo) FROM (
			SELECT debit_account_id a, debit_shard s, pending_amount dp, amount dpo, 0::numeric cp, 0::numeric cpo
			  FROM transfers WHERE created_at >= $1 AND created_at < $2
			UNION ALL
			SELECT credit_account_id, credit_shard, 0, 0, pending_amount, amount
			  FROM transfers WHERE created_at >= $1 AND created_at < $2) x
		GROUP BY a, s
		ON CONFLICT (account_id, shard) DO UPDATE SET
			debits_pending = v.debits_pending + excluded.debits_pending, debits_posted = v.debits_posted + excluded.debits_posted,
			credits_pending = v.credits_pending + excluded.credits_pending, credits_posted = v.credits_posted + excluded.credits_posted`,
		since, limit); err != nil {
		return r, carryError(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO verify_marks (upto) VALUES ($1) ON CONFLICT (single) DO UPDATE SET upto = excluded.upto`, limit); err != nil {
		return r, carryError(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return r, carryError(err)
	}
	return r, nil
}

// carryError drops the error of a concurrent run having moved the mark first (a
// serialization failure): this run's findings stand, the other run carried the sums.
func carryError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "40001" {
		return nil
	}
	return fmt.Errorf("carrying verified sums: %w", err)
}
