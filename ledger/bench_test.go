package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/internal/localpg"
	"github.com/paystream/paystream/ledger/migrations"
)

const (
	benchWallets   = 10_000
	benchBatchSize = 1_000
)

// BenchmarkPostBatch posts P2P transfers with a fee and VAT (three linked transfers each)
// between 10,000 wallets in batches of 1,000, on a server of its own with fsync and
// synchronous_commit on. In the same run it measures the server's raw rate for a plain
// multi-row insert of as many transfer rows, and reports both and their ratio.
// partitions=1 is one posting stream; partitions=2 is two partitions posting at once, the
// payers split by wallet as Kafka keys them, the payees anywhere.
// Run: go test -run '^$' -bench PostBatch -benchtime 30x ./ledger/
func BenchmarkPostBatch(b *testing.B) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "paystream-bench-*")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// The server may run as the postgres user, which must traverse to its folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	srv, err := localpg.Start(ctx, localpg.Options{Dir: dir + "/pg"})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(context.Background())
	url := srv.URL("postgres")
	if _, err := migrations.Up(ctx, url); err != nil {
		b.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var fsync, syncCommit string
	if err := pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit); err != nil || fsync != "on" || syncCommit != "on" {
		b.Fatalf("fsync=%s synchronous_commit=%s (%v): the benchmark needs both on", fsync, syncCommit, err)
	}
	l, wallets, fees, vat := benchLedger(b, ctx, pool)
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_raw (LIKE transfers INCLUDING ALL)`); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seq := 0
	// batch draws payers from the wallets of one partition (index % parts == part).
	batch := func(part, parts int) []Posting {
		seq++
		ps := make([]Posting, benchBatchSize)
		for i := range ps {
			from := wallets[rng.IntN(len(wallets)/parts)*parts+part]
			to := wallets[rng.IntN(len(wallets))]
			for to == from {
				to = wallets[rng.IntN(len(wallets))]
			}
			ps[i] = P2P(fmt.Sprintf("bench-%d-%d", seq, i), from, to, decimal.New(int64(100+rng.IntN(900)), -2), "USD",
				Fee{Amount: d("0.10"), VAT: d("0.01"), Revenue: fees, VATPayable: vat})
		}
		return ps
	}
	for _, parts := range []int{1, 2} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			work := make([][][]Posting, parts)
			var all [][]Posting
			for i := 0; i < b.N; i++ {
				ps := batch(i%parts, parts)
				work[i%parts] = append(work[i%parts], ps)
				all = append(all, ps)
			}
			rawRate := benchRawInsert(b, ctx, pool, all)

			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for part := range parts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, ps := range work[part] {
						rs, err := l.PostBatch(ctx, ps, BatchOptions{Partition: part})
						if err != nil {
							b.Error(err)
							return
						}
						for _, r := range rs {
							if r.Status != Posted {
								b.Errorf("posting %s: %v", r.PaymentID, r.Err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			rate := float64(b.N*benchBatchSize) / elapsed.Seconds()
			b.ReportMetric(rate, "postings/s")
			b.ReportMetric(rawRate, "raw-insert-postings/s")
			b.ReportMetric(100*rate/rawRate, "%-of-raw")
			b.ReportMetric(0, "ns/op")
		})
	}
	// The ledger the benchmark built must be sound, and checking it must stay quick.
	start := time.Now()
	rep, err := Verify(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	var transfers int64
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM transfers`).Scan(&transfers)
	b.Logf("verify over %d transfers took %s:\n%s", transfers, time.Since(start).Round(time.Millisecond), rep)
	if !rep.OK() {
		b.Fatal("ledger invariants broken")
	}
}

// benchLedger creates the wallets in bulk (the API would take minutes with fsync on) and
// funds them through the ledger.
func benchLedger(b *testing.B, ctx context.Context, pool *pgxpool.Pool) (*Ledger, []AccountID, AccountID, AccountID) {
	l, err := New(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.CreateSubsidiary(ctx, Subsidiary{ID: "SG01", Name: "bench", BaseCurrency: "USD"}); err != nil {
		b.Fatal(err)
	}
	safe, err := l.OpenSystemAccount(ctx, "SG01", Safeguarding, "USD", "", Rules{})
	if err != nil {
		b.Fatal(err)
	}
	fees, err := l.OpenSystemAccount(ctx, "SG01", FeeRevenue, "USD", "", Rules{Shards: 8})
	if err != nil {
		b.Fatal(err)
	}
	vat, err := l.OpenSystemAccount(ctx, "SG01", VATPayable, "USD", "", Rules{Shards: 8})
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO users (kind, display_name) SELECT 'customer', 'bench ' || g FROM generate_series(1, $1::int) g`,
		`INSERT INTO wallets (user_id, subsidiary_id) SELECT id, 'SG01' FROM users`,
		`INSERT INTO accounts (subsidiary_id, wallet_id, purpose, currency, no_overdraft) SELECT 'SG01', id, 'main', 'USD', true FROM wallets`,
		`INSERT INTO account_balances (account_id, shard, floor) SELECT id, 0, 0 FROM accounts WHERE wallet_id IS NOT NULL`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, benchWallets)
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT id FROM accounts WHERE wallet_id IS NOT NULL ORDER BY id`)
	if err != nil {
		b.Fatal(err)
	}
	wallets, err := pgx.CollectRows(rows, pgx.RowTo[AccountID])
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < len(wallets); i += benchBatchSize {
		var ps []Posting
		for _, w := range wallets[i:min(i+benchBatchSize, len(wallets))] {
			ps = append(ps, TopUp(fmt.Sprintf("fund-%d", w), safe.ID, w, d("100000"), "USD", Fee{}))
		}
		if _, err := l.PostBatch(ctx, ps, BatchOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []string{`VACUUM ANALYZE`, `CHECKPOINT`} {
		if _, err := pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	return l, wallets, fees.ID, vat.ID
}

// benchRawInsert returns the postings/s the server sustains for nothing but a multi-row
// INSERT of their transfer rows (same columns, same indexes, one transaction per batch).
func benchRawInsert(b *testing.B, ctx context.Context, pool *pgxpool.Pool, batches [][]Posting) float64 {
	const cols = 16
	var sql strings.Builder
	sql.WriteString(`INSERT INTO bench_raw (id, payment_id, code, debit_account_id, credit_account_id, debit_shard, credit_shard,
		amount, pending_amount, currency, hold_id, created_at, debit_balance, debit_pending_balance, credit_balance,
		credit_pending_balance) VALUES `)
	for r := range benchBatchSize * 3 {
		if r > 0 {
			sql.WriteString(",")
		}
		sql.WriteString("(")
		for c := range cols {
			if c > 0 {
				sql.WriteString(",")
			}
			fmt.Fprintf(&sql, "$%d", r*cols+c+1)
		}
		sql.WriteString(")")
	}
	var id int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM bench_raw`).Scan(&id); err != nil {
		b.Fatal(err)
	}
	// Running balances of a typical size (the wallets hold about 100,000.00).
	balance := decimal.New(9_999_123, -2)
	start := time.Now()
	for _, ps := range batches {
		args := make([]any, 0, benchBatchSize*3*cols)
		now := time.Now()
		for _, p := range ps {
			for _, t := range p.Transfers {
				id++
				args = append(args, id, p.PaymentID, string(t.Code), int64(t.Debit), int64(t.Credit), int16(0), int16(0),
					num(t.Amount), num(zero), t.Currency, nil, now, num(balance), num(zero), num(t.Amount), num(zero))
			}
		}
		if _, err := pool.Exec(ctx, sql.String(), args...); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(batches)*benchBatchSize) / time.Since(start).Seconds()
}

func num(d decimal.Decimal) pgtype.Numeric {
	return pgtype.Numeric{Int: d.Coefficient(), Exp: d.Exponent(), Valid: true}
}
