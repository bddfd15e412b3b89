package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/internal/testenv"
)

// A posting transaction looks its batch's payment ids up in postings while it holds its
// balance rows. On a table of 20,000 rows the planner would rather read the whole table
// than probe the key 300 times, unless the statement gives it no choice.
func TestStoredPostingsAreProbedByKey(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO postings (payment_id, digest, status)
		SELECT 'pay_' || g, '\x00', 'posted' FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE postings`); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("pay_%d", i*131+7)) // 153 of them stored (up to 20,000)
	}
	plan := testenv.Plan(t, db.Pool, storedPostingsSQL, textArray(ids))
	if strings.Contains(plan, "Seq Scan on postings") || !strings.Contains(plan, "postings_pkey") {
		t.Fatalf("stored postings not looked up by key:\n%s", plan)
	}
	// The posting transaction runs it on a generic plan, under its settings.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, postingSettings); err != nil {
		t.Fatal(err)
	}
	plan = testenv.GenericPlan(t, tx, storedPostingsSQL, textArray(ids))
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plan, "Seq Scan on postings") || !strings.Contains(plan, "postings_pkey") {
		t.Fatalf("stored postings not looked up by key on a generic plan:\n%s", plan)
	}
	b := &pgx.Batch{}
	b.Queue(storedPostingsSQL, textArray(ids))
	br := db.Pool.SendBatch(ctx, b)
	found, err := readStored(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, id := range ids {
		var n int
		if _, err := fmt.Sscanf(id, "pay_%d", &n); err != nil {
			t.Fatal(err)
		}
		if n <= 20000 {
			want++
			if _, ok := found[id]; !ok {
				t.Errorf("stored posting %s not found", id)
			}
		}
	}
	if len(found) != want {
		t.Errorf("found %d stored postings, want %d", len(found), want)
	}
}

// A posting transaction locks, checks and writes its balance rows by key: under its
// settings no statement passes over a whole table or hashes one, however small the
// planner thinks the pass would be, on a plan made with the parameters or without.
func TestPostingTransactionProbesKeys(t *testing.T) {
	f := newFixture(t)
	for range 400 {
		f.wallet("10.00")
	}
	if _, err := f.db.Pool.Exec(f.ctx, `ANALYZE account_balances; ANALYZE accounts`); err != nil {
		t.Fatal(err)
	}
	tx, err := f.db.Pool.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(f.ctx) }()
	if _, err := tx.Exec(f.ctx, postingSettings); err != nil {
		t.Fatal(err)
	}
	var tids, zero []string
	var accts, shards []int64
	rows, err := tx.Query(f.ctx, `SELECT ctid::text, account_id, shard FROM account_balances ORDER BY account_id DESC LIMIT 300`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tid string
		var a, s int64
		if err := rows.Scan(&tid, &a, &s); err != nil {
			t.Fatal(err)
		}
		tids, accts, shards, zero = append(tids, tid), append(accts, a), append(shards, s), append(zero, "0")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The transaction runs its statements on generic plans (postingSettings); the custom
	// plans are checked too, for a session that plans each call.
	for _, kind := range []struct {
		name string
		plan func(query string, args ...any) string
	}{
		{"custom", func(q string, args ...any) string { return testenv.Plan(t, tx, q, args...) }},
		{"generic", func(q string, args ...any) string { return testenv.GenericPlan(t, tx, q, args...) }},
	} {
		for name, plan := range map[string]string{
			"locking balances": kind.plan(lockBalances, intArray(accts), intArray([]int64{}), intArray([]int64{})),
			"reading flags":    kind.plan(readFlags, intArray(accts)),
			"writing balances": kind.plan(updateBalances, textArray(tids), intArray(accts), intArray(shards),
				textArray(zero), textArray(zero), textArray(zero), textArray(zero), len(tids)),
		} {
			// A row is found by its primary key, or by the ctid it was locked at.
			byKey := strings.Contains(plan, "_pkey") || strings.Contains(plan, "Tid Scan on account_balances")
			if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Hash") || !byKey {
				t.Errorf("%s does not probe the primary key on a %s plan:\n%s", name, kind.name, plan)
			}
		}
	}
}

// The posting transaction plans its statements once a connection: on a session that
// otherwise plans every call with its parameters (pgpool's default), its balance lock,
// flag read, stored-postings lookup and balance write run on generic plans.
func TestPostingTransactionKeepsItsPlans(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l, pool := f.ledgerOn(func(cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
		cfg.MaxConns = 1 // the statements' plans are per connection
	})
	var wallets []Account
	for range 10 {
		wallets = append(wallets, f.wallet("100"))
	}
	const batches = 8
	for b := range batches {
		var ps []Posting
		for i := range 10 {
			ps = append(ps, f.p2p(fmt.Sprintf("plans-%d-%d", b, i), wallets[i], wallets[(i+1)%10], "1", "0.10", "0.01"))
		}
		rs, err := l.PostBatch(f.ctx, ps, BatchOptions{Partition: b})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Err != nil || r.Status != Posted {
				t.Fatalf("posting %s: %s, %v", r.PaymentID, r.Status, r.Err)
			}
		}
	}
	plans := preparedPlans(t, f.ctx, pool)
	for name, sql := range map[string]string{"locking balances": lockBalances, "reading flags": readFlags,
		"stored postings": storedPostingsSQL, "writing balances": updateBalances} {
		p, ok := plans[sql]
		if !ok {
			t.Errorf("%s: not a prepared statement of the connection", name)
			continue
		}
		if p[0] < batches || p[1] != 0 {
			t.Errorf("%s ran on %d generic and %d custom plans over %d batches, want generic plans only", name, p[0], p[1], batches)
		}
	}
}

// preparedPlans reads how often each prepared statement of pool's one connection ran on a
// generic and on a custom plan.
func preparedPlans(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[string][2]int64 {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements`)
	if err != nil {
		t.Fatal(err)
	}
	plans := map[string][2]int64{}
	for rows.Next() {
		var stmt string
		var generic, custom int64
		if err := rows.Scan(&stmt, &generic, &custom); err != nil {
			t.Fatal(err)
		}
		plans[stmt] = [2]int64{generic, custom}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plans
}

// The stages' batch lookups of a few wallets run on generic plans, whatever the session
// plans with, and leave the session's setting as it was; a lookup of many wallets is
// planned for them.
func TestWalletLookupsKeepTheirPlans(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l, pool := f.ledgerOn(func(cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
		cfg.MaxConns = 1
	})
	var ids []WalletID
	for range 4 {
		ids = append(ids, f.wallet("1").Wallet)
	}
	const calls = 7
	lookUp := func(keys []WalletID) {
		t.Helper()
		parties, err := l.Parties(f.ctx, f.cur, keys...)
		if err != nil {
			t.Fatal(err)
		}
		facts, err := l.WalletFactsOf(f.ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(parties) != len(ids) || len(facts) != len(ids) {
			t.Fatalf("read %d parties and %d facts of %d wallets among %d ids", len(parties), len(facts), len(ids), len(keys))
		}
		for _, id := range ids {
			if p := parties[id]; p.Account == nil || p.User.ID == 0 || facts[id].Wallet != id {
				t.Fatalf("wallet %d: party %+v, facts %+v", id, p, facts[id])
			}
		}
	}
	for range calls {
		lookUp(ids)
	}
	many := slices.Clone(ids)
	for i := range genericKeys {
		many = append(many, WalletID(1_000_000+i)) // none of them exists
	}
	lookUp(many)
	plans := preparedPlans(t, f.ctx, pool)
	for name, sql := range map[string]string{"parties": partiesSQL, "wallet facts": walletFactsSQL} {
		if p := plans[sql]; p != [2]int64{calls, 1} {
			t.Errorf("%s ran on %d generic and %d custom plans, want %d generic (a few keys) and 1 custom (many)", name, p[0], p[1], calls)
		}
	}
	// A lookup that fails midway reports it, and leaves the setting too.
	failed := errors.New("scan failed")
	if err := l.queryKeys(f.ctx, len(ids), func(pgx.Rows) error { return failed }, partiesSQL, ids, f.cur); !errors.Is(err, failed) {
		t.Fatalf("a failed lookup reported %v, want its scan's error", err)
	}
	var mode string
	if err := pool.QueryRow(f.ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "force_custom_plan" {
		t.Fatalf("the session plans with %s after the lookups, want force_custom_plan as before", mode)
	}
}
