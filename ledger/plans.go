package ledger

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// genericPlans puts the rest of a pipeline's implicit transaction (up to its Sync) on
// generic plans; the session's own setting is back after it.
const genericPlans = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`

// queryKeys runs a lookup of rows by n keys and hands its rows to scan, in one round
// trip: up to genericKeys keys on the statement's generic plan, made once a connection;
// more on a plan made for them.
//
// The pool plans every statement with its parameters (internal/pgpool). For the stages'
// wallet lookups that meant planning every batch afresh: at 2,500 payments/s with 1,000
// wallets, pg_stat_statements put Parties at 0.82 ms a call, 0.27 ms of it planning, in
// the serial part of the hop. A generic plan cannot see the array, so it probes the
// primary key once a key: for 70 of 1,010 wallets, 0.29–0.31 ms against 0.14–0.23 ms of
// planning and 0.35–0.43 ms of reading the table whole (EXPLAIN ANALYZE, warm). For a
// closed loop's batches of about 420 wallets the probes cost more than the planning
// saves: 3.58 ms a call against 2.35 (pg_stat_statements, 20 s each).
func (l *Ledger) queryKeys(ctx context.Context, n int, scan func(pgx.Rows) error, sql string, args ...any) error {
	b := &pgx.Batch{}
	if n <= genericKeys {
		b.Queue(genericPlans)
	}
	b.Queue(sql, args...).Query(scan)
	return l.pool.SendBatch(ctx, b).Close()
}

// genericKeys is the most keys a lookup probes on its generic plan.
const genericKeys = 128
