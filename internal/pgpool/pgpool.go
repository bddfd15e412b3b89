// Package pgpool opens paystream's PostgreSQL connection pools.
//
// Every hot statement of paystream is set-based: it reads or writes a whole batch through
// array parameters (payment_id = ANY($1), FROM unnest($1, ...)). Prepared, such a
// statement soon runs a generic plan, made without seeing the arrays and from the
// statistics the table had then. On a young table that plan is a sequential scan, and it
// is kept as the table grows until the next ANALYZE: a fresh database slowed down by the
// minute, its CPU spent comparing every row with every array element. Planning each
// execution with its parameters costs tens of microseconds per batch and picks the index.
package pgpool

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Open opens a pool on url whose sessions plan every statement with its parameters,
// unless url sets plan_cache_mode itself.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	return pool, nil
}
