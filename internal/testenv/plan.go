package testenv

import (
	"context"
	"strings"
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
