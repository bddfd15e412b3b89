package ledger

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

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
// planner thinks the pass would be.
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
	for name, plan := range map[string]string{
		"locking balances": testenv.Plan(t, tx, lockBalances, intArray(accts), intArray([]int64{}), intArray([]int64{})),
		"reading flags":    testenv.Plan(t, tx, readFlags, intArray(accts)),
		"writing balances": testenv.Plan(t, tx, updateBalances, textArray(tids), intArray(accts), intArray(shards),
			textArray(zero), textArray(zero), textArray(zero), textArray(zero), len(tids)),
	} {
		if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Hash") || !strings.Contains(plan, "_pkey") {
			t.Errorf("%s does not probe the primary key:\n%s", name, plan)
		}
	}
}
