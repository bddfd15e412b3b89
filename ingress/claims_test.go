package ingress

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/testenv"
)

// The claims send their key locks and their claim as one pgx batch without BEGIN and
// COMMIT, relying on PostgreSQL to run a pipeline's statements before its one Sync as a
// single transaction. This holds that to pgx and the server: the locks must still be held
// by the statement after them, both statements must be one transaction, the locks must be
// gone once the batch is done, and a statement that fails must undo the ones before it.
func TestClaimBatchIsOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.Postgres(t)
	locks := []int64{keyLock("ch_1", "key-a"), keyLock("ch_1", "key-b")}

	var held, first, second int64
	b := &pgx.Batch{}
	b.Queue(`SELECT txid_current()`).QueryRow(func(r pgx.Row) error { return r.Scan(&first) })
	b.Queue(lockKeysSQL, locks)
	b.Queue(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted`).
		QueryRow(func(r pgx.Row) error { return r.Scan(&held) })
	b.Queue(`SELECT txid_current()`).QueryRow(func(r pgx.Row) error { return r.Scan(&second) })
	if err := db.Pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if held != int64(len(locks)) {
		t.Fatalf("%d advisory locks held by the statement after the lock, want %d", held, len(locks))
	}
	if first != second {
		t.Fatalf("the batch ran in transactions %d and %d, want one", first, second)
	}
	for _, k := range locks {
		var free bool
		if err := db.Pool.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, k).Scan(&free); err != nil || !free {
			t.Fatalf("lock %d still taken after the batch (%v, %v)", k, free, err)
		}
	}

	if _, err := db.Pool.Exec(ctx, `CREATE TABLE claim_probe (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	b = &pgx.Batch{}
	b.Queue(lockKeysSQL, locks)
	b.Queue(`INSERT INTO claim_probe VALUES (1)`)
	b.Queue(`SELECT 1 / 0`)
	if err := db.Pool.SendBatch(ctx, b).Close(); err == nil {
		t.Fatal("a batch with a division by zero succeeded")
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM claim_probe`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows (%v) after the batch failed, want its insert undone", n, err)
	}
}
