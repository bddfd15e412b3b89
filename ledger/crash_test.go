package ledger

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/internal/testenv"
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
	l, _ := f.ledgerOn(func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = killer })
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

// batchEditor passes every batch of its connections to edit before it is sent.
type batchEditor struct{ edit func(*pgx.Batch) }

func (e batchEditor) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	e.edit(data.Batch)
	return ctx
}

func (batchEditor) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (batchEditor) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (batchEditor) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (batchEditor) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// probeLedger is a ledger on f's database whose batches pass through edit, on a pool of
// one connection: the backend behind it tells whether a failed batch handed its
// connection back out of the transaction or had it destroyed.
func probeLedger(t *testing.T, f *fixture, edit func(*pgx.Batch)) (*Ledger, *pgxpool.Pool) {
	t.Helper()
	return f.ledgerOn(func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		cfg.ConnConfig.Tracer = batchEditor{edit}
	})
}

func backendPID(t *testing.T, f *fixture, pool *pgxpool.Pool) int {
	t.Helper()
	var pid int
	if err := pool.QueryRow(f.ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

var firstTID = regexp.MustCompile(`\(\d+,\d+\)`)

// A balance row that is not where it was locked fails the write batch past its queued
// COMMIT: nothing of the batch is stored, the connection goes back to the pool out of
// the transaction, and the batch posts in full when sent again.
func TestFailedWritesCommitNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var armed atomic.Bool
	l, pool := probeLedger(t, f, func(b *pgx.Batch) {
		for _, q := range b.QueuedQueries {
			if strings.Contains(q.SQL, "UPDATE account_balances") && armed.CompareAndSwap(true, false) {
				tids := q.Arguments[0].(string)
				q.Arguments[0] = strings.Replace(tids, firstTID.FindString(tids), "(0,0)", 1)
			}
		}
	})
	alice, bob := f.wallet("100"), f.wallet("0")
	ps := []Posting{f.p2p(f.id("moved"), alice, bob, "10", "1", "0.1"), f.p2p(f.id("moved"), bob, alice, "4", "0.5", "0.05")}
	ids := []string{ps[0].PaymentID, ps[1].PaymentID}
	pid := backendPID(t, f, pool)

	armed.Store(true)
	_, err := l.PostBatch(f.ctx, ps, BatchOptions{})
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "21000" {
		t.Fatalf("batch with a moved balance row: %v, want the row count check to fail it", err)
	}
	if armed.Load() {
		t.Fatal("the balance update was never sent")
	}
	var postings, transfers int
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT (SELECT count(*) FROM postings WHERE payment_id = ANY($1)),
		(SELECT count(*) FROM transfers WHERE payment_id = ANY($1))`, ids).Scan(&postings, &transfers); err != nil {
		t.Fatal(err)
	}
	if postings != 0 || transfers != 0 {
		t.Fatalf("failed batch left %d postings and %d transfers", postings, transfers)
	}
	if a, b := f.available(alice), f.available(bob); !a.Equal(d("100")) || !b.IsZero() {
		t.Fatalf("failed batch moved funds: alice %s bob %s", a, b)
	}
	if got := backendPID(t, f, pool); got != pid {
		t.Fatalf("connection replaced (backend %d, was %d): it went back inside the transaction", got, pid)
	}

	rs, err := l.PostBatch(f.ctx, ps, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.Status != Posted || r.Replayed {
			t.Fatalf("posting %d sent again: %+v", i, r)
		}
	}
	if a, b := f.available(alice), f.available(bob); !a.Equal(d("92.9")) || !b.Equal(d("5.45")) {
		t.Fatalf("alice %s bob %s, want 92.9 and 5.45", a, b)
	}
	f.verify()
}

// ledger_expect_rows passes a count through when it is the one expected and fails the
// statement otherwise; a NULL never passes.
func TestExpectRows(t *testing.T) {
	t.Parallel()
	db := testenv.Postgres(t)
	n := func(v int64) *int64 { return &v }
	cases := []struct {
		name      string
		got, want *int64
		fails     bool
	}{
		{"equal", n(3), n(3), false},
		{"none expected", n(0), n(0), false},
		{"fewer", n(2), n(3), true},
		{"more", n(4), n(3), true},
		{"null count", nil, n(0), true},
		{"null expectation", n(0), nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var back *int64
			err := db.Pool.QueryRow(context.Background(), `SELECT ledger_expect_rows('balance rows', $1, $2)`, c.got, c.want).Scan(&back)
			if !c.fails {
				if err != nil || *back != *c.got {
					t.Fatalf("got %v (%v), want %d back", back, err, *c.got)
				}
				return
			}
			pgErr := (*pgconn.PgError)(nil)
			if !errors.As(err, &pgErr) || pgErr.Code != "21000" || !strings.HasPrefix(pgErr.Message, "balance rows: ") {
				t.Fatalf("got %v, want a cardinality violation naming the rows", err)
			}
		})
	}
}
