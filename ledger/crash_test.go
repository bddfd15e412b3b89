package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connKiller has the server terminate a connection the moment it sends the writes of a
// batch: the middle of it, after its balance rows are locked and its ids claimed.
type connKiller struct {
	armed atomic.Bool
	admin *pgxpool.Pool
	hits  atomic.Int32
}

func (k *connKiller) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (k *connKiller) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (k *connKiller) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	writes := false
	for _, q := range data.Batch.QueuedQueries {
		writes = writes || strings.Contains(q.SQL, "INSERT INTO transfers")
	}
	if writes && k.armed.CompareAndSwap(true, false) {
		if _, err := k.admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, conn.PgConn().PID()); err == nil {
			k.hits.Add(1)
		}
	}
	return ctx
}

func (k *connKiller) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (k *connKiller) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func TestCrashMidBatchThenRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	killer := &connKiller{admin: f.db.Pool}
	cfg, err := pgxpool.ParseConfig(f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = killer
	pool, err := pgxpool.NewWithConfig(f.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l, err := New(f.ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var wallets []Account
	for range 20 {
		wallets = append(wallets, f.wallet("100"))
	}
	var ps []Posting
	for i := range 500 {
		from, to := wallets[i%20], wallets[(i+1)%20]
		ps = append(ps, f.p2p(fmt.Sprintf("crash-%d", i), from, to, "1", "0.10", "0.01"))
	}
	// The first half goes through before the crash.
	if _, err := l.PostBatch(f.ctx, ps[:250], BatchOptions{}); err != nil {
		t.Fatal(err)
	}
	killer.armed.Store(true)
	if _, err := l.PostBatch(f.ctx, ps, BatchOptions{Partition: 1}); err == nil {
		t.Fatal("batch survived its connection being killed")
	}
	if killer.hits.Load() != 1 {
		t.Fatalf("connection killed %d times", killer.hits.Load())
	}
	// The posting stage retries the whole Kafka batch.
	rs, err := l.PostBatch(f.ctx, ps, BatchOptions{Partition: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.Status != Posted || r.Replayed != (i < 250) {
			t.Fatalf("posting %d after retry: %+v", i, r)
		}
	}
	var postings, transfers int
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT (SELECT count(*) FROM postings WHERE payment_id LIKE 'crash-%'),
		(SELECT count(*) FROM transfers WHERE payment_id LIKE 'crash-%')`).Scan(&postings, &transfers); err != nil {
		t.Fatal(err)
	}
	if postings != 500 || transfers != 1500 {
		t.Fatalf("%d postings and %d transfers, want 500 and 1500", postings, transfers)
	}
	// Each wallet sent 25 and received 25; fees and VAT are 25 × 0.11 each.
	for _, w := range wallets {
		if got := f.available(w); !got.Equal(d("97.25")) {
			t.Errorf("wallet %d at %s, want 97.25", w.ID, got)
		}
	}
	f.verify()
}
