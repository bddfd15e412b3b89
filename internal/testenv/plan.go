package testenv

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Querier is a pool, a connection or a transaction: a transaction shows the plans its
// settings give.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Plan returns the plan PostgreSQL chooses for query with these arguments, as EXPLAIN
// prints it, so a test can check that a statement keeps the shape its speed depends on.
func Plan(tb testing.TB, db Querier, query string, args ...any) string {
	tb.Helper()
	rows, err := db.Query(context.Background(), "EXPLAIN "+query, args...)
	if err != nil {
		tb.Fatalf("testenv: explaining %q: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			tb.Fatalf("testenv: reading the plan: %v", err)
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("testenv: explaining %q: %v", query, err)
	}
	return strings.Join(lines, "\n")
}

// GenericPlan returns the generic plan of query, the one a session whose plan_cache_mode
// lets PostgreSQL keep a plan made without the parameters' values runs for every call:
// query is prepared in a transaction that forces generic plans, explained with args, and
// rolled back.
func GenericPlan(tb testing.TB, db Beginner, query string, args ...any) string {
	tb.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// A prepared statement outlives the transaction, on a connection the pool keeps.
	name := fmt.Sprintf("testenv_generic_%d", generics.Add(1))
	// PREPARE's parameters are its own, so it goes by the simple protocol.
	for _, stmt := range []string{`SET LOCAL plan_cache_mode = force_generic_plan`, `PREPARE ` + name + ` AS ` + query} {
		if _, err := tx.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol); err != nil {
			tb.Fatalf("testenv: %s: %v", stmt, err)
		}
	}
	params := make([]string, len(args))
	for i := range args {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	// EXECUTE's arguments are not the protocol's parameters either: pgx writes them in.
	plan := Plan(tb, tx, "EXECUTE "+name+"("+strings.Join(params, ", ")+")",
		append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if _, err := tx.Exec(ctx, "DEALLOCATE "+name, pgx.QueryExecModeSimpleProtocol); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return plan
}

var generics atomic.Int64

// Beginner opens transactions: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}
