package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/localpg"
	"github.com/paystream/paystream/internal/pgpool"
	"github.com/paystream/paystream/ledger/migrations"
)

// DurablePostgres gives a benchmark a migrated database on a server of its own with fsync
// and synchronous_commit on, as production runs: the shared test server has them off, which
// would flatter every figure. It is stopped and removed when the benchmark ends.
func DurablePostgres(tb testing.TB) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "paystream-durable-*")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	// The server may run as the postgres user, which must traverse to its folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	srv, err := localpg.Start(ctx, localpg.Options{Dir: dir + "/pg"})
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Stop(context.Background()) })
	url := srv.URL("postgres")
	if _, err := migrations.Up(ctx, url); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	pool, err := pgpool.Open(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	var fsync, syncCommit string
	if err := pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit); err != nil || fsync != "on" || syncCommit != "on" {
		tb.Fatalf("testenv: fsync=%s synchronous_commit=%s (%v), want both on", fsync, syncCommit, err)
	}
	return &DB{URL: url, Name: "postgres", Pool: pool}
}
